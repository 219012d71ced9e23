// Package postgres is the client/server store: PostgreSQL through pgx v5,
// used via database/sql (pgx's stdlib adapter) so that records, rules and
// schema code handle one *sql.DB whatever the engine, with LISTEN/NOTIFY as
// the channel between nodes sharing one database.
package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Options tune the connection pool. Zero values take the defaults below,
// so callers only set what their deployment needs.
type Options struct {
	// MaxConns bounds open connections per node (default 20). Every node
	// of a fleet draws on the server's max_connections, so size it per
	// fleet, not per node.
	MaxConns int
	// MinConns is how many connections Open makes ready before returning
	// (default 2), so the first requests after start-up do not each pay
	// for a TCP/TLS handshake. database/sql has no idle floor: after five
	// idle minutes the pool may shrink below it.
	MinConns int
	// StatementTimeout aborts a runaway statement server-side (default
	// 30s), so one bad query cannot hold a connection and its locks
	// forever.
	StatementTimeout time.Duration
	// LockTimeout bounds a statement's wait for a row or table lock
	// (default 5s): requests touching a locked table fail with a 503
	// instead of holding pool connections until every request stalls.
	LockTimeout time.Duration
	// ConnectTimeout bounds each connection attempt (default 5s), so an
	// unreachable server fails start-up quickly instead of hanging.
	ConnectTimeout time.Duration
}

// Defaults applied by Open to zero Options fields.
const (
	defaultMaxConns         = 20
	defaultMinConns         = 2
	defaultStatementTimeout = 30 * time.Second
	defaultLockTimeout      = 5 * time.Second
	defaultConnectTimeout   = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = defaultMaxConns
	}
	if o.MinConns <= 0 {
		o.MinConns = defaultMinConns
	}
	o.MinConns = min(o.MinConns, o.MaxConns)
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = defaultStatementTimeout
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = defaultLockTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	return o
}

// Open connects to the database at connString (a postgres:// URL or a
// keyword/value DSN) and checks the server answers within the connect
// timeout. Read and Write of the returned DB are the same pool: the server
// does its own concurrency control, unlike SQLite. The DB's Notifier uses
// LISTEN/NOTIFY, so connString must reach PostgreSQL in session mode (not through
// a transaction-pooling proxy) for notifications to work.
//
// Errors never contain the password: they name only host, port, database
// and user, because start-up errors end up in logs and terminals.
func Open(ctx context.Context, connString string, o Options) (*sqldb.DB, error) {
	o = o.withDefaults()
	cfg, err := parseConfig(connString)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = o.ConnectTimeout
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(o.LockTimeout.Milliseconds(), 10)
	// Timestamps Plinth formats itself are UTC; a session in the server's
	// local zone would make now() and casts disagree between nodes.
	cfg.RuntimeParams["TimeZone"] = "UTC"
	// The dialect writes ESCAPE '\' and regex literals with backslashes;
	// pin the meaning of backslash in literals whatever the server config.
	cfg.RuntimeParams["standard_conforming_strings"] = "on"
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "plinth"
	}

	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(o.MaxConns)
	db.SetMaxIdleConns(o.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// Recycling connections lets a fleet rebalance after a failover or a
	// proxy change, and bounds per-backend memory growth.
	db.SetConnMaxLifetime(time.Hour)

	pctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout+time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: cannot connect to %s: %s", describe(cfg), scrub(err.Error(), connString, cfg.Password))
	}
	warm(pctx, db, o.MinConns)

	out := sqldb.NewDB(Dialect{}, db, db, db.Close)
	lcfg := cfg.Copy()
	lcfg.RuntimeParams["application_name"] = cfg.RuntimeParams["application_name"] + "-listener"
	out.Notifier = &notifier{db: db, cfg: lcfg, heartbeat: 30 * time.Second}
	out.Lock = func(ctx context.Context, key int64) (func(), error) { return advisoryLock(ctx, db, key) }
	return out, nil
}

