package sqldb

import (
	"strings"

	"github.com/plinthhq/plinth/internal/schema"
)

// System tables are created with portable types so one DDL serves every
// dialect. Collection definitions are stored whole as JSON: they are read
// once into memory and written rarely, so there is nothing to query inside.
var systemDDL = []string{
	`CREATE TABLE IF NOT EXISTS _collections (
		id TEXT PRIMARY KEY NOT NULL,
		name TEXT NOT NULL UNIQUE,
		type TEXT NOT NULL,
		system BOOLEAN NOT NULL DEFAULT FALSE,
		definition TEXT NOT NULL,
		created TEXT NOT NULL,
		updated TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS _meta (
		key TEXT PRIMARY KEY NOT NULL,
		value TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS _migrations (
		name TEXT PRIMARY KEY NOT NULL,
		applied TEXT NOT NULL
	)`,
	// One-time passwords and pending multi-factor logins: short-lived
	// rows, so any node can complete what another started.
	`CREATE TABLE IF NOT EXISTS _otps (
		id TEXT PRIMARY KEY NOT NULL,
		collection TEXT NOT NULL,
		record TEXT NOT NULL,
		hash TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		expires TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS _externalAuths (
		id TEXT PRIMARY KEY NOT NULL,
		collection TEXT NOT NULL,
		record TEXT NOT NULL,
		provider TEXT NOT NULL,
		providerId TEXT NOT NULL,
		created TEXT NOT NULL,
		UNIQUE (collection, provider, providerId)
	)`,
	// Login sessions: tokens carry the session id, so one device can be
	// signed out without touching the others.
	`CREATE TABLE IF NOT EXISTS _sessions (
		id TEXT PRIMARY KEY NOT NULL,
		collection TEXT NOT NULL,
		record TEXT NOT NULL,
		created TEXT NOT NULL,
		userAgent TEXT NOT NULL DEFAULT '',
		ip TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE INDEX IF NOT EXISTS idx__sessions_record ON _sessions (collection, record)`,
	// The outgoing mail queue (see mail.Queue): jobs are resolved into a
	// message at each attempt and delivered in the background, retried
	// with backoff. Rendered messages (with their tokens) are not stored.
	`CREATE TABLE IF NOT EXISTS _mailQueue (
		id TEXT PRIMARY KEY NOT NULL,
		kind TEXT NOT NULL,
		payload TEXT NOT NULL,
		status TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		nextAttempt TEXT NOT NULL,
		lockedUntil TEXT NOT NULL DEFAULT '',
		lastError TEXT NOT NULL DEFAULT '',
		created TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx__mailQueue_due ON _mailQueue (status, nextAttempt)`,
	// Scheduled job runs: the first node to record a (job, minute) slot
	// runs it, so each run happens once in a cluster.
	`CREATE TABLE IF NOT EXISTS _cronRuns (
		job TEXT NOT NULL,
		slot TEXT NOT NULL,
		node TEXT NOT NULL,
		PRIMARY KEY (job, slot)
	)`,
	`CREATE TABLE IF NOT EXISTS _mfas (
		id TEXT PRIMARY KEY NOT NULL,
		collection TEXT NOT NULL,
		record TEXT NOT NULL,
		method TEXT NOT NULL,
		expires TEXT NOT NULL
	)`,
}

// Outbound webhooks (see package webhooks): registrations, and one row
// per (webhook, change) to deliver, which is also the delivery log.
var webhookDDL = []string{
	`CREATE TABLE IF NOT EXISTS _webhooks (
		id TEXT PRIMARY KEY NOT NULL,
		url TEXT NOT NULL,
		collections TEXT NOT NULL,
		actions TEXT NOT NULL,
		filter TEXT NOT NULL DEFAULT '',
		secret TEXT NOT NULL,
		enabled BOOLEAN NOT NULL DEFAULT TRUE,
		since BIGINT NOT NULL DEFAULT 0,
		created TEXT NOT NULL,
		updated TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS _webhookDeliveries (
		id TEXT PRIMARY KEY NOT NULL,
		webhook TEXT NOT NULL,
		seq BIGINT NOT NULL,
		payload TEXT NOT NULL,
		status TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		nextAttempt TEXT NOT NULL,
		lastStatus INTEGER NOT NULL DEFAULT 0,
		lastError TEXT NOT NULL DEFAULT '',
		created TEXT NOT NULL,
		updated TEXT NOT NULL,
		UNIQUE (webhook, seq)
	)`,
	`CREATE INDEX IF NOT EXISTS idx__webhookDeliveries_pending ON _webhookDeliveries (status, webhook, seq)`,
	// Leases: a named job that one node at a time may run (webhook
	// delivery), held until a time and renewed while the node lives.
	`CREATE TABLE IF NOT EXISTS _leases (
		name TEXT PRIMARY KEY NOT NULL,
		node TEXT NOT NULL,
		until TEXT NOT NULL
	)`,
}

