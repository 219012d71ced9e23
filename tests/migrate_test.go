package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/plinthhq/plinth"
	"github.com/plinthhq/plinth/internal/sqldb/postgres"
)

// migrateEngines yields a database URL per engine ("" = SQLite in dir).
func migrateEngines(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "" },
		"postgres": func(t *testing.T) string {
			u, drop, err := postgres.CreateTestDatabase(context.Background(), pgAdminURL())
			if err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatal(err)
				}
				t.Skipf("PostgreSQL unavailable: %v", err)
			}
			t.Cleanup(func() { drop() })
			return u
		},
	}
}

func newMigrateApp(t *testing.T, db string) *plinth.App {
	t.Helper()
	app, err := plinth.New(context.Background(), plinth.Config{DataDir: t.TempDir(), DB: db, FileSweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

const migNotes = `{
  "up": [
    {"createCollection": {"name":"notes","fields":[{"name":"body","type":"text","required":true}]}},
    {"sql": "CREATE TABLE own_audit (id INTEGER PRIMARY KEY, what TEXT)"}
  ],
  "down": [
    {"sql": "DROP TABLE own_audit"},
    {"deleteCollection": "notes"}
  ]
}`

func writeMig(t *testing.T, dir, name, body string) {
	t.Helper()
	path, err := plinth.CreateMigrationFile(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFileMigrations(t *testing.T) {
	for eng, newDB := range migrateEngines(t) {
		t.Run(eng, func(t *testing.T) {
			ctx := context.Background()
			app := newMigrateApp(t, newDB(t))
			dir := t.TempDir()
			writeMig(t, dir, "notes", migNotes)
			if _, err := os.Stat(filepath.Join(dir, "0001_notes.json")); err != nil {
				t.Fatal(err)
			}
			up := func() {
				done, err := app.MigrateUp(ctx, dir, 0)
				if err != nil || len(done) != 1 || done[0] != "0001_notes" {
					t.Fatalf("up: %v %v", done, err)
				}
				st, err := app.MigrationStatus(ctx, dir)
				if err != nil || len(st) != 1 || !st[0].Applied {
					t.Fatalf("status: %+v %v", st, err)
				}
				if _, err := app.Records().Create(ctx, nil, "notes", map[string]any{"body": "hi"}); err != nil {
					t.Fatalf("record in new collection: %v", err)
				}
			}
			up()
			if done, err := app.MigrateUp(ctx, dir, 0); err != nil || len(done) != 0 {
				t.Fatalf("second up applied again: %v %v", done, err)
			}
			if done, err := app.MigrateDown(ctx, dir, 1); err != nil || len(done) != 1 {
				t.Fatalf("down: %v %v", done, err)
			}
			if _, err := app.Records().Create(ctx, nil, "notes", map[string]any{"body": "hi"}); err == nil {
				t.Fatal("collection still there after down")
			}
			if st, _ := app.MigrationStatus(ctx, dir); st[0].Applied {
				t.Fatal("still applied after down")
			}
			up()

			// A failing step: the file stays unrecorded, the error names it.
			writeMig(t, dir, "broken", `{"up":[{"sql":"CREATE TABLE ok_one (id INTEGER)"},{"sql":"THIS IS NOT SQL"}],"down":[]}`)
			_, err := app.MigrateUp(ctx, dir, 0)
			if err == nil || !strings.Contains(err.Error(), "0002_broken") || !strings.Contains(err.Error(), "step 2") {
				t.Fatalf("failing step error: %v", err)
			}
			if st, _ := app.MigrationStatus(ctx, dir); st[1].Applied {
				t.Fatal("failed migration recorded")
			}
		})
	}
}

// Several nodes running up at once apply each file exactly once: the
// cluster lock serialises them, so the second sees it applied.
func TestFileMigrationsConcurrentNodes(t *testing.T) {
	db := migrateEngines(t)["postgres"](t)
	dir := t.TempDir()
	// A raw INSERT without a key would duplicate rows if run twice.
	writeMig(t, dir, "counter", `{"up":[{"sql":"CREATE TABLE runs (n INTEGER)"},{"sql":"INSERT INTO runs VALUES (1)"}],"down":[{"sql":"DROP TABLE runs"}]}`)
	writeMig(t, dir, "counter2", `{"up":[{"sql":"INSERT INTO runs VALUES (2)"}],"down":[]}`)
	apps := []*plinth.App{newMigrateApp(t, db), newMigrateApp(t, db), newMigrateApp(t, db)}
	var wg sync.WaitGroup
	total := make([]int, len(apps))
	errs := make([]error, len(apps))
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, err := a.MigrateUp(context.Background(), dir, 0)
			total[i], errs[i] = len(done), err
		}()
	}
	wg.Wait()
	sum := 0
	for i := range apps {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		sum += total[i]
	}
	if sum != 2 {
		t.Fatalf("applied %d times in all, want 2", sum)
	}
	ctx := context.Background()
	if _, err := apps[0].MigrateDown(ctx, dir, 2); err != nil {
		t.Fatal(err)
	}
}