// advisoryLock holds a session-level advisory lock on a connection of its
// own until released; the lock dies with the connection if the node does.
func advisoryLock(ctx context.Context, db *sql.DB, key int64) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	// Waiting for another node's bootstrap is expected, and may take
	// longer than the lock timeout meant for requests.
	if _, err := conn.ExecContext(ctx, "SET lock_timeout = 0"); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		conn.Close()
		return nil, err
	}
	return func() {
		// Unlocking on a closed connection fails harmlessly: the server
		// released the lock when the session ended.
		conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", key)
		conn.ExecContext(context.Background(), "RESET lock_timeout")
		conn.Close()
	}, nil
}

// warm opens up to n connections and returns them to the pool idle. It is
// best effort: the ping already proved the server answers.
func warm(ctx context.Context, db *sql.DB, n int) {
	conns := make([]*sql.Conn, 0, n)
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
}

// parseConfig parses a connection string, returning an error free of the
// password: pgx's own parse errors redact only what they recognise, and
// net/url's messages may quote the string they failed on.
func parseConfig(connString string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err == nil {
		return cfg, nil
	}
	msg := err.Error()
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// "cannot parse `<redacted string>`: reason" — keep the reason.
		if i := strings.Index(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		}
	}
	return nil, fmt.Errorf("postgres: invalid database URL: %s", scrub(msg, connString, ""))
}

// describe names the target without credentials, for error messages.
func describe(c *pgx.ConnConfig) string {
	host := c.Host
	if !strings.HasPrefix(host, "/") {
		host = net.JoinHostPort(host, strconv.Itoa(int(c.Port)))
	}
	return host + "/" + c.Database + " as " + c.User
}

