// Package plinth embeds a complete Plinth backend in a Go program:
//
//	app, err := plinth.New(ctx, plinth.Config{DataDir: "./plinth_data"})
//	if err != nil { ... }
//	defer app.Close()
//	err = app.Serve(ctx, "127.0.0.1:8090")
//
// or mount app.Handler() in your own server.
package plinth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/plinthhq/plinth/internal/collections"
	"github.com/plinthhq/plinth/internal/cron"
	"github.com/plinthhq/plinth/internal/dashboard"
	"github.com/plinthhq/plinth/internal/demo"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/identity"
	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/openapi"
	"github.com/plinthhq/plinth/internal/realtime"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/server"
	"github.com/plinthhq/plinth/internal/settings"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/postgres"
	"github.com/plinthhq/plinth/internal/sqldb/sqlite"
	"github.com/plinthhq/plinth/internal/webhooks"
	"github.com/plinthhq/plinth/ui"
)

// Version is the release version, set at build time with
// -ldflags "-X github.com/plinthhq/plinth.Version=v1.2.3".
var Version = "dev"

// App is a running Plinth instance.
type App struct {
	cfg    Config
	db     *sqldb.DB
	core   *collections.Service
	http   *server.Server
	stop   context.CancelFunc
	broker *realtime.Broker
	cron   *cron.Scheduler
	// mailDone is closed when the mail sender has stopped, so Close does
	// not pull the database from under a delivery in progress.
	mailDone chan struct{}
	dash     *dashboard.Dashboard
	// served is the http:// address this node serves (Config.HTTP until
	// Serve knows the listener's), the default target of email links.
	served atomic.Value
}

// ServedURL is the address this node serves, as http://host:port: the
// listener's once Serve runs, Config.HTTP before. Email links and the
// install link point here unless the settings name an appURL.
func (a *App) ServedURL() string { s, _ := a.served.Load().(string); return s }

// httpURL turns a listen address into a URL a browser on this machine
// can open: an unspecified host (":8090", "0.0.0.0:8090") becomes
// localhost.
func httpURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// InstallToken returns a fresh one-time token for creating the first
// superuser at /_/#/install/<token> (POST /api/superusers/install), valid
// for 30 minutes and only on this node, or "" when a superuser exists.
// Serve logs the link itself; this is for programs embedding Plinth.
func (a *App) InstallToken(ctx context.Context) (string, error) {
	return a.dash.Installer.Issue(ctx)
}

