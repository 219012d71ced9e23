// Package sqlitedriver compares the two SQLite drivers Plinth could use,
// with Plinth's own settings (WAL, one writer, a reader pool) and query
// shapes. It is a separate module so the server depends on one driver.
//
//	cd bench/sqlitedriver && go test -bench . -benchmem -count 3
package sqlitedriver

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3"
	_ "modernc.org/sqlite"
)

type driver struct {
	name, driverName string
	dsn              func(path, sync string, readOnly bool) string
}

var drivers = []driver{
	{"modernc", "sqlite", func(p, sync string, ro bool) string {
		d := "file:" + p + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(" + sync + ")"
		if ro {
			return d + "&_pragma=query_only(1)"
		}
		return d + "&_txlock=immediate"
	}},
	{"mattn", "sqlite3", func(p, sync string, ro bool) string {
		d := "file:" + p + "?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_synchronous=" + sync
		if ro {
			return d + "&_query_only=1"
		}
		return d + "&_txlock=immediate"
	}},
}

const n = 10000

func open(b *testing.B, d driver, sync string) (w, r *sql.DB, ids []string) {
	path := filepath.Join(b.TempDir(), "bench.db")
	w, err := sql.Open(d.driverName, d.dsn(path, sync, false))
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	var mode string
	if err := w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		b.Fatalf("journal_mode %q %v", mode, err)
	}
	for _, q := range []string{
		`CREATE TABLE posts (id TEXT PRIMARY KEY NOT NULL, author TEXT NOT NULL DEFAULT '', text TEXT NOT NULL DEFAULT '', likes NUMERIC NOT NULL DEFAULT 0, tags ARRAY_TEXT NOT NULL DEFAULT '[]', created TEXT NOT NULL DEFAULT '')`,
		`CREATE INDEX idx_created ON posts (created)`, `CREATE INDEX idx_author ON posts (author, created)`,
	} {
		if _, err := w.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	tx, _ := w.Begin()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("id%013d", i)
		ids = append(ids, id)
		tx.Exec(`INSERT INTO posts VALUES (?1, ?2, ?3, ?4, ?5, ?6)`, id, fmt.Sprintf("user%03d", i%500), "some post text", i%1000, `["go","sql"]`, fmt.Sprintf("2026-01-01 00:%02d:%02d.%03dZ", i/60000, (i/1000)%60, i%1000))
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	r, err = sql.Open(d.driverName, d.dsn(path, sync, true))
	if err != nil {
		b.Fatal(err)
	}
	r.SetMaxOpenConns(4)
	b.Cleanup(func() { r.Close(); w.Close() })
	return w, r, ids
}

func scanAll(rows *sql.Rows) error {
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
	}
	return rows.Err()
}

func BenchmarkDrivers(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name+"/GetByID", func(b *testing.B) {
			_, r, ids := open(b, d, "FULL")
			b.ReportAllocs()
			for b.Loop() {
				rows, err := r.Query(`SELECT * FROM posts WHERE id = ?1`, ids[rand.IntN(len(ids))])
				if err != nil || scanAll(rows) != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(d.name+"/ParallelGet", func(b *testing.B) {
			_, r, ids := open(b, d, "FULL")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rows, err := r.Query(`SELECT * FROM posts WHERE id = ?1`, ids[rand.IntN(len(ids))])
					if err != nil || scanAll(rows) != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run(d.name+"/List20", func(b *testing.B) {
			_, r, _ := open(b, d, "FULL")
			b.ReportAllocs()
			for b.Loop() {
				rows, err := r.Query(`SELECT * FROM posts ORDER BY created DESC, id LIMIT 20 OFFSET ?1`, rand.IntN(500))
				if err != nil || scanAll(rows) != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(d.name+"/FilteredListCount", func(b *testing.B) {
			_, r, _ := open(b, d, "FULL")
			b.ReportAllocs()
			for b.Loop() {
				a := fmt.Sprintf("user%03d", rand.IntN(500))
				where := ` WHERE author = ?1 AND EXISTS (SELECT 1 FROM json_each(posts.tags) je WHERE je.value = ?2)`
				rows, err := r.Query(`SELECT * FROM posts`+where+` ORDER BY created DESC LIMIT 20`, a, "go")
				if err != nil || scanAll(rows) != nil {
					b.Fatal(err)
				}
				var c int
				if err := r.QueryRow(`SELECT COUNT(*) FROM posts`+where, a, "go").Scan(&c); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, sync := range []string{"FULL", "NORMAL"} {
			b.Run(d.name+"/Insert_"+sync, func(b *testing.B) {
				w, _, _ := open(b, d, sync)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					tx, err := w.Begin()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := tx.Exec(`INSERT INTO posts (id, author, text) VALUES (?1, ?2, ?3)`, fmt.Sprintf("new%012d", i), "a", "t"); err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestScanTypes records how each driver returns values scanned into any,
// which Plinth's records layer normalises.
func TestScanTypes(t *testing.T) {
	for _, d := range drivers {
		db, err := sql.Open(d.driverName, d.dsn(filepath.Join(t.TempDir(), "t.db"), "FULL", false))
		if err != nil {
			t.Fatal(err)
		}
		db.Exec(`CREATE TABLE t (n NUMERIC, f NUMERIC, b BOOLEAN, s TEXT, j JSON_TEXT)`)
		db.Exec(`INSERT INTO t VALUES (3, 2.5, TRUE, 'x', '{"a":1}')`)
		var n, f, bo, s, j any
		if err := db.QueryRow(`SELECT * FROM t`).Scan(&n, &f, &bo, &s, &j); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: NUMERIC int %T, NUMERIC real %T, BOOLEAN %T, TEXT %T, JSON_TEXT %T", d.name, n, f, bo, s, j)
		db.Close()
	}
}
