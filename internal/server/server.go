// Package server is Plinth's HTTP edge: the one route table, the
// middleware every request passes (recovery, security headers, CORS,
// per-address and body limits, authentication) and the one place where
// errors become HTTP responses. The endpoints themselves live with their
// features (collections, records, identity, files, realtime, settings).
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/collections"
	"github.com/plinthhq/plinth/internal/dashboard"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/identity"
	"github.com/plinthhq/plinth/internal/ratelimit"
	"github.com/plinthhq/plinth/internal/realtime"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/settings"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/web"
	"github.com/plinthhq/plinth/internal/webhooks"
)

// Options configure the HTTP layer.
type Options struct {
	// Runtime is what GET /api/settings/runtime shows superusers.
	Runtime settings.Runtime
	// MaxBodyBytes bounds JSON request bodies (default 16 MiB); larger
	// bodies get 413.
	MaxBodyBytes int64
	// MaxUploadBytes bounds a multipart request (default 1 GiB); each
	// file is also bounded by its field's maxSize while it streams.
	MaxUploadBytes int64
	// Static, when set, is served for every path outside /api/, with
	// index.html for paths that match no file (single-page apps).
	Static fs.FS
	// AuthRatePerIP and AuthRatePerAccount bound authentication attempts
	// a minute per client IP and per account (identity), each with a burst
	// of the same size; 0 takes the defaults (60 and 10), negative
	// disables.
	AuthRatePerIP, AuthRatePerAccount float64
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// when finding the client IP.
	TrustedProxies []netip.Prefix
	// BodyGrace and MinBodyRate bound how slowly a request body may
	// arrive: after the grace period the average rate must stay at or
	// above MinBodyRate bytes a second, or the request ends with 408
	// (defaults 10s and 1 KiB/s; a negative rate disables the check).
	BodyGrace   time.Duration
	MinBodyRate int64
	// MaxRequestsPerIP caps requests in flight per client IP, realtime
	// streams included (default 512; negative: no cap).
	MaxRequestsPerIP int
	// BatchMaxRequests bounds the requests of one POST /api/batch.
	BatchMaxRequests int
	// ThumbMemory is the decode memory all thumbnail jobs share (default
	// 256 MiB); an image that would need more is served as it is.
	ThumbMemory int64
	// CORSOrigins lists allowed origins; "*" (the default) allows any.
	// Tokens travel in the Authorization header, never in cookies, so a
	// permissive default does not expose sessions to other sites.
	CORSOrigins []string
}

// Deps are the feature services the server routes to.
type Deps struct {
	Collections *collections.Service
	Identity    *identity.Service
	// Realtime serves /api/realtime when set.
	Realtime *realtime.Broker
	// Webhooks serves /api/webhooks when set.
	Webhooks *webhooks.Service
	// Dashboard serves /_/ and its install and test-email endpoints when set.
	Dashboard *dashboard.Dashboard
	Log       *slog.Logger
}

// Server handles Plinth's HTTP requests.
type Server struct {
	deps     Deps
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	inflight *perIP
}

// New builds the HTTP handler.
func New(d Deps, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 1 << 30
	}
	if opts.BodyGrace <= 0 {
		opts.BodyGrace = DefaultBodyGrace
	}
	if opts.MinBodyRate == 0 {
		opts.MinBodyRate = DefaultMinBodyRate
	}
	if opts.MaxRequestsPerIP == 0 {
		opts.MaxRequestsPerIP = DefaultMaxPerIP
	}
	if len(opts.CORSOrigins) == 0 {
		opts.CORSOrigins = []string{"*"}
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Server{deps: d, opts: opts, log: d.Log, mux: http.NewServeMux()}
	if opts.MaxRequestsPerIP > 0 {
		s.inflight = &perIP{max: opts.MaxRequestsPerIP, n: map[string]int{}}
	}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern, s.adapt(rt.handler))
	}
	if opts.Static != nil {
		s.mux.Handle("/", spa(opts.Static))
	}
	return s
}

// rateLimiter makes a limiter of perMinute attempts (0: def; <0: none).
func rateLimiter(perMinute, def float64) *ratelimit.Limiter {
	if perMinute < 0 {
		return nil
	}
	if perMinute == 0 {
		perMinute = def
	}
	return ratelimit.New(perMinute, max(1, int(perMinute)))
}

// adapt is the error edge: a handler's error becomes the response here.
func (s *Server) adapt(h web.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// superuser wraps h so only superusers reach it.
func superuser(h web.Handler) web.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !records.CallerFrom(r).Superuser() {
			return apierr.Forbidden("Only superusers can perform this action.")
		}
		return h(w, r)
	}
}

