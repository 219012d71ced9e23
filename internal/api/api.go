// Package api is Plinth's HTTP surface: routing, request decoding,
// authentication of bearer tokens, and the JSON error shape.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/plinthhq/plinth/internal/core"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/ratelimit"
	"github.com/plinthhq/plinth/internal/realtime"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
)

// Options configure the HTTP layer.
type Options struct {
	// MaxBodyBytes bounds JSON request bodies (default 16 MiB); larger
	// bodies get 413.
	MaxBodyBytes int64
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
	// MaxUploadBytes bounds a multipart request (default 1 GiB); each
	// file is also bounded by its field's maxSize while it streams.
	MaxUploadBytes int64
	// BodyGrace and MinBodyRate bound how slowly a request body may
	// arrive: after the grace period the average rate must stay at or
	// above MinBodyRate bytes a second, or the request ends with 408
	// (defaults 10s and 1 KiB/s; a negative rate disables the check).
	BodyGrace   time.Duration
	MinBodyRate int64
	// MaxRequestsPerIP caps requests in flight per client IP, realtime
	// streams included (default 512; negative: no cap).
	MaxRequestsPerIP int
	// ThumbMemory is the decode memory all thumbnail jobs share (default
	// 256 MiB); an image that would need more is served as it is.
	ThumbMemory int64
	// Realtime serves /api/realtime when set.
	Realtime *realtime.Broker
	// CORSOrigins lists allowed origins; "*" (the default) allows any.
	// Tokens travel in the Authorization header, never in cookies, so a
	// permissive default does not expose sessions to other sites.
	CORSOrigins []string
}

// Server handles Plinth's API requests.
type Server struct {
	app  *core.App
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	authIP, authAccount *ratelimit.Limiter
	thumbs              *files.Thumbnailer
	inflight            *perIP
}

// New builds the HTTP handler for app.
func New(app *core.App, opts Options) *Server {
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
	s := &Server{app: app, opts: opts, log: app.Log, mux: http.NewServeMux(), thumbs: files.NewThumbnailer(opts.ThumbMemory)}
	if opts.MaxRequestsPerIP > 0 {
		s.inflight = &perIP{max: opts.MaxRequestsPerIP, n: map[string]int{}}
	}
	mk := func(perMinute, def float64) *ratelimit.Limiter {
		if perMinute < 0 {
			return nil
		}
		if perMinute == 0 {
			perMinute = def
		}
		return ratelimit.New(perMinute, max(1, int(perMinute)))
	}
	s.authIP, s.authAccount = mk(opts.AuthRatePerIP, 60), mk(opts.AuthRatePerAccount, 10)
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/health", s.health)
	m.HandleFunc("GET /api/collections", s.superuser(s.listCollections))
	m.HandleFunc("POST /api/collections", s.superuser(s.createCollection))
	m.HandleFunc("GET /api/collections/{collection}", s.superuser(s.viewCollection))
	m.HandleFunc("PATCH /api/collections/{collection}", s.superuser(s.updateCollection))
	m.HandleFunc("DELETE /api/collections/{collection}", s.superuser(s.deleteCollection))
	m.HandleFunc("GET /api/collections/{collection}/records", s.listRecords)
	m.HandleFunc("POST /api/collections/{collection}/records", s.createRecord)
	m.HandleFunc("GET /api/collections/{collection}/records/{id}", s.viewRecord)
	m.HandleFunc("PATCH /api/collections/{collection}/records/{id}", s.updateRecord)
	m.HandleFunc("DELETE /api/collections/{collection}/records/{id}", s.deleteRecord)
	m.HandleFunc("POST /api/collections/{collection}/auth-with-password", s.authWithPassword)
	m.HandleFunc("POST /api/collections/{collection}/auth-refresh", s.authRefresh)
	m.HandleFunc("POST /api/superusers/auth-with-password", s.superuserAuth)
	s.authFlowRoutes()
	m.HandleFunc("POST /api/collections/{collection}/request-otp", s.requestOTP)
	m.HandleFunc("GET /api/collections/{collection}/auth-methods", s.authMethods)
	m.HandleFunc("POST /api/collections/{collection}/auth-with-oauth2", s.authWithOAuth2)
	m.HandleFunc("POST /api/collections/{collection}/impersonate/{id}", s.superuser(s.impersonate))
	m.HandleFunc("POST /api/collections/{collection}/auth-with-otp", s.authWithOTP)
	m.HandleFunc("GET /api/files/{collection}/{record}/{filename}", s.serveFile)
	m.HandleFunc("POST /api/files/token", s.fileToken)
	if s.opts.Realtime != nil {
		m.HandleFunc("GET /api/realtime", s.realtimeSSE)
		m.HandleFunc("POST /api/realtime", s.realtimeSubscribe)
		m.HandleFunc("GET /api/realtime/ws", s.realtimeWS)
	}
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, apierr.NotFound("The requested resource wasn't found."))
	})
	if s.opts.Static != nil {
		m.Handle("/", spa(s.opts.Static))
	}
}

// spa serves static files, answering unknown paths with index.html so
// client-side routes survive a reload.
func spa(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
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
			files.ServeHTTP(w, r2)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler: recovery, security headers, CORS and
// authentication wrap every route.
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
	caller, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, caller))
	s.mux.ServeHTTP(w, r)
}

func (s *Server) allowedOrigin(o string) bool {
	for _, a := range s.opts.CORSOrigins {
		if a == "*" || strings.EqualFold(a, o) {
			return true
		}
	}
	return false
}

type callerKey struct{}

func callerOf(r *http.Request) *records.Caller {
	c, _ := r.Context().Value(callerKey{}).(*records.Caller)
	return c
}

// authenticate resolves the Authorization header. A present but invalid
// token is an error (401) rather than silently anonymous, so clients learn
// their session ended.
func (s *Server) authenticate(r *http.Request) (*records.Caller, error) {
	c := &records.Caller{Method: r.Method, Query: r.URL.Query(), Headers: r.Header}
	h := r.Header.Get("Authorization")
	if h == "" {
		return c, nil
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok = h
	}
	col, rec, err := s.app.Records.Authenticate(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		return nil, err
	}
	c.AuthCollection, c.Auth = col, rec
	return c, nil
}

func (s *Server) superuser(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !callerOf(r).Superuser() {
			s.fail(w, r, apierr.Forbidden("Only superusers can perform this action."))
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if raw, ok := v.(json.RawMessage); ok {
		w.Write(raw)
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// fail writes err in the standard shape. 5xx causes are logged with the
// request; clients only ever see the generic message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = apierr.New(http.StatusRequestEntityTooLarge, "The request body is too large (limit "+strconv.FormatInt(mbe.Limit, 10)+" bytes).")
	}
	e := apierr.From(err)
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
	writeJSON(w, e.Status, e)
}

// decodeBody reads a JSON object body within the size limit.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	raw, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	body := map[string]any{}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return body, nil
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, apierr.BadRequest("Invalid JSON body: expected an object.")
	}
	for k, v := range body {
		if !validTextTree(k) || !validTextTree(v) {
			return nil, apierr.BadRequest("Invalid JSON body: text may not contain NUL characters.").
				With(k, "validation_invalid_text", "Must be valid UTF-8 text without NUL characters.")
		}
	}
	return body, nil
}

// validTextTree reports whether every string in a decoded JSON value (and
// every object key) is storable text; see schema.ValidText.
func validTextTree(v any) bool {
	switch x := v.(type) {
	case string:
		return schema.ValidText(x)
	case []any:
		for _, e := range x {
			if !validTextTree(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range x {
			if !schema.ValidText(k) || !validTextTree(e) {
				return false
			}
		}
	}
	return true
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, apierr.New(http.StatusUnsupportedMediaType, "Content-Type must be application/json.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	raw, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return nil, ae
	}
	if err != nil && !errors.As(err, &mbe) {
		// A body cut short (the client hung up, or sent less than its
		// Content-Length) is the client's doing, not a server failure.
		e := apierr.BadRequest("The request body could not be read completely.")
		e.Cause = err
		return nil, e
	}
	return raw, err
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": 200, "message": "API is healthy.", "data": map[string]any{}})
}

func (s *Server) collection(r *http.Request) (*schema.Collection, error) {
	c, err := s.app.Collection(r.Context(), r.PathValue("collection"))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, apierr.NotFound("Missing collection context.")
	}
	return c, nil
}

// fresh runs op against collection c. When op fails with a server error
// and the stored schema moved on meanwhile (another node changed it and
// this node's notification is still in flight), it reloads and runs op
// once more against the current definition. A failed op has rolled back,
// so running it again is safe.
func (s *Server) fresh(r *http.Request, c *schema.Collection, op func(*schema.Collection) error) error {
	err := op(c)
	if err == nil || apierr.From(err).Status < 500 || s.app.DB.Notifier == nil {
		return err
	}
	before := s.app.Schema().Version
	if rerr := s.app.Reload(r.Context()); rerr != nil || s.app.Schema().Version == before {
		return err
	}
	c, cerr := s.collection(r)
	if cerr != nil {
		return cerr
	}
	return op(c)
}

// limitAuth applies the authentication rate limits for an attempt on an
// account: identity within scope (a collection and a flow). The account
// key is the identity in its canonical form, the one lookups use, so no
// spelling of it (spaces, case, lookalikes) earns a fresh allowance. It
// writes the 429 itself.
func (s *Server) limitAuth(w http.ResponseWriter, r *http.Request, scope, identity string) bool {
	now := time.Now()
	for _, l := range []struct {
		lim *ratelimit.Limiter
		key string
	}{{s.authIP, "ip:" + ratelimit.ClientIP(r, s.opts.TrustedProxies)}, {s.authAccount, "acct:" + scope + "/" + schema.NormalizeIdentity(identity)}} {
		if l.lim == nil {
			continue
		}
		if ok, wait := l.lim.Allow(l.key, now); !ok {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			s.fail(w, r, apierr.New(http.StatusTooManyRequests, "Too many attempts; try again later."))
			return false
		}
	}
	return true
}
