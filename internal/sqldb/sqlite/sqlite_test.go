package sqlite

import (
	"errors"
	"testing"
)

func TestOpenSettings(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		pragma string
		want   string
	}{{"journal_mode", "wal"}, {"synchronous", "2"}, {"foreign_keys", "1"}, {"busy_timeout", "10000"}, {"cache_size", "-16000"}, {"temp_store", "2"}} {
		var got string
		if err := db.Write.QueryRow("PRAGMA " + c.pragma).Scan(&got); err != nil || got != c.want {
			t.Errorf("writer %s = %q (%v), want %q", c.pragma, got, err, c.want)
		}
		if err := db.Read.QueryRow("PRAGMA " + c.pragma).Scan(&got); err != nil || got != c.want {
			t.Errorf("reader %s = %q (%v), want %q", c.pragma, got, err, c.want)
		}
	}
	if _, err := db.Read.Exec("CREATE TABLE x (a TEXT)"); err == nil {
		t.Errorf("read pool accepted a write")
	}
	if _, err := db.Write.Exec("CREATE TABLE x (a TEXT)"); err != nil {
		t.Errorf("writer: %v", err)
	}
	if _, err := Open(t.TempDir(), Options{Synchronous: "bogus"}); err == nil {
		t.Errorf("invalid synchronous accepted")
	}
}

func TestUniqueViolation(t *testing.T) {
	cases := []struct {
		err  error
		want string
		ok   bool
	}{
		{errors.New("UNIQUE constraint failed: posts.handle"), "handle", true},
		{errors.New("UNIQUE constraint failed: follows.follower, follows.followee"), "follower,followee", true},
		{errors.New("constraint failed: UNIQUE constraint failed: t.id (1555)"), "id", true},
		{errors.New("NOT NULL constraint failed: t.a"), "", false},
		{nil, "", false},
	}
	for _, c := range cases {
		got, ok := Dialect{}.UniqueViolation(c.err)
		if got != c.want || ok != c.ok {
			t.Errorf("%v: %q %v", c.err, got, ok)
		}
	}
}