// spa serves static files, answering unknown paths with index.html so
// client-side routes survive a reload.
func spa(fsys fs.FS) http.Handler {
	static := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		if _, err := fs.Stat(fsys, name); err != nil {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/"
			static.ServeHTTP(w, r2)
			return
		}
		static.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler: recovery, security headers, CORS,
// request limits and authentication wrap every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			s.fail(w, r, apierr.Internal(fmt.Errorf("panic: %v", p)))
		}
	}()
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if origin := r.Header.Get("Origin"); origin != "" && s.allowedOrigin(origin) {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	release, ok := s.limitRequest(w, r)
	if !ok {
		return
	}
	defer release()
	if r.Body != nil && r.Body != http.NoBody {
		limit := s.opts.MaxBodyBytes
		if web.IsMultipart(r) {
			limit = s.opts.MaxUploadBytes
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	caller, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(records.WithCaller(r.Context(), caller)))
}

func (s *Server) allowedOrigin(o string) bool {
	for _, a := range s.opts.CORSOrigins {
		if a == "*" || strings.EqualFold(a, o) {
			return true
		}
	}
	return false
}

// authenticate resolves the Authorization header. A present but invalid
// token is an error (401) rather than silently anonymous, so clients learn
// their session ended.
func (s *Server) authenticate(r *http.Request) (*records.Caller, error) {
	c := &records.Caller{Method: r.Method, Query: r.URL.Query(), Headers: r.Header}
	if r.Header.Get("Authorization") == "" {
		return c, nil
	}
	col, rec, err := s.deps.Identity.Authenticate(r.Context(), web.Bearer(r))
	if err != nil {
		return nil, err
	}
	c.AuthCollection, c.Auth = col, rec
	return c, nil
}

// fail writes err in the standard shape: the one place errors become
// responses. 5xx causes are logged with the request; clients only ever
// see the generic message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = apierr.New(http.StatusRequestEntityTooLarge, "The request body is too large (limit "+strconv.FormatInt(mbe.Limit, 10)+" bytes).")
	}
	e := apierr.From(err)
	if e.Status == http.StatusInternalServerError && e.Cause != nil {
		// Database trouble is no bug of the request: say so, and when to
		// come back.
		if msg, ok := s.deps.Collections.DB.Dialect.Unavailable(e.Cause); ok {
			e = &apierr.Error{Status: http.StatusServiceUnavailable, Message: msg, Cause: e.Cause}
		} else if errors.Is(e.Cause, context.DeadlineExceeded) && r.Context().Err() == nil {
			e = &apierr.Error{Status: http.StatusGatewayTimeout, Message: "The database did not answer in time; try again.", Cause: e.Cause}
		}
	}
	switch {
	case e.Status >= 500 && r.Context().Err() != nil:
		// The client left; what failed was work done for nobody.
		s.log.Info("request abandoned by the client", "method", r.Method, "path", r.URL.Path, "err", e.Error())
	case e.Status >= 500:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", e.Error())
	case e.Cause != nil:
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", e.Error())
	}
	if e.Data == nil {
		e.Data = map[string]apierr.FieldError{}
	}
	if e.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	web.JSON(w, e.Status, e)
}

// health answers GET /api/health. Plain, it is the liveness check: it
// touches nothing, so a database in trouble does not get a live node
// restarted. With ?ready=1 it is the readiness check for load balancers:
// the database answers within 2 seconds and, on a shared database, this
// node listens for other nodes' schema changes and events; otherwise 503
// naming what is not ready.
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	if !r.URL.Query().Has("ready") {
		// "code" is what PocketBase's SDKs read; "status" is Plinth's shape.
		return web.JSON(w, http.StatusOK, map[string]any{"code": 200, "status": 200, "message": "API is healthy.", "data": map[string]any{}})
	}
	db := s.deps.Collections.DB
	notReady := apierr.New(http.StatusServiceUnavailable, "Not ready.")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := db.Read.PingContext(ctx); err != nil {
		notReady.With("database", "not_ready", "The database does not answer.")
	}
	if lr, ok := db.Notifier.(sqldb.ListenReporter); ok {
		for _, ch := range []string{collections.SchemaChannel, realtime.EventsChannel} {
			if !lr.Listening(ch) {
				notReady.With("listener", "not_ready", "Not yet listening for other nodes' changes on "+ch+".")
			}
		}
	}
	if len(notReady.Data) > 0 {
		return notReady
	}
	return web.JSON(w, http.StatusOK, map[string]any{"code": 200, "status": 200, "message": "API is ready.", "data": map[string]any{}})
}

func notFound(w http.ResponseWriter, r *http.Request) error {
	return apierr.NotFound("The requested resource wasn't found.")
}

// fileAccess is what file serving needs of records and identity.
type fileAccess struct {
	cols *collections.Service
	id   *identity.Service
}

func (a fileAccess) Collection(ctx context.Context, idOrName string) (*schema.Collection, error) {
	return a.cols.Collection(ctx, idOrName)
}

func (a fileAccess) RecordFiles(ctx context.Context, c *schema.Collection, id string) (map[string][]string, error) {
	rec, err := a.cols.Records.Lookup(ctx, c, id)
	if err != nil || rec == nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, f := range c.Fields {
		if f.Type == schema.FieldFile {
			out[f.Name] = records.ValueList(rec.Values[f.Name])
		}
	}
	return out, nil
}

func (a fileAccess) AuthorizeProtected(ctx context.Context, token string, c *schema.Collection, id string) error {
	caller, err := a.id.AuthenticateFileToken(ctx, token)
	if err != nil {
		return apierr.Forbidden("A valid file token is required for protected files.")
	}
	if _, err := a.cols.Records.View(ctx, caller, c, id, ""); err != nil {
		return apierr.NotFound("The requested file wasn't found.")
	}
	return nil
}

var _ files.Access = fileAccess{}

// Handle adds a route of the embedding program. It passes the same
// middleware as Plinth's own (the caller is in the request context:
// records.CallerFrom), and a more specific pattern wins over Plinth's
// catch-all for unknown /api/ paths.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }
