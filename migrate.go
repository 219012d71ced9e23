package plinth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/plinthhq/plinth/internal/collections"
)

// migrateLockKey is the cluster lock key file migrations take (distinct
// from the bootstrap's), so several
// nodes running "migrate up" at once apply each file exactly once.
const migrateLockKey = 0x706c6d6967 // "plmig"

// MigrationFile is one file migration: NNNN_name.json in the migrations
// directory, holding {"up": [steps], "down": [steps]}.
type MigrationFile struct {
	Name    string // file name without .json; recorded in _migrations as "file/<Name>"
	Applied bool
}

// migrationStep is one step: raw SQL or a collection operation.
type migrationStep struct {
	SQL              string          `json:"sql,omitempty"`
	CreateCollection json.RawMessage `json:"createCollection,omitempty"`
	UpdateCollection json.RawMessage `json:"updateCollection,omitempty"`
	DeleteCollection string          `json:"deleteCollection,omitempty"`
}

type migrationDoc struct {
	Up   []migrationStep `json:"up"`
	Down []migrationStep `json:"down"`
}

// listMigrationFiles returns the .json files of dir sorted by name (the
// numeric prefix keeps that the order they were created in).
func listMigrationFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no migrations directory %s: create a migration with `plinth migrate create NAME`, or point --migrations-dir at yours", dir)
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			out = append(out, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	sort.Strings(out)
	return out, nil
}

func readMigration(dir, name string) (*migrationDoc, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, err
	}
	var d migrationDoc
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("migration %s: %w", name, err)
	}
	return &d, nil
}

// CreateMigrationFile writes an empty migration NNNN_name.json in dir
// (NNNN one more than the highest there) and returns its path.
func CreateMigrationFile(dir, name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\. `) {
		return "", fmt.Errorf("migration name %q: use letters, digits, - and _", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	names, err := listMigrationFiles(dir)
	if err != nil {
		return "", err
	}
	n := 0
	for _, f := range names {
		var k int
		if _, err := fmt.Sscanf(f, "%d_", &k); err == nil && k > n {
			n = k
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("%04d_%s.json", n+1, name))
	return path, os.WriteFile(path, []byte("{\n  \"up\": [],\n  \"down\": []\n}\n"), 0o644)
}

// appliedFiles returns the set of file migrations recorded in _migrations.
func (a *App) appliedFiles(ctx context.Context) (map[string]bool, error) {
	rows, err := a.db.Write.QueryContext(ctx, "SELECT name FROM _migrations WHERE name LIKE 'file/%'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(n, "file/")] = true
	}
	return out, rows.Err()
}

// MigrationStatus lists the migration files of dir and whether each is
// applied.
func (a *App) MigrationStatus(ctx context.Context, dir string) ([]MigrationFile, error) {
	names, err := listMigrationFiles(dir)
	if err != nil {
		return nil, err
	}
	done, err := a.appliedFiles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationFile, 0, len(names))
	for _, n := range names {
		out = append(out, MigrationFile{Name: n, Applied: done[n]})
	}
	return out, nil
}

func (a *App) lockMigrations(ctx context.Context) (func(), error) {
	if a.db.Lock == nil {
		return func() {}, nil
	}
	return a.db.Lock(ctx, migrateLockKey)
}

// MigrateUp applies up to n pending migration files of dir in name order
// (n <= 0: all) and returns the names applied. Steps run in order, each
// in its own transaction (collection changes run their own DDL
// transaction), so a file is not atomic as a whole: a file is recorded
// only when all its steps succeeded, and a failing step stops the run
// with an error naming the file and step. A cluster lock keeps nodes
// migrating at once from applying a file twice.
func (a *App) MigrateUp(ctx context.Context, dir string, n int) ([]string, error) {
	release, err := a.lockMigrations(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	st, err := a.MigrationStatus(ctx, dir)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, m := range st {
		if m.Applied {
			continue
		}
		if n > 0 && len(done) >= n {
			break
		}
		d, err := readMigration(dir, m.Name)
		if err != nil {
			return done, err
		}
		if err := a.runSteps(ctx, m.Name, "up", d.Up); err != nil {
			return done, err
		}
		if _, err := a.core.ClaimMigration(ctx, "file/"+m.Name); err != nil {
			return done, fmt.Errorf("migration %s: record: %w", m.Name, err)
		}
		done = append(done, m.Name)
	}
	return done, nil
}

// MigrateDown reverts the last n applied migration files of dir (n <= 0
// means 1) by running their down steps, newest first, and returns the
// names reverted.
func (a *App) MigrateDown(ctx context.Context, dir string, n int) ([]string, error) {
	if n <= 0 {
		n = 1
	}
	release, err := a.lockMigrations(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	st, err := a.MigrationStatus(ctx, dir)
	if err != nil {
		return nil, err
	}
	var done []string
	for i := len(st) - 1; i >= 0 && len(done) < n; i-- {
		m := st[i]
		if !m.Applied {
			continue
		}
		d, err := readMigration(dir, m.Name)
		if err != nil {
			return done, err
		}
		if err := a.runSteps(ctx, m.Name, "down", d.Down); err != nil {
			return done, err
		}
		if err := a.core.ReleaseMigration(ctx, "file/"+m.Name); err != nil {
			return done, fmt.Errorf("migration %s: unrecord: %w", m.Name, err)
		}
		done = append(done, m.Name)
	}
	return done, nil
}

func (a *App) runSteps(ctx context.Context, file, dir string, steps []migrationStep) error {
	for i, s := range steps {
		if err := a.runStep(ctx, s); err != nil {
			return fmt.Errorf("migration %s: %s step %d: %w", file, dir, i+1, err)
		}
	}
	return nil
}

func (a *App) runStep(ctx context.Context, s migrationStep) error {
	switch {
	case s.SQL != "":
		_, err := a.db.Write.ExecContext(ctx, s.SQL)
		return err
	case len(s.CreateCollection) > 0:
		c, err := collections.DecodeCollection(s.CreateCollection, nil)
		if err != nil {
			return err
		}
		_, err = a.core.CreateCollection(ctx, c)
		return err
	case len(s.UpdateCollection) > 0:
		var probe struct{ ID, Name string }
		if err := json.Unmarshal(s.UpdateCollection, &probe); err != nil {
			return err
		}
		key := probe.Name
		if key == "" {
			key = probe.ID
		}
		cur, err := a.core.Collection(ctx, key)
		if err != nil {
			return err
		}
		next, err := collections.DecodeCollection(s.UpdateCollection, nil)
		if err != nil {
			return err
		}
		next.ID = cur.ID
		_, err = a.core.UpdateCollection(ctx, next)
		return err
	case s.DeleteCollection != "":
		return a.core.DeleteCollection(ctx, s.DeleteCollection)
	}
	return errors.New("empty step: want sql, createCollection, updateCollection or deleteCollection")
}
