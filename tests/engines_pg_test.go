package tests

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/plinthhq/plinth/internal/sqldb/postgres"
)

// pgAdminURL is where test databases are created; PLINTH_TEST_PG overrides.
func pgAdminURL() string { return postgres.TestAdminURL() }

var (
	pgOnce      sync.Once
	pgAvailable bool
	pgErr       error
)

// postgresEngine gives each test server a fresh database. Where no server
// answers the engine is skipped locally, but under CI it must be there.
func postgresEngine() engine {
	return engine{name: "postgres", newDB: func(t *testing.T) string {
		t.Helper()
		pgOnce.Do(func() {
			u, drop, err := postgres.CreateTestDatabase(context.Background(), pgAdminURL())
			pgErr = err
			if err == nil {
				pgAvailable = true
				drop()
				_ = u
			}
		})
		if !pgAvailable {
			if os.Getenv("CI") == "true" {
				t.Fatalf("PostgreSQL unavailable under CI: %v", pgErr)
			}
			t.Skipf("PostgreSQL unavailable: %v", pgErr)
		}
		u, drop, err := postgres.CreateTestDatabase(context.Background(), pgAdminURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { drop() })
		return u
	}}
}

func init() { engineList = append(engineList, postgresEngine()) }
