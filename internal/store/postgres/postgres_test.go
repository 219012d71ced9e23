package postgres

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func adminURL() string {
	if u := os.Getenv("PLINTH_TEST_PG"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func TestOpenErrorsNeverShowPassword(t *testing.T) {
	cases := []struct{ url, want string }{
		{"postgres://u:sekret123@127.0.0.1:1/x?connect_timeout=1", "cannot connect to 127.0.0.1:1/x as u"},
		{"postgres://u:sekret123@127.0.0.1:5432/x?sslmode=bogus", "invalid database URL"},
		{"postgres://u:sekret123@[::1/x", "invalid database URL"},
		{"host=127.0.0.1 port=1 user=u password=sekret123 dbname=x connect_timeout=1", "cannot connect to 127.0.0.1:1/x as u"},
	}
	for _, c := range cases {
		db, err := Open(context.Background(), c.url, Options{ConnectTimeout: time.Second})
		if err == nil {
			db.Close()
			t.Errorf("%s: no error", c.url)
			continue
		}
		if strings.Contains(err.Error(), "sekret123") {
			t.Errorf("password in error: %v", err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q, want %q", err, c.want)
		}
	}
}

func TestReplaceDatabase(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://u@h:5432/test?sslmode=disable", "postgres://u@h:5432/new?sslmode=disable"},
		{"postgres://u@h/test", "postgres://u@h/new"},
		{"postgresql://h", "postgresql://h/new"},
	}
	for _, c := range cases {
		if got := replaceDatabase(c.in, "new"); got != c.want {
			t.Errorf("replaceDatabase(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNotifyListenAndUniqueViolation(t *testing.T) {
	ctx := context.Background()
	u, drop, err := CreateTestDatabase(ctx, adminURL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer drop()
	db, err := Open(ctx, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan string, 4)
	go db.Notifier.Listen(lctx, "plinth_test", func(p string) { got <- p })
	// The listener connects asynchronously: publish until one arrives.
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	received := false
	for !received {
		select {
		case p := <-got:
			if p != "hello" {
				t.Fatalf("payload %q", p)
			}
			received = true
		case <-tick.C:
			if err := db.Notifier.Notify(ctx, "plinth_test", "hello"); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("no notification received")
		}
	}
	if err := db.Notifier.Listen(ctx, "Bad-Channel", func(string) {}); err == nil {
		t.Errorf("invalid channel accepted")
	}
	if _, err := db.Write.Exec(`CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.Exec(`CREATE UNIQUE INDEX idx_t_v ON t (v)`); err != nil {
		t.Fatal(err)
	}
	db.Write.Exec(`INSERT INTO t VALUES ('a', 'x')`)
	_, err = db.Write.Exec(`INSERT INTO t VALUES ('b', 'x')`)
	if name, ok := (Dialect{}).UniqueViolation(err); !ok || name != "idx_t_v" {
		t.Errorf("unique violation: %q %v (%v)", name, ok, err)
	}
	_, err = db.Write.Exec(`INSERT INTO t VALUES ('a', 'y')`)
	if name, ok := (Dialect{}).UniqueViolation(err); !ok || name != "t_pkey" {
		t.Errorf("pkey violation: %q %v", name, ok)
	}
}
