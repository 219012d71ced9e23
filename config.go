package plinth

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Config configures an App. Every option has its default in
// DefaultConfig, and the zero value of a field means that default (so the
// zero Config runs on embedded SQLite in ./plinth_data). A field with a
// `flag` tag is also a command-line flag and a PLINTH_* environment
// variable (BindFlags), so the three can never disagree.
type Config struct {
	// HTTP is the address Serve listens on.
	HTTP string `flag:"http" usage:"address to listen on"`
	// DataDir holds the SQLite database and the locally stored files.
	DataDir string `flag:"dir" usage:"data directory (embedded database and files)"`
	// DB selects the database: empty for embedded SQLite in DataDir, or a
	// postgres:// URL; several nodes may share one PostgreSQL database.
	DB string `flag:"db" usage:"database URL, e.g. postgres://user@host/db (default: embedded SQLite in --dir)"`
	// PGMaxConns bounds this node's PostgreSQL connections.
	PGMaxConns int `flag:"pg-max-conns" usage:"PostgreSQL: maximum open connections of this node"`
	// PGStatementTimeout aborts runaway statements.
	PGStatementTimeout time.Duration `flag:"pg-statement-timeout" usage:"PostgreSQL: abort statements running longer than this"`
	// ChangesPoll is how often each node reads the change log when no
	// wake-up arrived: the bound on realtime latency when a notification
	// is lost (and the latency on engines without notifications).
	ChangesPoll time.Duration `flag:"changes-poll" usage:"how often each node reads the change log without a wake-up (bounds realtime delay when a notification is lost)"`
	// ChangesMaxAge and ChangesMaxCount bound the change log: a client
	// can resume from any position still in it.
	ChangesMaxAge time.Duration `flag:"changes-max-age" usage:"keep change log entries (for realtime resume) this long"`
	// ChangesMaxCount: see ChangesMaxAge.
	ChangesMaxCount int `flag:"changes-max-count" usage:"keep at most this many change log entries (-1: no count limit)"`
	// Webhooks tune outbound webhook delivery.
	Webhooks WebhookConfig
	// PGLockTimeout bounds a statement's wait for a lock (then 503).
	PGLockTimeout time.Duration `flag:"pg-lock-timeout" usage:"PostgreSQL: give up waiting for a row or table lock after this (the request gets a 503)"`
	// SQLiteSynchronous is PRAGMA synchronous (FULL: every acknowledged
	// write is on disk before the answer).
	SQLiteSynchronous string `flag:"sqlite-synchronous" usage:"SQLite: PRAGMA synchronous (FULL keeps every acknowledged write on power loss)"`
	// PasswordHashing tunes argon2id for new password hashes.
	PasswordHashing HashParams
	// MaxBodyBytes bounds JSON request bodies (413 beyond).
	MaxBodyBytes int64 `flag:"max-body" usage:"largest JSON request body in bytes"`
	// MaxUploadBytes bounds one multipart request.
	MaxUploadBytes int64 `flag:"max-upload" usage:"largest multipart (file upload) request in bytes"`
	// CORSOrigins lists allowed browser origins ("*": any).
	CORSOrigins []string `flag:"cors-origins" usage:"allowed browser origins, comma-separated (* for any)"`
	// Static is served at / for paths outside /api/ (nil: nothing), with
	// index.html as the fallback for client-side routes.
	Static fs.FS
	// Logger receives structured logs (nil: slog.Default()).
	Logger *slog.Logger
	// ShutdownTimeout bounds how long Serve waits for in-flight requests.
	ShutdownTimeout time.Duration `flag:"shutdown-timeout" usage:"how long a stopping server waits for in-flight requests"`
	// S3, when Bucket is set, stores files in an S3-compatible service
	// instead of DataDir/storage (required when several nodes serve the
	// same database: local disks are not shared).
	S3 S3Config
	// BodyGrace and MinBodyRate bound slow request bodies: after the
	// grace period a body must arrive at MinBodyRate bytes a second on
	// average, or the request ends with 408 (negative rate: no minimum).
	BodyGrace   time.Duration `flag:"body-grace" usage:"time a request body may take before --min-body-rate applies"`
	MinBodyRate int64         `flag:"min-body-rate" usage:"bytes a second a request body must average after --body-grace (negative: no minimum)"`
	// MaxRequestsPerIP caps requests in flight per client IP, realtime
	// streams included (negative: no cap).
	MaxRequestsPerIP int `flag:"max-requests-per-ip" usage:"requests in flight per client IP, realtime streams included (negative: no cap)"`
	// FileSweepInterval is how often stored files no committed record
	// references (left by crashes) are removed, at start and then
	// periodically (negative: never); FileSweepAge is how old such a file
	// must be, so uploads in flight are never touched.
	FileSweepInterval time.Duration `flag:"file-sweep-interval" usage:"how often orphaned stored files are removed (negative: never)"`
	FileSweepAge      time.Duration `flag:"file-sweep-age" usage:"how old an orphaned file must be before it is removed"`
	// ThumbMemory is the memory all thumbnail decodes share: an image
	// whose decode would need more is served unscaled.
	ThumbMemory int64 `flag:"thumb-memory" usage:"bytes of memory all thumbnail decodes share; larger images are served unscaled"`
	// AuthRatePerIP and AuthRatePerAccount bound login attempts a minute
	// (negative: off).
	AuthRatePerIP      float64 `flag:"auth-rate-ip" usage:"login attempts a minute per client IP (negative: no limit)"`
	AuthRatePerAccount float64 `flag:"auth-rate-account" usage:"login attempts a minute per account (negative: no limit)"`
	// TrustedProxies lists proxy networks (CIDR) whose X-Forwarded-For
	// header gives the client IP.
	TrustedProxies []string `flag:"trusted-proxy" usage:"CIDR of a reverse proxy whose X-Forwarded-For is trusted (comma-separated or repeated)"`
	// MailMaxAttempts bounds delivery attempts of one queued email;
	// MailRetryBase is the first retry delay, doubling up to 10 minutes;
	// MailMaxAge gives up an email not delivered that long after it was
	// queued (the flows answer someone waiting).
	MailMaxAttempts int           `flag:"mail-max-attempts" usage:"delivery attempts of one queued email before it is given up"`
	MailRetryBase   time.Duration `flag:"mail-retry-base" usage:"first retry delay of a failed email (doubles up to 10m)"`
	MailMaxAge      time.Duration `flag:"mail-max-age" usage:"how long after it was queued an undelivered email is given up"`
	// BatchMaxRequests bounds the requests of one POST /api/batch (all
	// run in one transaction, holding the write lock while they run).
	BatchMaxRequests int `flag:"batch-max-requests" usage:"most requests one POST /api/batch may carry"`
	// NoUsersCollection leaves a new database without the "users" auth
	// collection it otherwise starts with (as PocketBase's does: sign-up
	// and login work at once). Only a database with no collections of
	// its own gets it; the decision is recorded, so it is made once.
	NoUsersCollection bool `flag:"no-users-collection" usage:"do not create the default users auth collection in a new database"`
	// Migrations are the program's own migrations, run once each when New
	// starts (see Migration).
	Migrations []Migration
	// SchemaPoll is how often a node sharing a database with others
	// re-checks the schema version, as a backstop to notifications.
	SchemaPoll time.Duration `flag:"schema-poll" usage:"how often a node re-checks the shared schema version (backstop to notifications)"`
}

