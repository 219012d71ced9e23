// Package dbtest gives unit tests real databases: a fresh SQLite file and,
// where a server answers, a fresh PostgreSQL database, each with Plinth's
// system tables.
package dbtest

import (
	"context"
	"os"
	"testing"

	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/postgres"
	"github.com/plinthhq/plinth/internal/sqldb/sqlite"
)

// ForEach runs fn as a subtest on each engine. PostgreSQL is skipped when
// no server answers, except under CI (CI=true), where that fails.
func ForEach(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := sqlite.Open(t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, WithSystemTables(t, db))
	})
	t.Run("postgres", func(t *testing.T) {
		u, drop, err := postgres.CreateTestDatabase(context.Background(), postgres.TestAdminURL())
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("PostgreSQL unavailable under CI: %v", err)
			}
			t.Skipf("PostgreSQL unavailable: %v", err)
		}
		t.Cleanup(func() { drop() })
		db, err := postgres.Open(context.Background(), u, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, WithSystemTables(t, db))
	})
}

// WithSystemTables creates Plinth's system tables in db and returns it.
func WithSystemTables(t *testing.T, db *sqldb.DB) *sqldb.DB {
	t.Helper()
	for _, q := range sqldb.SystemDDL(db.Dialect) {
		if _, err := db.Write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}
