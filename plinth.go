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
	"cmp"
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
	"time"

	"github.com/plinthhq/plinth/internal/collections"
	"github.com/plinthhq/plinth/internal/demo"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/identity"
	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/realtime"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/server"
	"github.com/plinthhq/plinth/internal/settings"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/postgres"
	"github.com/plinthhq/plinth/internal/sqldb/sqlite"
)

// Version is the release version, set at build time with
// -ldflags "-X github.com/plinthhq/plinth.Version=v1.2.3".
var Version = "dev"

// Config configures an App. The zero value runs on embedded SQLite in
// ./plinth_data.
type Config struct {
	// DataDir holds the SQLite database and, later, uploaded files.
	DataDir string
	// DB selects the database: empty for embedded SQLite in DataDir, or a
	// postgres:// URL; several nodes may share one PostgreSQL database.
	DB string
	// PGMaxConns bounds this node's PostgreSQL connections (default 20).
	PGMaxConns int
	// PGStatementTimeout aborts runaway statements (default 30s).
	PGStatementTimeout time.Duration
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// SQLiteSynchronous overrides PRAGMA synchronous (default FULL: every
	// acknowledged write is on disk).
	SQLiteSynchronous string
	// PasswordHashing tunes argon2id for new password hashes.
	PasswordHashing HashParams
	// MaxBodyBytes bounds JSON request bodies (default 16 MiB).
	MaxBodyBytes int64
	// CORSOrigins lists allowed browser origins (default any).
	CORSOrigins []string
	// Static is served at / for paths outside /api/ (nil: nothing), with
	// index.html as the fallback for client-side routes.
	Static fs.FS
	// ShutdownTimeout bounds how long Serve waits for in-flight requests.
	ShutdownTimeout time.Duration
	// S3, when Bucket is set, stores files in an S3-compatible service
	// instead of DataDir/storage (required when several nodes serve the
	// same database: local disks are not shared).
	S3 S3Config
	// MaxUploadBytes bounds one multipart request (default 1 GiB).
	MaxUploadBytes int64
	// BodyGrace and MinBodyRate bound slow request bodies: after the
	// grace period a body must arrive at MinBodyRate bytes a second on
	// average, or the request ends with 408 (defaults 10s, 1024; a
	// negative rate disables it).
	BodyGrace   time.Duration
	MinBodyRate int64
	// MaxRequestsPerIP caps requests in flight per client IP, realtime
	// streams included (default 512; negative: no cap).
	MaxRequestsPerIP int
	// FileSweepInterval is how often stored files no committed record
	// references (left by crashes) are removed, at start and then
	// periodically (default 1h; negative: never); FileSweepAge is how old
	// such a file must be, so uploads in flight are never touched
	// (default 1h).
	FileSweepInterval, FileSweepAge time.Duration
	// ThumbMemory is the memory all thumbnail decodes share (default 256
	// MiB): an image whose decode would need more is served unscaled.
	ThumbMemory int64
	// AuthRatePerIP and AuthRatePerAccount bound login attempts a minute
	// (0: defaults 60 per IP, 10 per account; negative: off).
	AuthRatePerIP, AuthRatePerAccount float64
	// TrustedProxies lists proxy networks (CIDR) whose X-Forwarded-For
	// header gives the client IP.
	TrustedProxies []string
	// MailMaxAttempts bounds delivery attempts of one queued email
	// (default 10); MailRetryBase is the first retry delay, doubling up to
	// 10 minutes (default 5s).
	MailMaxAttempts int
	MailRetryBase   time.Duration
	// SchemaPoll is how often a node sharing a database with others
	// re-checks the schema version, as a backstop to notifications
	// (default 10s).
	SchemaPoll time.Duration
}

// S3Config locates a bucket in any S3-compatible service.
type S3Config struct {
	Endpoint, Region, Bucket, AccessKey, SecretKey, Prefix string
	// PathStyle addresses the bucket in the path (MinIO and most
	// self-hosted services) rather than in the host name.
	PathStyle bool
}

// HashParams tune argon2id; zero fields take the defaults (19 MiB, 2 passes).
type HashParams struct {
	MemoryKiB  uint32
	Iterations uint32
}