var (
	// kvPassword matches password=value and sslpassword=value in DSNs and
	// URL queries, quoted or not.
	kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)`)
	// urlPassword matches the userinfo password of a URL: scheme://user:pw@
	urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)
)

// scrub removes every trace of a password from an error text: the parsed
// password, whatever stands in a password position of the raw connection
// string (also when it failed to parse), and its percent-encoded forms.
func scrub(msg, connString, password string) string {
	secrets := []string{password}
	if m := urlPassword.FindStringSubmatch(connString); m != nil {
		raw := strings.TrimSuffix(strings.TrimPrefix(m[0], m[1]), "@")
		secrets = append(secrets, raw)
		if dec, err := url.PathUnescape(raw); err == nil {
			secrets = append(secrets, dec)
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(connString, -1) {
		secrets = append(secrets, m[2], strings.Trim(m[2], "'"))
		if dec, err := url.QueryUnescape(m[2]); err == nil {
			secrets = append(secrets, dec)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), url.UserPassword("", s).String()[1:]} {
			if form != "" {
				msg = strings.ReplaceAll(msg, form, "xxxxx")
			}
		}
	}
	// pgconn lists one line per attempted host/TLS mode; keep log lines whole.
	msg = strings.NewReplacer(":\n\t", ": ", "\n\t", "; ", "\n", "; ").Replace(msg)
	msg = urlPassword.ReplaceAllString(msg, "${1}xxxxx@")
	return kvPassword.ReplaceAllString(msg, "${1}xxxxx")
}

// Dialect renders PostgreSQL SQL. It is stateless; the zero value is ready.
type Dialect struct{}

var _ sqldb.Dialect = Dialect{}

// Name implements sqldb.Dialect.
func (Dialect) Name() string { return "postgres" }

// SerialKey implements sqldb.Dialect.
func (Dialect) SerialKey() string { return "BIGSERIAL PRIMARY KEY" }

// SerializeAppends implements sqldb.Dialect. Sequence numbers are taken
// before commit, so without this a reader could see number 8 committed
// while 7 is still in flight, move past 7 and miss it. The lock conflicts
// only with itself (and with pruning), not with readers, and is held from
// the append to the commit: the last step of the transaction.
func (Dialect) SerializeAppends(table string) string {
	return "LOCK TABLE " + sqldb.QuoteIdent(table) + " IN SHARE ROW EXCLUSIVE MODE"
}

// Unavailable implements sqldb.Dialect from PostgreSQL's error classes:
// 57014 statement timeout, 55P03 lock timeout, 53xxx insufficient
// resources, 08xxx connection exceptions, 57P0x shutdown/restart; and
// errors from failing to connect at all.
func (Dialect) Unavailable(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "57014":
			return "The database took too long to answer; try again.", true
		case pe.Code == "55P03":
			return "The data is locked by another operation; try again.", true
		case strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57P"):
			return "The database is unavailable; try again.", true
		}
		return "", false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err) {
		return "The database is unavailable; try again.", true
	}
	return "", false
}

// Placeholder implements sqldb.Dialect with PostgreSQL's numbered $n.
func (Dialect) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// Quote implements sqldb.Dialect.
func (Dialect) Quote(s string) string { return sqldb.QuoteIdent(s) }

// ColumnType implements sqldb.Dialect. Text sorts bytewise (COLLATE "C")
// so ordering, comparisons and ILIKE's ASCII-only case folding agree with
// SQLite's BINARY collation on every node, whatever the server's locale.
// JSON and arrays are JSONB so they can be indexed and unnested.
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

// asArray is expr as a JSONB array; anything that is not an array (a JSON
// null, an object, a scalar) reads as empty, as the SQLite dialect does,
// because jsonb_array_elements_text and jsonb_array_length raise errors
// on non-arrays.
func asArray(expr string) string {
	return "(CASE WHEN jsonb_typeof((" + expr + ")::jsonb) = 'array' THEN (" + expr + ")::jsonb ELSE '[]'::jsonb END)"
}

// JSONEach implements sqldb.Dialect. The column alias makes the element
// readable as alias.value, like SQLite's json_each; a function call in
// FROM may refer to earlier FROM items and outer queries (implicit
// LATERAL), so it works correlated.
func (Dialect) JSONEach(expr, alias string) string {
	return "jsonb_array_elements_text(" + asArray(expr) + ") AS " + alias + "(value)"
}

// JSONEachParam implements sqldb.Dialect over a bound JSON array text.
func (d Dialect) JSONEachParam(p, alias string) string {
	return d.JSONEach("CAST("+p+" AS JSONB)", alias)
}

// JSONArrayLength implements sqldb.Dialect; non-arrays count 0.
func (Dialect) JSONArrayLength(expr string) string {
	return "jsonb_array_length(" + asArray(expr) + ")"
}

// JSONPath implements sqldb.Dialect. #>> yields scalars as text (strings
// unquoted), objects and arrays as JSON text, and NULL for a missing path
// or a JSON null. Segments are [A-Za-z0-9_], validated by the filter
// parser, so they need no quoting inside the path literal.
func (Dialect) JSONPath(expr string, path []string) string {
	return "((" + expr + ")::jsonb #>> '{" + strings.Join(path, ",") + "}')"
}

// Like implements sqldb.Dialect. ILIKE is PostgreSQL's case-insensitive
// LIKE; the explicit ESCAPE matches the escaping of the pattern builder.
func (Dialect) Like(expr, param string) string { return expr + ` ILIKE ` + param + ` ESCAPE '\'` }

// CastText implements sqldb.Dialect. A JSONB value casts to its JSON text
// (a string keeps its quotes); booleans cast to 'true'/'false'.
func (Dialect) CastText(expr string) string { return "CAST(" + expr + " AS TEXT)" }

// Cast implements sqldb.Dialect. PostgreSQL infers a bare parameter's
// type from context, which a SELECT list does not give, so a row built
// from parameters needs the column types (and text the column collation)
// spelled out to compare like a stored row.
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

// NumberFromText implements sqldb.Dialect. A plain CAST would raise an
// error on non-numeric text and fail the whole query, so only text that
// looks like a number is cast; anything else is NULL. Digit counts are
// bounded so the cast cannot overflow or underflow a double either.
func (Dialect) NumberFromText(expr string) string {
	t := "CAST(" + expr + " AS TEXT)"
	return "(CASE WHEN " + t + ` ~ '^\s*[-+]?([0-9]{1,200}(\.[0-9]{0,200})?|\.[0-9]{1,200})([eE][-+]?[0-9]{1,2})?\s*$' THEN CAST(` + t + " AS DOUBLE PRECISION) END)"
}

// Random implements sqldb.Dialect.
func (Dialect) Random() string { return "RANDOM()" }

// CreateIndex implements sqldb.Dialect.
func (d Dialect) CreateIndex(table string, ix schema.Index, partial bool) string {
	return sqldb.IndexDDL(d, table, ix, partial)
}

