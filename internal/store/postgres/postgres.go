// Package postgres is the client/server store: PostgreSQL through pgx v5
// (via database/sql, so the rest of Plinth is engine-agnostic), with
// LISTEN/NOTIFY as the channel between nodes sharing one database.
package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/store"
)

// Options tune the connection pool.
type Options struct {
	// MaxConns bounds open connections per node (default 20). Several
	// nodes share the server's max_connections, so size it per fleet.
	MaxConns int
	// MinConns kept idle and warm (default 2).
	MinConns int
	// StatementTimeout aborts a runaway statement (default 30s).
	StatementTimeout time.Duration
	// ConnectTimeout bounds each connection attempt (default 5s).
	ConnectTimeout time.Duration
}

// describe names the target without credentials, for error messages.
func describe(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s/%s as %s", net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database, c.User)
}

// scrub removes the password from an error text: driver errors may echo
// the connection string, and startup errors end up in logs.
func scrub(err error, password string) string {
	msg := err.Error()
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "********")
	}
	return passwordRe.ReplaceAllString(msg, "${1}********")
}

var passwordRe = regexp.MustCompile(`(password=|://[^:/@\s]*:)[^\s@&]*`)

// Open connects to url and checks the server answers.
func Open(ctx context.Context, url string, o Options) (*store.DB, error) {
	if o.MaxConns <= 0 {
		o.MaxConns = 20
	}
	if o.MinConns <= 0 {
		o.MinConns = 2
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 30 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %s", scrub(err, ""))
	}
	cfg.ConnectTimeout = o.ConnectTimeout
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["application_name"] = "plinth"
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(o.MaxConns)
	db.SetMaxIdleConns(o.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout+time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: cannot connect to %s: %s", describe(cfg), scrub(err, cfg.Password))
	}
	out := store.NewDB(Dialect{}, db, db, db.Close)
	out.Notifier = &notifier{db: db, cfg: cfg}
	return out, nil
}

// Dialect renders PostgreSQL SQL.
type Dialect struct{}

var _ store.Dialect = Dialect{}

// Name implements store.Dialect.
func (Dialect) Name() string { return "postgres" }

// Placeholder implements store.Dialect.
func (Dialect) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// Quote implements store.Dialect.
func (Dialect) Quote(s string) string { return store.QuoteIdent(s) }

// ColumnType implements store.Dialect. Text sorts bytewise (COLLATE "C")
// so ordering and comparisons agree with SQLite's on every node whatever
// the server's locale.
func (Dialect) ColumnType(k schema.ColumnKind) string {
	switch k {
	case schema.ColNumber:
		return "DOUBLE PRECISION NOT NULL DEFAULT 0"
	case schema.ColBool:
		return "BOOLEAN NOT NULL DEFAULT FALSE"
	case schema.ColJSON:
		return "JSONB DEFAULT NULL"
	case schema.ColArray:
		return "JSONB NOT NULL DEFAULT '[]'"
	}
	return `TEXT COLLATE "C" NOT NULL DEFAULT ''`
}

func asArray(expr string) string {
	return "(CASE WHEN jsonb_typeof((" + expr + ")::jsonb) = 'array' THEN (" + expr + ")::jsonb ELSE '[]'::jsonb END)"
}

// JSONEach implements store.Dialect.
func (Dialect) JSONEach(expr, alias string) string {
	return "jsonb_array_elements_text(" + asArray(expr) + ") AS " + alias + "(value)"
}

// JSONEachParam implements store.Dialect.
func (Dialect) JSONEachParam(p, alias string) string {
	return "jsonb_array_elements_text(CAST(" + p + " AS JSONB)) AS " + alias + "(value)"
}

// JSONArrayLength implements store.Dialect.
func (Dialect) JSONArrayLength(expr string) string {
	return "jsonb_array_length(" + asArray(expr) + ")"
}

// JSONPath implements store.Dialect.
func (Dialect) JSONPath(expr string, path []string) string {
	return "((" + expr + ")::jsonb #>> '{" + strings.Join(path, ",") + "}')"
}

// Like implements store.Dialect.
func (Dialect) Like(expr, param string) string { return expr + ` ILIKE ` + param + ` ESCAPE '\'` }

// CastText implements store.Dialect.
func (Dialect) CastText(expr string) string { return "CAST(" + expr + " AS TEXT)" }

// Cast implements store.Dialect.
func (Dialect) Cast(expr string, k schema.ColumnKind) string {
	switch k {
	case schema.ColNumber:
		return "CAST(" + expr + " AS DOUBLE PRECISION)"
	case schema.ColBool:
		return "CAST(" + expr + " AS BOOLEAN)"
	case schema.ColJSON, schema.ColArray:
		return "CAST(" + expr + " AS JSONB)"
	}
	return "CAST(" + expr + ` AS TEXT) COLLATE "C"`
}