// App is a running Plinth instance.
type App struct {
	cfg    Config
	db     *sqldb.DB
	core   *collections.Service
	http   http.Handler
	stop   context.CancelFunc
	broker *realtime.Broker
	// mailDone is closed when the mail sender has stopped, so Close does
	// not pull the database from under a delivery in progress.
	mailDone chan struct{}
}

// New opens the database, applies system migrations and builds the API.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "./plinth_data"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	argon := secret.DefaultArgon2
	if cfg.PasswordHashing.MemoryKiB > 0 {
		argon.Memory = cfg.PasswordHashing.MemoryKiB
	}
	if cfg.PasswordHashing.Iterations > 0 {
		argon.Time = cfg.PasswordHashing.Iterations
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c, err := collections.New(ctx, db, cfg.Logger, argon)
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
	}, mail.QueueOptions{MaxAttempts: cfg.MailMaxAttempts, RetryBase: cfg.MailRetryBase})
	ident := identity.New(c.Records, cfg.Logger)
	ident.RegisterMailJobs(mq)
	mailDone := make(chan struct{})
	go func() { mq.Run(bg); close(mailDone) }()
	c.StartSchemaSync(bg, cfg.SchemaPoll)
	c.StartJanitor(bg, 10*time.Minute)
	if cfg.FileSweepInterval >= 0 {
		c.StartFileSweeper(bg, cmp.Or(cfg.FileSweepInterval, time.Hour), cmp.Or(cfg.FileSweepAge, time.Hour))
	}
	broker := realtime.New(c.Records, ident, c.Schema, db.Notifier, cfg.Logger, realtime.Options{})
	c.Records.OnChange = broker.Publish
	go broker.Run(bg)
	a := &App{cfg: cfg, db: db, core: c, stop: cancel, broker: broker, mailDone: mailDone}
	var proxies []netip.Prefix
	for _, p := range cfg.TrustedProxies {
		pp, err := netip.ParsePrefix(p)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("invalid trusted proxy %q: want CIDR like 10.0.0.0/8", p)
		}
		proxies = append(proxies, pp)
	}
	a.http = server.New(server.Deps{Collections: c, Identity: ident, Realtime: broker, Log: cfg.Logger}, server.Options{AuthRatePerIP: cfg.AuthRatePerIP, AuthRatePerAccount: cfg.AuthRatePerAccount, TrustedProxies: proxies, MaxBodyBytes: cfg.MaxBodyBytes, CORSOrigins: cfg.CORSOrigins, Static: cfg.Static, MaxUploadBytes: cfg.MaxUploadBytes, ThumbMemory: cfg.ThumbMemory,
		BodyGrace: cfg.BodyGrace, MinBodyRate: cfg.MinBodyRate, MaxRequestsPerIP: cfg.MaxRequestsPerIP})
	return a, nil
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
		return postgres.Open(ctx, cfg.DB, postgres.Options{MaxConns: cfg.PGMaxConns, StatementTimeout: cfg.PGStatementTimeout})
	}
	return nil, errors.New("unsupported database URL scheme (use postgres://... or leave empty for SQLite)")
}

// Handler returns the HTTP handler serving the API.
func (a *App) Handler() http.Handler { return a.http }

// Serve listens on addr until ctx is cancelled, then stops accepting
// connections, lets in-flight requests finish (up to ShutdownTimeout)
// and returns. It does not close the database; call Close after.
func (a *App) Serve(ctx context.Context, addr string) error {
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
	a.cfg.Logger.Info("plinth serving", "addr", ln.Addr().String(), "db", a.db.Dialect.Name())
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

// UpsertSuperuser creates the superuser or sets its password.
func (a *App) UpsertSuperuser(ctx context.Context, email, password string) error {
	return a.core.UpsertSuperuser(ctx, email, password)
}

// DeleteSuperuser removes a superuser; it reports whether one existed.
func (a *App) DeleteSuperuser(ctx context.Context, email string) (bool, error) {
	return a.core.DeleteSuperuser(ctx, email)
}

// Close stops background work and closes the database cleanly.
func (a *App) Close() error {
	a.stop()
	<-a.mailDone
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
