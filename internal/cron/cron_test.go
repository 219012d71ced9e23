package cron

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/sqlite"
)

func TestParseAndMatch(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		spec, when string
		want       bool
	}{
		{"* * * * *", "2026-11-25 04:51", true},
		{"*/15 * * * *", "2026-11-25 04:45", true},
		{"*/15 * * * *", "2026-11-25 04:46", false},
		{"0 3 * * *", "2026-11-25 03:00", true},
		{"0 3 * * *", "2026-11-25 04:00", false},
		{"0 0 * * 0", "2026-11-29 00:00", true}, // a Sunday
		{"0 0 * * 7", "2026-11-29 00:00", true}, // 7 is Sunday too
		{"0 0 1 * *", "2026-12-01 00:00", true},
		{"0 0 1 * 1", "2026-11-30 00:00", true}, // either day field (a Monday)
		{"30 9-17/4 * 1-6 *", "2026-05-04 13:30", true},
		{"30 9-17/4 * 1-6 *", "2026-05-04 14:30", false},
		{"@hourly", "2026-11-25 07:00", true},
		{"@daily", "2026-11-25 00:00", true},
	} {
		s, err := Parse(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if got := s.Matches(at(c.when)); got != c.want {
			t.Errorf("%q at %s: %v, want %v", c.spec, c.when, got, c.want)
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "a * * * *", "5-1 * * * *", "* * * 13 *"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// Two nodes on one database: a scheduled run happens once.
func TestRunsOncePerSlotAcrossNodes(t *testing.T) {
	db, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range sqldb.SystemDDL(db.Dialect) {
		if _, err := db.Write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var runs atomic.Int32
	done := make(chan struct{}, 4)
	job := func(context.Context) error { runs.Add(1); done <- struct{}{}; return nil }
	a, b := New(db, slog.Default(), "a"), New(db, slog.Default(), "b")
	for _, s := range []*Scheduler{a, b} {
		if err := s.Add("report", "*/5 * * * *", job); err != nil {
			t.Fatal(err)
		}
	}
	slot := time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)
	a.Tick(context.Background(), slot)
	b.Tick(context.Background(), slot)
	a.Tick(context.Background(), slot.Add(time.Minute)) // not due
	<-done
	b.Tick(context.Background(), slot.Add(5*time.Minute))
	<-done
	select {
	case <-done:
		t.Fatal("a slot ran twice")
	case <-time.After(100 * time.Millisecond):
	}
	if runs.Load() != 2 {
		t.Errorf("runs = %d, want 2 (one per due slot)", runs.Load())
	}
	if got := a.Jobs(); len(got) != 1 || got[0].Name != "report" || got[0].Spec != "*/5 * * * *" {
		t.Errorf("Jobs() = %v", got)
	}
}