// changesDDL creates the change log (see package changes): every
// committed record change, in commit order, written in the transaction
// that made it. Its key is engine-specific, hence a function.
func changesDDL(d Dialect) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS _changes (
		seq ` + d.SerialKey() + `,
		collection TEXT NOT NULL,
		name TEXT NOT NULL,
		record TEXT NOT NULL,
		action TEXT NOT NULL,
		data TEXT NOT NULL,
		created TEXT NOT NULL
	)`,
		`CREATE INDEX IF NOT EXISTS idx__changes_created ON _changes (created)`,
	}
}

// SystemDDL returns the statements creating Plinth's own tables.
func SystemDDL(d Dialect) []string {
	out := append(append([]string(nil), systemDDL...), webhookDDL...)
	return append(out, changesDDL(d)...)
}

// systemTables holds the lower-cased names of the tables systemDDL
// creates, read from the statements so the list cannot drift.
var systemTables = func() map[string]bool {
	m := map[string]bool{}
	for _, q := range append(append([]string(nil), systemDDL...), webhookDDL...) {
		if rest, ok := strings.CutPrefix(q, "CREATE TABLE IF NOT EXISTS "); ok {
			name, _, _ := strings.Cut(rest, " ")
			m[strings.ToLower(name)] = true
		}
	}
	m["_changes"] = true // changesDDL needs a dialect to be written out
	return m
}()

// IsSystemTable reports whether name (any case) is one of Plinth's own
// tables, which hold secrets and private state.
func IsSystemTable(name string) bool { return systemTables[strings.ToLower(name)] }

// CreateTable returns the DDL for a base or auth collection's table.
func CreateTable(d Dialect, c *schema.Collection) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE ")
	b.WriteString(d.Quote(c.Name))
	b.WriteString(" (")
	b.WriteString(d.Quote("id"))
	b.WriteString(" TEXT PRIMARY KEY NOT NULL")
	for _, f := range c.Fields {
		b.WriteString(", ")
		b.WriteString(d.Quote(f.Name))
		b.WriteByte(' ')
		b.WriteString(d.ColumnType(f.Column()))
	}
	b.WriteString(")")
	return b.String()
}

// AddColumn returns the DDL adding field f to table.
func AddColumn(d Dialect, table string, f *schema.Field) string {
	return "ALTER TABLE " + d.Quote(table) + " ADD COLUMN " + d.Quote(f.Name) + " " + d.ColumnType(f.Column())
}

// DropColumn returns the DDL removing a column.
func DropColumn(d Dialect, table, col string) string {
	return "ALTER TABLE " + d.Quote(table) + " DROP COLUMN " + d.Quote(col)
}

// RenameColumn returns the DDL renaming a column; data stays in place.
func RenameColumn(d Dialect, table, from, to string) string {
	return "ALTER TABLE " + d.Quote(table) + " RENAME COLUMN " + d.Quote(from) + " TO " + d.Quote(to)
}

// RenameTable returns the DDL renaming a table.
func RenameTable(d Dialect, from, to string) string {
	return "ALTER TABLE " + d.Quote(from) + " RENAME TO " + d.Quote(to)
}

// CreateView returns the DDL for a view collection. The query comes from a
// superuser and has already been checked to be a single SELECT.
func CreateView(d Dialect, name, query string) string {
	return "CREATE VIEW " + d.Quote(name) + " AS " + query
}

// DropView returns the DDL dropping a view.
func DropView(d Dialect, name string) string { return "DROP VIEW IF EXISTS " + d.Quote(name) }

// DropTable returns the DDL dropping a table.
func DropTable(d Dialect, name string) string { return "DROP TABLE IF EXISTS " + d.Quote(name) }

// IndexDDL is the CREATE INDEX statement shared by dialects with partial
// index support. When partial is true the index skips rows whose only
// column is ” (optional unique text fields).
func IndexDDL(d Dialect, table string, ix schema.Index, partial bool) string {
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