// S3Config locates a bucket in any S3-compatible service.
type S3Config struct {
	Endpoint  string `flag:"s3-endpoint" usage:"S3-compatible endpoint for file storage (default: local disk in --dir)"`
	Region    string `flag:"s3-region" usage:"S3 region"`
	Bucket    string `flag:"s3-bucket" usage:"S3 bucket (enables S3 storage)"`
	AccessKey string `flag:"s3-access-key" usage:"S3 access key"`
	// SecretKey is best given as PLINTH_S3_SECRET_KEY, out of the
	// process list.
	SecretKey string `flag:"s3-secret-key" usage:"S3 secret key (prefer the environment variable)"`
	Prefix    string `flag:"s3-prefix" usage:"key prefix inside the bucket"`
	// PathStyle addresses the bucket in the path (MinIO and most
	// self-hosted services) rather than in the host name.
	PathStyle bool `flag:"s3-path-style" usage:"address the bucket in the URL path (MinIO and most self-hosted services)"`
}

// HashParams tune argon2id for new password hashes.
type HashParams struct {
	MemoryKiB  uint32 `flag:"argon2-memory" usage:"argon2id memory per password hash, KiB"`
	Iterations uint32 `flag:"argon2-iterations" usage:"argon2id passes per password hash"`
}

// DefaultConfig returns every option's default: the one place defaults
// live.
func DefaultConfig() Config {
	return Config{
		HTTP:               "127.0.0.1:8090",
		DataDir:            "./plinth_data",
		PGMaxConns:         20,
		PGStatementTimeout: 30 * time.Second,
		PGLockTimeout:      5 * time.Second,
		ChangesPoll:        time.Second,
		ChangesMaxAge:      24 * time.Hour,
		ChangesMaxCount:    100000,
		Webhooks:           WebhookConfig{Timeout: 10 * time.Second, RetryBase: 10 * time.Second, RetryFor: 24 * time.Hour, LeaseTTL: 15 * time.Second, LogMaxAge: 7 * 24 * time.Hour},
		SQLiteSynchronous:  "FULL",
		PasswordHashing:    HashParams{MemoryKiB: 19 * 1024, Iterations: 2},
		MaxBodyBytes:       16 << 20,
		MaxUploadBytes:     1 << 30,
		CORSOrigins:        []string{"*"},
		ShutdownTimeout:    15 * time.Second,
		BodyGrace:          10 * time.Second,
		MinBodyRate:        1024,
		MaxRequestsPerIP:   512,
		FileSweepInterval:  time.Hour,
		FileSweepAge:       time.Hour,
		ThumbMemory:        256 << 20,
		AuthRatePerIP:      60,
		AuthRatePerAccount: 10,
		MailMaxAttempts:    10,
		MailRetryBase:      5 * time.Second,
		MailMaxAge:         time.Hour,
		SchemaPoll:         10 * time.Second,
		BatchMaxRequests:   50,
	}
}

