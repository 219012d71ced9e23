// Package sqlite is the embedded default store: one SQLite file in WAL mode
// with a single writer connection and a pool of read-only connections.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// driverName is mattn/go-sqlite3 with per-connection settings the DSN
// cannot carry. The driver was chosen by measurement: see
// bench/sqlitedriver/README.md.
const driverName = "plinth-sqlite3"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA cache_size = -16000; PRAGMA temp_store = MEMORY;", nil)
		return err
	}})
}

// Options tune the embedded store.
type Options struct {
	// Synchronous is the PRAGMA synchronous level; FULL (the default)
	// fsyncs the WAL on every commit, so an acknowledged write survives a
	// power loss, not only a process crash.
	Synchronous string
	// Readers is the size of the read pool (default: 2 x GOMAXPROCS, min 4).
	Readers int
}

// Open opens (creating if needed) the database file dir/data.db.
func Open(dir string, o Options) (*sqldb.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if o.Synchronous == "" {
		o.Synchronous = "FULL"
	}
	switch strings.ToUpper(o.Synchronous) {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return nil, fmt.Errorf("invalid synchronous level %q", o.Synchronous)
	}
	if o.Readers <= 0 {
		o.Readers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	path := filepath.Join(dir, "data.db")
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Set("_busy_timeout", "10000")
		q.Set("_journal_mode", "WAL")
		q.Set("_foreign_keys", "1")
		q.Set("_synchronous", strings.ToUpper(o.Synchronous))
		if readOnly {
			q.Set("_query_only", "1")
		} else {
			// Take the write lock at BEGIN, so a transaction that reads
			// then writes can never fail half-way on a lock upgrade when
			// another process shares the file.
			q.Set("_txlock", "immediate")
		}
		return "file:" + path + "?" + q.Encode()
	}
	write, err := sql.Open(driverName, dsn(false))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	if err := write.Ping(); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read, err := sql.Open(driverName, dsn(true))
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(o.Readers)
	read.SetMaxIdleConns(o.Readers)
	read.SetConnMaxLifetime(0)
	closeAll := func() error {
		rerr := read.Close()
		// A final checkpoint folds the WAL into the main file, so a clean
		// shutdown leaves a single self-contained data.db.
		_, _ = write.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		werr := write.Close()
		if rerr != nil {
			return rerr
		}
		return werr
	}
	return sqldb.NewDB(Dialect{}, read, write, closeAll), nil
}

// Dialect renders SQLite SQL.
type Dialect struct{}

var _ sqldb.Dialect = Dialect{}

// Name implements sqldb.Dialect.
func (Dialect) Name() string { return "sqlite" }

// SerialKey implements sqldb.Dialect; AUTOINCREMENT keeps a number from
// being handed out again after the rows above it were deleted.
func (Dialect) SerialKey() string { return "INTEGER PRIMARY KEY AUTOINCREMENT" }

// SerializeAppends implements sqldb.Dialect: SQLite has one writer.
func (Dialect) SerializeAppends(string) string { return "" }

// Unavailable implements sqldb.Dialect: a database locked by another
// process beyond the busy timeout, or a full disk, is no client mistake.
func (Dialect) Unavailable(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "database is locked"), strings.Contains(msg, "SQLITE_BUSY"):
		return "The database is busy; try again.", true
	case strings.Contains(msg, "database or disk is full"):
		return "The database cannot store more data right now.", true
	}
	return "", false
}

// Placeholder uses ?NNN so arguments are addressed by number.
func (Dialect) Placeholder(n int) string { return "?" + sqldb.Itoa(n) }

// Quote implements sqldb.Dialect.
func (Dialect) Quote(s string) string { return sqldb.QuoteIdent(s) }

// ColumnType implements sqldb.Dialect. JSON columns carry "TEXT" in their
// declared type so SQLite gives them text affinity (a JSON document "123"
// must not be turned into the integer 123), and the distinct names let
// view columns be told apart.
func (Dialect) ColumnType(k schema.ColumnKind) string {
	switch k {
	case schema.ColNumber:
		return "NUMERIC NOT NULL DEFAULT 0"
	case schema.ColBool:
		return "BOOLEAN NOT NULL DEFAULT FALSE"
	case schema.ColJSON:
		return "JSON_TEXT DEFAULT NULL"
	case schema.ColArray:
		return "ARRAY_TEXT NOT NULL DEFAULT '[]'"
	}
	return "TEXT NOT NULL DEFAULT ''"
}

