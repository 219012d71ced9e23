package collections

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/sqldb/sqlite"
)

func TestSweepRemovesOnlyExpired(t *testing.T) {
	db, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := New(context.Background(), db, slog.New(slog.NewTextHandler(io.Discard, nil)), secret.Argon2Params{Memory: 256, Time: 1, Threads: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	past, future := schema.FormatDate(time.Now().Add(-time.Minute)), schema.FormatDate(time.Now().Add(time.Hour))
	for _, q := range []string{
		"INSERT INTO _otps (id, collection, record, hash, attempts, expires) VALUES ('old', 'c', 'r', 'h', 0, '" + past + "')",
		"INSERT INTO _otps (id, collection, record, hash, attempts, expires) VALUES ('new', 'c', 'r', 'h', 0, '" + future + "')",
		"INSERT INTO _mfas (id, collection, record, method, expires) VALUES ('old', 'c', 'r', 'password', '" + past + "')",
	} {
		if _, err := db.Write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	a.sweep(context.Background())
	for table, want := range map[string]int{"_otps": 1, "_mfas": 0} {
		var n int
		if err := db.Read.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}
	var id string
	db.Read.QueryRow("SELECT id FROM _otps").Scan(&id)
	if id != "new" {
		t.Errorf("kept %q", id)
	}
}