// withDefaults fills every zero field of c from DefaultConfig.
func (c Config) withDefaults() Config {
	fillZero(reflect.ValueOf(&c).Elem(), reflect.ValueOf(DefaultConfig()))
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func fillZero(dst, def reflect.Value) {
	for i := 0; i < dst.NumField(); i++ {
		f := dst.Field(i)
		if f.Kind() == reflect.Struct && dst.Type().Field(i).Type != reflect.TypeOf(time.Time{}) {
			fillZero(f, def.Field(i))
			continue
		}
		if f.IsZero() && f.CanSet() {
			f.Set(def.Field(i))
		}
	}
}

// WebhookConfig tunes outbound webhooks.
type WebhookConfig struct {
	// AllowPrivate lets webhooks reach loopback, private and link-local
	// addresses (off by default: no requests to internal services).
	AllowPrivate bool `flag:"webhooks-allow-private" usage:"let webhooks call loopback, private and link-local addresses"`
	// Timeout bounds one delivery attempt.
	Timeout time.Duration `flag:"webhooks-timeout" usage:"time limit of one webhook delivery attempt"`
	// RetryBase is the first retry delay (doubled per failure, max 1h).
	RetryBase time.Duration `flag:"webhooks-retry-base" usage:"delay before the first retry of a failed webhook delivery (doubles per failure, at most 1h)"`
	// RetryFor is how long a delivery is retried before it is given up.
	RetryFor time.Duration `flag:"webhooks-retry-for" usage:"how long a failing webhook delivery is retried before it is given up"`
	// LeaseTTL is how long the node delivering webhooks keeps the job
	// after it stops renewing (dies): then another node takes over.
	LeaseTTL time.Duration `flag:"webhooks-lease-ttl" usage:"how soon another node takes over webhook delivery from a node that died"`
	// LogMaxAge is how long finished deliveries stay in the delivery log.
	LogMaxAge time.Duration `flag:"webhooks-log-max-age" usage:"keep delivered and given-up webhook deliveries in the log this long"`
}

// EnvName is the environment variable that sets a flag: PLINTH_ and the
// flag's name in upper case with dashes as underscores (--pg-max-conns:
// PLINTH_PG_MAX_CONNS).
func EnvName(flag string) string {
	return "PLINTH_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BindFlags defines a flag for every tagged field of c on fs, with c's
// current values (normally DefaultConfig) as defaults, overridden by the
// field's PLINTH_* environment variable when set. Parsing fs then writes
// into c. An environment variable that does not parse is an error naming
// it.
func (c *Config) BindFlags(fs *pflag.FlagSet) error {
	return bindFlags(fs, reflect.ValueOf(c).Elem())
}

func bindFlags(fs *pflag.FlagSet, v reflect.Value) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf, f := t.Field(i), v.Field(i)
		name := sf.Tag.Get("flag")
		if name == "" {
			if f.Kind() == reflect.Struct {
				if err := bindFlags(fs, f); err != nil {
					return err
				}
			}
			continue
		}
		usage := sf.Tag.Get("usage") + " (env " + EnvName(name) + ")"
		if env, ok := os.LookupEnv(EnvName(name)); ok {
			if err := setFromString(f, env); err != nil {
				return fmt.Errorf("environment variable %s=%q: %v", EnvName(name), env, err)
			}
		}
		switch p := f.Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, name, *p, usage)
		case *int:
			fs.IntVar(p, name, *p, usage)
		case *int64:
			fs.Int64Var(p, name, *p, usage)
		case *uint32:
			fs.Uint32Var(p, name, *p, usage)
		case *float64:
			fs.Float64Var(p, name, *p, usage)
		case *bool:
			fs.BoolVar(p, name, *p, usage)
		case *time.Duration:
			fs.DurationVar(p, name, *p, usage)
		case *[]string:
			fs.StringSliceVar(p, name, *p, usage)
		default:
			return fmt.Errorf("config field %s: no flag for type %s", sf.Name, f.Type())
		}
	}
	return nil
}

// setFromString parses an environment value into a field.
func setFromString(f reflect.Value, s string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = s
	case *int:
		n, err := strconv.Atoi(s)
		*p = n
		return err
	case *int64:
		n, err := strconv.ParseInt(s, 10, 64)
		*p = n
		return err
	case *uint32:
		n, err := strconv.ParseUint(s, 10, 32)
		*p = uint32(n)
		return err
	case *float64:
		n, err := strconv.ParseFloat(s, 64)
		*p = n
		return err
	case *bool:
		b, err := strconv.ParseBool(s)
		*p = b
		return err
	case *time.Duration:
		d, err := time.ParseDuration(s)
		*p = d
		return err
	case *[]string:
		*p = nil
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	}
	return nil
}