// DropIndex implements sqldb.Dialect. Index names are schema-wide in
// PostgreSQL, so the table is not needed.
func (Dialect) DropIndex(_, name string) string {
	return "DROP INDEX IF EXISTS " + sqldb.QuoteIdent(name)
}

// UniqueViolation implements sqldb.Dialect. PostgreSQL names the violated
// constraint: the unique index's name, or <table>_pkey for the id.
func (Dialect) UniqueViolation(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

// ViewColumns implements sqldb.Dialect from the result column types the
// server reports; LIMIT 0 means the query is planned but no row is read.
// JSON arrays and objects are both JSONB, so arrays come back as ColJSON:
// a view that needs a multi-valued field must declare it.
func (Dialect) ViewColumns(ctx context.Context, q sqldb.Querier, query string) ([]sqldb.ViewColumn, error) {
	// The newline ends a trailing "-- comment" in the user's query.
	rows, err := q.QueryContext(ctx, "SELECT * FROM ("+query+"\n) AS v LIMIT 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out := make([]sqldb.ViewColumn, len(cts))
	for i, ct := range cts {
		out[i] = sqldb.ViewColumn{Name: ct.Name(), Kind: kindOf(ct.DatabaseTypeName())}
	}
	return out, rows.Err()
}

// kindOf maps a pgx type name (upper case, e.g. "FLOAT8") to a storage
// class; anything unrecognised is text, the safest reading.
func kindOf(t string) schema.ColumnKind {
	switch strings.ToUpper(t) {
	case "BOOL":
		return schema.ColBool
	case "JSON", "JSONB":
		return schema.ColJSON
	case "INT2", "INT4", "INT8", "FLOAT4", "FLOAT8", "NUMERIC":
		return schema.ColNumber
	}
	return schema.ColText
}

// notifier implements sqldb.Notifier with LISTEN/NOTIFY.
type notifier struct {
	db  *sql.DB
	cfg *pgx.ConnConfig // for the dedicated listening connections
	// heartbeat is how long a listener waits silently before pinging, so
	// a half-open TCP connection is noticed in seconds, not at the next
	// kernel keepalive failure.
	heartbeat time.Duration

	mu     sync.Mutex
	active map[string]int // channel -> connections listening on it now
}

// Listening implements sqldb.ListenReporter.
func (n *notifier) Listening(channel string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.active[channel] > 0
}

func (n *notifier) setListening(channel string, delta int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.active == nil {
		n.active = map[string]int{}
	}
	n.active[channel] += delta
}

// channelRe keeps channel names to unquoted-identifier shape, within
// PostgreSQL's 63-byte limit: LISTEN would silently truncate a longer name
// while pg_notify would reject it.
var channelRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func checkChannel(channel string) error {
	if !channelRe.MatchString(channel) {
		return fmt.Errorf("postgres: invalid channel name %q", channel)
	}
	return nil
}

// Backoff bounds between listener reconnection attempts.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Notify implements sqldb.Notifier. The notification is delivered when
// the surrounding transaction (here: the statement) commits.
func (n *notifier) Notify(ctx context.Context, channel, payload string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	_, err := n.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	return err
}

// Listen implements sqldb.Notifier on a dedicated connection per call: a
// pooled one would be handed to queries and miss notifications between
// uses. When the connection is lost it reconnects with exponential
// backoff (100ms doubling to 5s) and LISTENs again until ctx ends;
// notifications sent while disconnected are lost, so callers must also
// poll. It returns nil when ctx ends, or an error for an invalid channel.
func (n *notifier) Listen(ctx context.Context, channel string, fn func(payload string)) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	backoff := minBackoff
	for {
		listened, _ := n.listenOnce(ctx, channel, fn)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// listenOnce connects, LISTENs and delivers notifications until the
// connection fails or ctx ends. listened reports whether LISTEN succeeded,
// which resets the caller's backoff.
func (n *notifier) listenOnce(ctx context.Context, channel string, fn func(string)) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+sqldb.QuoteIdent(channel)); err != nil {
		return false, err
	}
	n.setListening(channel, 1)
	defer n.setListening(channel, -1)
	for {
		wctx, cancel := context.WithTimeout(ctx, n.heartbeat)
		note, err := conn.WaitForNotification(wctx)
		cancel()
		if note != nil {
			fn(note.Payload)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if wctx.Err() == nil || conn.IsClosed() {
			return true, err
		}
		// Quiet for a heartbeat: a deadline does not break a pgx
		// connection, so check the server is still there and go on.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return true, err
		}
	}
}

// CreateTestDatabase creates a fresh, uniquely named database
// (plinth_test_<hex>) through adminURL and returns its URL and a function
// dropping it. Tests give each server its own database so parallel runs
// never see each other's data. drop terminates remaining sessions first,
// so a test that forgot to close its pool still cleans up; it is safe to
// call more than once.
func CreateTestDatabase(ctx context.Context, adminURL string) (dbURL string, drop func() error, err error) {
	cfg, err := parseConfig(adminURL)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	name := "plinth_test_" + hex.EncodeToString(b)
	u, err := replaceDatabase(adminURL, name)
	if err != nil {
		return "", nil, err
	}
	// Refuse to hand out a URL that would not reach the new database: a
	// test would otherwise run, and write, against the admin database.
	if c, err := pgx.ParseConfig(u); err != nil || c.Database != name {
		return "", nil, errors.New("postgres: cannot derive a test database URL from the admin URL")
	}

	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: cannot connect to %s: %s", describe(cfg), scrub(err.Error(), adminURL, cfg.Password))
	}
	defer conn.Close(context.Background())
	// The template must be idle for CREATE DATABASE; parallel test
	// processes briefly touching it can make it busy, so retry.
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+sqldb.QuoteIdent(name))
		if err == nil || !objectInUse(err) || attempt == 20 {
			break
		}
		if !sleep(ctx, 100*time.Millisecond) {
			break
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("postgres: create test database: %w", err)
	}
	drop = func() error {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.ConnectConfig(dctx, cfg)
		if err != nil {
			return fmt.Errorf("postgres: cannot connect to %s: %s", describe(cfg), scrub(err.Error(), adminURL, cfg.Password))
		}
		defer c.Close(context.Background())
		for attempt := 0; ; attempt++ {
			_, _ = c.Exec(dctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
			_, err = c.Exec(dctx, "DROP DATABASE IF EXISTS "+sqldb.QuoteIdent(name))
			// A pool that was not closed may reconnect between the two
			// statements; terminate again and retry.
			if err == nil || !objectInUse(err) || attempt == 20 || !sleep(dctx, 100*time.Millisecond) {
				return err
			}
		}
	}
	return u, drop, nil
}