// JSONEach implements sqldb.Dialect.
func (Dialect) JSONEach(expr, alias string) string {
	// json_each on a non-array (e.g. '' in a view) would iterate a scalar,
	// so guard with json_valid and treat anything else as empty.
	return "json_each(CASE WHEN json_valid(" + expr + ") THEN " + expr + " ELSE '[]' END) " + alias
}

// JSONEachParam implements sqldb.Dialect.
func (Dialect) JSONEachParam(p, alias string) string { return "json_each(" + p + ") " + alias }

// JSONArrayLength implements sqldb.Dialect.
func (Dialect) JSONArrayLength(expr string) string {
	return "(CASE WHEN json_valid(" + expr + ") THEN json_array_length(" + expr + ") ELSE 0 END)"
}

// JSONPath implements sqldb.Dialect.
func (Dialect) JSONPath(expr string, path []string) string {
	var p strings.Builder
	p.WriteString("'$")
	for _, s := range path {
		p.WriteString(`."`)
		p.WriteString(s) // segments are [A-Za-z0-9_]: validated by the parser
		p.WriteString(`"`)
	}
	p.WriteString("'")
	return "(CASE WHEN json_valid(" + expr + ") THEN json_extract(" + expr + ", " + p.String() + ") END)"
}

// Like implements sqldb.Dialect; SQLite's LIKE is case-insensitive for ASCII.
func (Dialect) Like(expr, param string) string { return expr + ` LIKE ` + param + ` ESCAPE '\'` }

// CastText implements sqldb.Dialect.
func (Dialect) CastText(expr string) string { return "CAST(" + expr + " AS TEXT)" }

// Cast implements sqldb.Dialect: SQLite types values, not columns, and
// the driver binds Go values with the right storage class already.
func (Dialect) Cast(expr string, _ schema.ColumnKind) string { return expr }

// NumberFromText implements sqldb.Dialect; json_extract already yields
// numbers for JSON numbers, and text that is not numeric yields NULL.
func (Dialect) NumberFromText(expr string) string {
	return "(CASE WHEN typeof(" + expr + ") IN ('integer', 'real') THEN " + expr + " END)"
}

// Random implements sqldb.Dialect.
func (Dialect) Random() string { return "RANDOM()" }

// CreateIndex implements sqldb.Dialect.
func (d Dialect) CreateIndex(table string, ix schema.Index, partial bool) string {
	return sqldb.IndexDDL(d, table, ix, partial)
}

// DropIndex implements sqldb.Dialect.
func (Dialect) DropIndex(_, name string) string {
	return "DROP INDEX IF EXISTS " + sqldb.QuoteIdent(name)
}

// UniqueViolation implements sqldb.Dialect. SQLite names the columns:
// "UNIQUE constraint failed: posts.a, posts.b".
func (Dialect) UniqueViolation(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	msg := err.Error()
	i := strings.Index(msg, "UNIQUE constraint failed: ")
	if i < 0 {
		return "", false
	}
	rest := msg[i+len("UNIQUE constraint failed: "):]
	if j := strings.Index(rest, " ("); j >= 0 {
		rest = rest[:j]
	}
	var cols []string
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if k := strings.LastIndexByte(part, '.'); k >= 0 {
			part = part[k+1:]
		}
		cols = append(cols, part)
	}
	return strings.Join(cols, ","), true
}

// ViewColumns implements sqldb.Dialect using the declared types SQLite
// reports for result columns that come straight from a table. Computed
// columns (COUNT, SUM, expressions) have no declared type, so their kind
// is read off the first row's values; a view can still declare fields to
// override either guess.
func (Dialect) ViewColumns(ctx context.Context, q sqldb.Querier, query string) ([]sqldb.ViewColumn, error) {
	rows, err := q.QueryContext(ctx, "SELECT * FROM ("+query+") LIMIT 1")
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
	if rows.Next() {
		vals := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, ct := range cts {
			if ct.DatabaseTypeName() != "" {
				continue
			}
			switch vals[i].(type) {
			case int64, float64:
				out[i].Kind = schema.ColNumber
			}
		}
	}
	return out, rows.Err()
}

func kindOf(decl string) schema.ColumnKind {
	switch d := strings.ToUpper(decl); {
	case d == "ARRAY_TEXT":
		return schema.ColArray
	case d == "JSON_TEXT" || d == "JSON":
		return schema.ColJSON
	case d == "BOOLEAN" || d == "BOOL":
		return schema.ColBool
	case d == "NUMERIC" || strings.Contains(d, "INT") || strings.Contains(d, "REAL") || strings.Contains(d, "FLOA") || strings.Contains(d, "DOUB"):
		return schema.ColNumber
	}
	return schema.ColText
}
