// Package sqldb is the boundary between Plinth and a SQL engine. Everything
// that differs between engines — placeholders, quoting, JSON functions, DDL,
// error codes, connection handling — sits behind Dialect and DB, so the
// records, rules and schema code is written once.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/schema"
)

// Dialect renders engine-specific SQL. Implementations are stateless.
type Dialect interface {
	// Name is the engine name ("sqlite", "postgres").
	Name() string
	// Placeholder is the text of the n-th (1-based) bind parameter. It must
	// address the argument by number, so fragments can be composed in any
	// order while sharing one argument list.
	Placeholder(n int) string
	// Quote quotes an identifier already validated against the schema.
	Quote(ident string) string
	// ColumnType is the column type and default clause for a storage class.
	ColumnType(k schema.ColumnKind) string
	// JSONEach is a FROM item iterating the elements of the JSON array expr
	// as text, readable as alias.value.
	JSONEach(expr, alias string) string
	// JSONEachParam is like JSONEach over a bound JSON array text parameter.
	JSONEachParam(placeholder, alias string) string
	// JSONArrayLength is the number of elements of the JSON array expr.
	JSONArrayLength(expr string) string
	// JSONPath extracts a nested value of a JSON document as text (scalars)
	// or JSON text (objects, arrays); NULL when absent.
	JSONPath(expr string, path []string) string
	// Like is a case-insensitive pattern match of expr against the
	// parameter (already containing % wildcards).
	Like(expr, param string) string
	// CastText converts expr to text for comparisons across types.
	CastText(expr string) string
	// Cast gives a bound parameter the column type of a storage class, so
	// a row built from parameters compares like a stored one.
	Cast(expr string, k schema.ColumnKind) string
	// NumberFromText converts a text (or JSON scalar) expression to a
	// number, yielding NULL rather than an error when it is not numeric.
	NumberFromText(expr string) string
	// Random is the ORDER BY expression for random order.
	Random() string
	// CreateIndex returns the DDL for an index on table. When partial is
	// true the index skips rows whose only column is ''.
	CreateIndex(table string, ix schema.Index, partial bool) string
	// DropIndex returns the DDL dropping an index of table.
	DropIndex(table, name string) string
	// UniqueViolation reports whether err is a unique-constraint failure,
	// and which index or columns the engine named.
	UniqueViolation(err error) (detail string, ok bool)
	// ViewColumns returns the result columns of a SELECT and the storage
	// class each appears to have, for inferring view collection fields.
	ViewColumns(ctx context.Context, q Querier, query string) ([]ViewColumn, error)
	// SerialKey is the column definition of an integer primary key that
	// the engine numbers itself and never reuses.
	SerialKey() string
	// SerializeAppends is run in a write transaction before it appends to
	// table, so appends commit in the order their keys were assigned (the
	// change log needs commit order = key order); "" when the engine runs
	// one write transaction at a time anyway.
	SerializeAppends(table string) string
	// Unavailable reports whether err means the database is in trouble
	// rather than the request being wrong (a statement or lock timeout, a
	// lost or refused connection), with a message for the client.
	Unavailable(err error) (msg string, ok bool)
}

// ViewColumn is a result column of a view query.
type ViewColumn struct {
	Name string
	Kind schema.ColumnKind
}

// Querier is what both *sql.DB and *sql.Tx offer for reading.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// DB is an open database: a read pool and a write path. For SQLite the
// write path is a single connection, so writers queue in Go instead of
// spinning on SQLITE_BUSY; for client/server engines both are one pool.
type DB struct {
	Dialect Dialect
	Read    *sql.DB
	Write   *sql.DB
	// Notifier is set by engines that can tell other nodes about changes.
	Notifier Notifier
	// Lock, set by engines that several nodes share, takes a cluster-wide
	// lock named by key (waiting for it) until release is called. Nodes
	// starting together use it so one bootstraps at a time.
	Lock    func(ctx context.Context, key int64) (release func(), err error)
	closers []func() error
}