// New opens the database, applies system migrations and builds the API.
func New(ctx context.Context, cfg Config) (*App, error) {
	cfg = cfg.withDefaults()
	argon := secret.DefaultArgon2
	argon.Memory, argon.Time = cfg.PasswordHashing.MemoryKiB, cfg.PasswordHashing.Iterations
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c, err := collections.New(ctx, db, cfg.Logger, argon, collections.Options{UsersCollection: !cfg.NoUsersCollection})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise database: %w", err)
	}
	if c.Records.Files, err = openStorage(ctx, cfg); err != nil {
		db.Close()
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	mq := mail.NewQueue(db, cfg.Logger, func(ctx context.Context) (mail.SMTP, error) {
		st, err := settings.Load(ctx, db)
		if err != nil {
			return mail.SMTP{}, err
		}
		return st.SMTP, nil
	}, mail.QueueOptions{MaxAttempts: cfg.MailMaxAttempts, RetryBase: cfg.MailRetryBase, MaxAge: cfg.MailMaxAge})
	ident := identity.New(c.Records, cfg.Logger)
	ident.RegisterMailJobs(mq)
	mailDone := make(chan struct{})
	go func() { mq.Run(bg); close(mailDone) }()
	c.StartSchemaSync(bg, cfg.SchemaPoll)
	c.StartJanitor(bg, 10*time.Minute)
	if cfg.FileSweepInterval >= 0 {
		c.StartFileSweeper(bg, cfg.FileSweepInterval, cfg.FileSweepAge)
	}
	go c.Records.Changes.Run(bg)
	broker := realtime.New(c.Records, ident, c.Schema, cfg.Logger, realtime.Options{Poll: cfg.ChangesPoll})
	ident.Revoked = broker.Revoke
	if err := broker.Init(ctx); err != nil {
		cancel()
		db.Close()
		return nil, fmt.Errorf("read the change log: %w", err)
	}
	go broker.Run(bg)
	hooks := webhooks.New(c.Records, cfg.Logger, webhooks.Options{AllowPrivate: cfg.Webhooks.AllowPrivate, Timeout: cfg.Webhooks.Timeout,
		RetryBase: cfg.Webhooks.RetryBase, RetryFor: cfg.Webhooks.RetryFor, LeaseTTL: cfg.Webhooks.LeaseTTL, Poll: cfg.ChangesPoll})
	go hooks.Run(bg)
	sched := cron.New(db, cfg.Logger, schema.RandomString(8))
	// The change log is pruned by one node per run; clients further
	// behind than what is kept get a reset event when they resume.
	if err := sched.Add("changes-prune", "*/5 * * * *", func(ctx context.Context) error {
		n, err := c.Records.Changes.Prune(ctx, cfg.ChangesMaxAge, cfg.ChangesMaxCount)
		if n > 0 {
			cfg.Logger.Debug("change log pruned", "entries", n)
		}
		if _, werr := hooks.PruneLog(ctx, cfg.Webhooks.LogMaxAge); werr != nil {
			err = errors.Join(err, werr)
		}
		return err
	}); err != nil {
		cancel()
		db.Close()
		return nil, err
	}
	go sched.Run(bg)
	a := &App{cfg: cfg, db: db, core: c, stop: cancel, broker: broker, mailDone: mailDone, cron: sched}
	a.served.Store(httpURL(cfg.HTTP))
	ident.ServedURL = a.ServedURL
	if a.dash, err = dashboard.New(ui.Dist(), c, a.ServedURL); err != nil {
		a.Close()
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	var proxies []netip.Prefix
	for _, p := range cfg.TrustedProxies {
		pp, err := netip.ParsePrefix(p)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("invalid trusted proxy %q: want CIDR like 10.0.0.0/8", p)
		}
		proxies = append(proxies, pp)
	}
	a.http = server.New(server.Deps{Collections: c, Identity: ident, Realtime: broker, Webhooks: hooks, Dashboard: a.dash, Log: cfg.Logger}, server.Options{AuthRatePerIP: cfg.AuthRatePerIP, AuthRatePerAccount: cfg.AuthRatePerAccount, TrustedProxies: proxies, MaxBodyBytes: cfg.MaxBodyBytes, CORSOrigins: cfg.CORSOrigins, Static: cfg.Static, MaxUploadBytes: cfg.MaxUploadBytes, ThumbMemory: cfg.ThumbMemory, BatchMaxRequests: cfg.BatchMaxRequests,
		BodyGrace: cfg.BodyGrace, MinBodyRate: cfg.MinBodyRate, MaxRequestsPerIP: cfg.MaxRequestsPerIP, Runtime: runtimeInfo(cfg)})
	if err := a.migrate(ctx, cfg.Migrations); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// runtimeInfo is the part of cfg superusers see read-only in the
// dashboard (never a secret).
func runtimeInfo(cfg Config) settings.Runtime {
	var rt settings.Runtime
	rt.RateLimits.AuthPerIP, rt.RateLimits.AuthPerAccount, rt.RateLimits.MaxRequestsPerIP = cfg.AuthRatePerIP, cfg.AuthRatePerAccount, cfg.MaxRequestsPerIP
	rt.CORSOrigins, rt.MaxBodyBytes, rt.MaxUploadBytes = cfg.CORSOrigins, cfg.MaxBodyBytes, cfg.MaxUploadBytes
	rt.Storage.Kind = "local"
	if cfg.S3.Bucket != "" {
		rt.Storage.Kind, rt.Storage.Endpoint, rt.Storage.Region, rt.Storage.Bucket, rt.Storage.Prefix = "s3", cfg.S3.Endpoint, cfg.S3.Region, cfg.S3.Bucket, cfg.S3.Prefix
	}
	return rt
}

func openStorage(ctx context.Context, cfg Config) (files.Storage, error) {
	if cfg.S3.Bucket == "" {
		return files.Local{Dir: filepath.Join(cfg.DataDir, "storage")}, nil
	}
	return files.NewS3(ctx, files.S3Options{Endpoint: cfg.S3.Endpoint, Region: cfg.S3.Region, Bucket: cfg.S3.Bucket,
		AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey, PathStyle: cfg.S3.PathStyle, Prefix: cfg.S3.Prefix})
}

func openDB(ctx context.Context, cfg Config) (*sqldb.DB, error) {
	switch {
	case cfg.DB == "" || strings.HasPrefix(cfg.DB, "sqlite:"):
		return sqlite.Open(cfg.DataDir, sqlite.Options{Synchronous: cfg.SQLiteSynchronous})
	case strings.HasPrefix(cfg.DB, "postgres://") || strings.HasPrefix(cfg.DB, "postgresql://"):
		return postgres.Open(ctx, cfg.DB, postgres.Options{MaxConns: cfg.PGMaxConns, StatementTimeout: cfg.PGStatementTimeout, LockTimeout: cfg.PGLockTimeout})
	}
	return nil, errors.New("unsupported database URL scheme (use postgres://... or leave empty for SQLite)")
}

// Handler returns the HTTP handler serving the API.
func (a *App) Handler() http.Handler { return a.http }

// Serve listens on addr (Config.HTTP when empty) until ctx is cancelled, then stops accepting
// connections, lets in-flight requests finish (up to ShutdownTimeout)
// and returns. It does not close the database; call Close after.
func (a *App) Serve(ctx context.Context, addr string) error {
	if addr == "" {
		addr = a.cfg.HTTP
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return a.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener.
func (a *App) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.http,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(a.cfg.Logger.Handler(), slog.LevelWarn),
	}
	// Streams never go idle: end them when shutdown starts.
	srv.RegisterOnShutdown(a.broker.Shutdown)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.served.Store(httpURL(ln.Addr().String()))
	a.cfg.Logger.Info("plinth serving", "addr", ln.Addr().String(), "db", a.db.Dialect.Name(), "dashboard", a.ServedURL()+"/_/")
	if tok, err := a.InstallToken(ctx); err != nil {
		a.cfg.Logger.Warn("cannot check for a superuser", "err", err)
	} else if tok != "" {
		a.cfg.Logger.Warn("no superuser yet: open this one-time link (valid 30 minutes) to create one, or run `plinth superuser upsert`",
			"url", a.ServedURL()+"/_/#/install/"+tok)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(<-errc, http.ErrServerClosed) || err != nil {
		return err
	}
	return nil
}

// SweepOrphanFiles removes stored files that no committed record
// references and that are older than olderThan (see
// Config.FileSweepInterval, which runs it periodically). It returns how
// many it removed.
func (a *App) SweepOrphanFiles(ctx context.Context, olderThan time.Duration) (int, error) {
	return a.core.SweepFiles(ctx, olderThan)
}

// PruneChangeLog applies the change log's retention (Config.ChangesMaxAge
// and ChangesMaxCount) now, as the scheduled job does every five minutes,
// and returns how many entries it removed. Realtime clients further behind
// than what is kept get a reset event when they resume.
func (a *App) PruneChangeLog(ctx context.Context) (int64, error) {
	return a.core.Records.Changes.Prune(ctx, a.cfg.ChangesMaxAge, a.cfg.ChangesMaxCount)
}

// UpsertSuperuser creates the superuser or sets its password.
func (a *App) UpsertSuperuser(ctx context.Context, email, password string) error {
	return a.core.UpsertSuperuser(ctx, email, password)
}

// DeleteSuperuser removes a superuser; it reports whether one existed.
func (a *App) DeleteSuperuser(ctx context.Context, email string) (bool, error) {
	return a.core.DeleteSuperuser(ctx, email)
}

// TypeScript returns TypeScript declarations of every collection's
// records and a TypedPocketBase for the PocketBase JavaScript SDK, built
// from the schema in force (see `plinth typegen`).
func (a *App) TypeScript() string { return openapi.TypeScript(a.core.Schema().All()) }

// ExportCollections returns every collection definition as indented JSON
// (OAuth2 client secrets left out), for `plinth schema export`.
func (a *App) ExportCollections() ([]byte, error) { return a.core.Export() }

// ImportCollections creates and updates collections from definitions in
// Plinth's or PocketBase's shape (a JSON array, or {"collections": [...]}
// as PUT /api/collections/import takes); with deleteMissing, other
// non-system collections are deleted. See PUT /api/collections/import.
func (a *App) ImportCollections(ctx context.Context, data []byte, deleteMissing bool) error {
	return a.core.ImportJSON(ctx, data, deleteMissing)
}

// Close stops background work and closes the database cleanly.
func (a *App) Close() error {
	a.stop()
	<-a.mailDone
	select {
	case <-a.core.Records.Changes.Done():
	case <-time.After(6 * time.Second):
	}
	return a.db.Close()
}

// DemoOptions size the microblog demo data set.
type DemoOptions struct {
	Users, Posts, Follows, Likes int
	Seed                         uint64
}

// InstallDemo creates the microblog showcase collections and rules (those
// not already present); fresh reports whether it created the users
// collection, i.e. whether the data set is new and wants seeding.
func (a *App) InstallDemo(ctx context.Context) (fresh bool, err error) {
	return demo.Install(ctx, a.core)
}

// SeedDemo fills the microblog collections with deterministic data; every
// generated user (user00001@example.com ...) has the password DemoPassword.
func (a *App) SeedDemo(ctx context.Context, o DemoOptions) error {
	return demo.Seed(ctx, a.core, demo.SeedOptions{Users: o.Users, Posts: o.Posts, Follows: o.Follows, Likes: o.Likes, Seed: o.Seed})
}

// DemoPassword is the password of every seeded demo user.
const DemoPassword = demo.DemoPassword

// DemoWeb is the microblog web client, for Config.Static.
func DemoWeb() fs.FS { return demo.Web() }