// objectInUse reports PostgreSQL's "database is being accessed by other
// users" (55006).
func objectInUse(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55006"
}

// sleep waits d, reporting false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// replaceDatabase points a connection string at database name. URLs are
// edited as text, not through net/url, because multi-host URLs
// (postgres://h1:5432,h2:5432/db) do not parse there; a dbname or database
// query parameter, which overrides the path, is replaced too.
// Keyword/value DSNs get a dbname setting appended: the last one wins.
func replaceDatabase(u, name string) (string, error) {
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return strings.TrimSpace(u) + " dbname=" + name, nil
	}
	rest, query := u, ""
	if i := strings.IndexByte(u, '?'); i >= 0 {
		rest, query = u[:i], u[i+1:]
	}
	hostStart := strings.Index(rest, "://") + 3
	if i := strings.IndexByte(rest[hostStart:], '/'); i >= 0 {
		rest = rest[:hostStart+i]
	}
	out := rest + "/" + name
	if query == "" {
		return out, nil
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return "", errors.New("postgres: invalid query in database URL")
	}
	if vals.Has("dbname") || vals.Has("database") {
		vals.Del("database")
		vals.Set("dbname", name)
		query = vals.Encode()
	}
	return out + "?" + query, nil
}

// TestAdminURL is where tests create their throwaway databases: the
// PLINTH_TEST_PG environment variable, or the local server this project's
// machines run (trust auth, database test).
func TestAdminURL() string {
	if u := os.Getenv("PLINTH_TEST_PG"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}