// ListenReporter is implemented by notifiers that can tell whether this
// node currently listens on a channel (for readiness checks).
type ListenReporter interface {
	Listening(channel string) bool
}

// Notifier delivers small messages to every node sharing the database.
type Notifier interface {
	// Notify publishes payload on channel to all nodes, this one included.
	Notify(ctx context.Context, channel, payload string) error
	// Listen calls fn for each payload on channel until ctx ends.
	Listen(ctx context.Context, channel string, fn func(payload string)) error
}

// NewDB assembles a DB; close funcs run in order on Close.
func NewDB(d Dialect, read, write *sql.DB, closers ...func() error) *DB {
	return &DB{Dialect: d, Read: read, Write: write, closers: closers}
}

// Close closes the pools.
func (db *DB) Close() error {
	var errs []error
	for _, c := range db.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Tx runs fn in a write transaction, committing when fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Builder accumulates bind arguments for a statement composed from
// fragments. Arg returns a marker rather than the dialect's placeholder;
// Render numbers the markers in the order they appear in the final text
// and keeps only the arguments that are referenced. So fragments can be
// built in any order, and a fragment dropped later (a rule branch folded
// to a constant) leaves no orphan argument behind — PostgreSQL rejects
// those, and positional-only engines need text order anyway.
type Builder struct {
	D    Dialect
	Args *[]any
}

// NewBuilder starts a statement with a fresh argument list.
func NewBuilder(d Dialect) *Builder {
	args := make([]any, 0, 8)
	return &Builder{D: d, Args: &args}
}

const marker = '\x00'

// Arg binds v and returns its marker.
func (b *Builder) Arg(v any) string {
	*b.Args = append(*b.Args, v)
	return string(marker) + strconv.Itoa(len(*b.Args)-1) + string(marker)
}

// Q quotes an identifier.
func (b *Builder) Q(ident string) string { return b.D.Quote(ident) }

// Render replaces argument markers in query with the dialect's
// placeholders and returns the arguments in placeholder order.
func (b *Builder) Render(query string) (string, []any) {
	if strings.IndexByte(query, marker) < 0 {
		return query, nil
	}
	all := *b.Args
	var out strings.Builder
	out.Grow(len(query))
	args := make([]any, 0, len(all))
	for {
		i := strings.IndexByte(query, marker)
		if i < 0 {
			out.WriteString(query)
			break
		}
		j := strings.IndexByte(query[i+1:], marker)
		if j < 0 {
			panic("store: unterminated argument marker")
		}
		n, err := strconv.Atoi(query[i+1 : i+1+j])
		if err != nil || n < 0 || n >= len(all) {
			panic("store: bad argument marker")
		}
		out.WriteString(query[:i])
		args = append(args, all[n])
		out.WriteString(b.D.Placeholder(len(args)))
		query = query[i+j+2:]
	}
	return out.String(), args
}

// Query renders and runs a query.
func (b *Builder) Query(ctx context.Context, q Querier, query string) (*sql.Rows, error) {
	s, args := b.Render(query)
	return q.QueryContext(ctx, s, args...)
}

// QueryRow renders and runs a single-row query.
func (b *Builder) QueryRow(ctx context.Context, q Querier, query string) *sql.Row {
	s, args := b.Render(query)
	return q.QueryRowContext(ctx, s, args...)
}

// Exec renders and runs a statement.
func (b *Builder) Exec(ctx context.Context, q Querier, query string) (sql.Result, error) {
	s, args := b.Render(query)
	return q.ExecContext(ctx, s, args...)
}

// QuoteIdent is the double-quote identifier quoting shared by SQLite and
// PostgreSQL. Identifiers are validated before they get here; doubling
// quotes is the second line of defence.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Itoa is strconv.Itoa, exported for dialect packages' placeholder code.
func Itoa(n int) string { return strconv.Itoa(n) }