// NumberFromText implements store.Dialect without ever raising a cast
// error on non-numeric text.
func (Dialect) NumberFromText(expr string) string {
	return "(CASE WHEN (" + expr + ") ~ '^\\s*-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?\\s*$' THEN CAST(" + expr + " AS DOUBLE PRECISION) END)"
}

// Random implements store.Dialect.
func (Dialect) Random() string { return "RANDOM()" }

// CreateIndex implements store.Dialect.
func (d Dialect) CreateIndex(table string, ix schema.Index, partial bool) string {
	var b strings.Builder
	b.WriteString("CREATE ")
	if ix.Unique {
		b.WriteString("UNIQUE ")
	}
	b.WriteString("INDEX " + d.Quote(ix.Name) + " ON " + d.Quote(table) + " (")
	for i, c := range ix.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Quote(c))
	}
	b.WriteString(")")
	if partial {
		b.WriteString(" WHERE " + d.Quote(ix.Columns[0]) + " != ''")
	}
	return b.String()
}

// DropIndex implements store.Dialect.
func (Dialect) DropIndex(_, name string) string {
	return "DROP INDEX IF EXISTS " + store.QuoteIdent(name)
}

// UniqueViolation implements store.Dialect: PostgreSQL names the
// constraint (the index name, or <table>_pkey).
func (Dialect) UniqueViolation(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

// ViewColumns implements store.Dialect from the result column types.
func (Dialect) ViewColumns(ctx context.Context, q store.Querier, query string) ([]store.ViewColumn, error) {
	rows, err := q.QueryContext(ctx, "SELECT * FROM ("+query+") AS v LIMIT 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out := make([]store.ViewColumn, len(cts))
	for i, ct := range cts {
		k := schema.ColText
		switch t := strings.ToUpper(ct.DatabaseTypeName()); {
		case t == "BOOL":
			k = schema.ColBool
		case t == "JSONB" || t == "JSON":
			k = schema.ColJSON
		case strings.HasPrefix(t, "INT") || strings.HasPrefix(t, "FLOAT") || t == "NUMERIC":
			k = schema.ColNumber
		}
		out[i] = store.ViewColumn{Name: ct.Name(), Kind: k}
	}
	return out, rows.Err()
}

// notifier implements store.Notifier with LISTEN/NOTIFY.
type notifier struct {
	db  *sql.DB
	cfg *pgx.ConnConfig
}

var channelRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Notify implements store.Notifier.
func (n *notifier) Notify(ctx context.Context, channel, payload string) error {
	_, err := n.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	return err
}

// Listen implements store.Notifier on a dedicated connection (a pooled one
// would miss notifications between uses), re-connecting with backoff.
func (n *notifier) Listen(ctx context.Context, channel string, fn func(string)) error {
	if !channelRe.MatchString(channel) {
		return fmt.Errorf("postgres: invalid channel name %q", channel)
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := n.listenOnce(ctx, channel, fn, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			break
		}
		_ = err // the caller converges through its own poll meanwhile
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (n *notifier) listenOnce(ctx context.Context, channel string, fn func(string), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+store.QuoteIdent(channel)); err != nil {
		return err
	}
	connected()
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(note.Payload)
	}
}

// CreateTestDatabase creates a fresh, uniquely named database through
// adminURL and returns its URL and a function dropping it. Tests give each
// server its own database so runs never see each other's data.
func CreateTestDatabase(ctx context.Context, adminURL string) (string, func() error, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: invalid admin URL: %s", scrub(err, ""))
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "plinth_test_" + hex.EncodeToString(b)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: cannot connect to %s: %s", describe(cfg), scrub(err, cfg.Password))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+store.QuoteIdent(name)); err != nil {
		return "", nil, err
	}
	u := replaceDatabase(adminURL, name)
	drop := func() error {
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
		_, err = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+store.QuoteIdent(name))
		return err
	}
	return u, drop, nil
}

// replaceDatabase swaps the database name in a postgres:// URL.
func replaceDatabase(u, name string) string {
	rest := u
	query := ""
	if i := strings.IndexByte(u, '?'); i >= 0 {
		rest, query = u[:i], u[i:]
	}
	scheme := strings.Index(rest, "://")
	if scheme < 0 {
		return u
	}
	hostStart := scheme + 3
	if i := strings.IndexByte(rest[hostStart:], '/'); i >= 0 {
		rest = rest[:hostStart+i]
	}
	return rest + "/" + name + query
}
