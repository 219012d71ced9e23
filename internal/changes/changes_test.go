package changes

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/dbtest"
)

// forEachDB runs fn on each engine, with the system tables.
var forEachDB = dbtest.ForEach

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// appendOne commits one entry through l and returns it numbered.
func appendOne(t *testing.T, db *sqldb.DB, l *Log, record string, commit bool) Entry {
	t.Helper()
	var got []Entry
	err := db.Tx(context.Background(), func(tx *sql.Tx) (err error) {
		got, err = l.Append(context.Background(), tx, Entry{CollectionID: "c1", Collection: "posts", Record: record, Action: "create", Data: json.RawMessage(`{"id":"` + record + `"}`)})
		if err == nil && !commit {
			err = sql.ErrTxDone // roll back
		}
		return err
	})
	if commit && err != nil {
		t.Fatal(err)
	}
	if commit {
		l.Committed(got...)
	}
	return got[0]
}

func TestAppendReadBoundsPrune(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqldb.DB) {
		l := New(db, quiet)
		ctx := context.Background()
		if floor, head, err := l.Bounds(ctx); err != nil || floor != 0 || head != 0 {
			t.Fatalf("empty log: %d %d %v", floor, head, err)
		}
		var seqs []uint64
		for i := range 10 {
			e := appendOne(t, db, l, string(rune('a'+i)), true)
			if len(seqs) > 0 && e.Seq <= seqs[len(seqs)-1] {
				t.Fatalf("numbers must grow: %d after %v", e.Seq, seqs)
			}
			seqs = append(seqs, e.Seq)
			if i == 4 {
				appendOne(t, db, l, "rolled back", false) // may leave a gap, never an entry
			}
		}
		got, err := l.Read(ctx, seqs[2], 100)
		if err != nil || len(got) != 7 || got[0].Seq != seqs[3] || got[0].Record != "d" || string(got[0].Data) != `{"id":"d"}` {
			t.Fatalf("read after %d: %+v %v", seqs[2], got, err)
		}
		if _, head, _ := l.Bounds(ctx); head != seqs[9] {
			t.Fatalf("head %d, want %d", head, seqs[9])
		}
		time.Sleep(5 * time.Millisecond) // entry times have millisecond resolution
		for _, c := range []struct {
			maxAge    time.Duration
			maxCount  int
			wantFloor uint64
		}{
			{0, 4, seqs[5]},               // keep the newest 4
			{0, 100, seqs[5]},             // nothing more to cut; the floor stays
			{time.Nanosecond, 0, seqs[9]}, // older than a moment ago: everything
		} {
			if _, err := l.Prune(ctx, c.maxAge, c.maxCount); err != nil {
				t.Fatal(err)
			}
			floor, head, err := l.Bounds(ctx)
			if err != nil || floor != c.wantFloor || head != seqs[9] {
				t.Errorf("prune %v/%d: floor %d head %d (%v), want floor %d head %d", c.maxAge, c.maxCount, floor, head, err, c.wantFloor, seqs[9])
			}
		}
		// Numbers are never reused after everything was pruned.
		if e := appendOne(t, db, l, "after", true); e.Seq <= seqs[9] {
			t.Errorf("number %d reused (head was %d)", e.Seq, seqs[9])
		}
	})
}

// Tail delivers every committed entry once, in order, whether it comes
// from this log's memory (committed here) or from the database (another
// writer, here a second Log on the same database standing for another
// node that sends no wake-up: the poll finds it).
func TestTailInOrderFromMemoryAndDatabase(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqldb.DB) {
		here, other := New(db, quiet), New(db, quiet)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		var got []uint64
		go here.Tail(ctx, 0, 20*time.Millisecond, func(b []Entry) {
			mu.Lock()
			for _, e := range b {
				got = append(got, e.Seq)
			}
			mu.Unlock()
		})
		var want []uint64
		for i := range 60 {
			l := here
			if i%3 == 0 {
				l = other
			}
			want = append(want, appendOne(t, db, l, "r", true).Seq)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= len(want) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != len(want) {
			t.Fatalf("tail got %d entries, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("entry %d: %d, want %d (%v)", i, got[i], want[i], got)
			}
		}
	})
}

// A consumer that has not read everything (webhook delivery) keeps what
// it still needs through any retention.
func TestPruneKeepsWhatHoldersNeed(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqldb.DB) {
		l := New(db, quiet)
		var seqs []uint64
		for range 10 {
			seqs = append(seqs, appendOne(t, db, l, "r", true).Seq)
		}
		l.Hold(func(context.Context) (uint64, error) { return seqs[2], nil })
		if _, err := l.Prune(context.Background(), 0, 1); err != nil {
			t.Fatal(err)
		}
		if floor, _, _ := l.Bounds(context.Background()); floor != seqs[2] {
			t.Errorf("floor %d, want %d: entries a holder still needs were pruned", floor, seqs[2])
		}
		got, _ := l.Read(context.Background(), seqs[2], 100)
		if len(got) != 7 {
			t.Errorf("%d entries kept after the holder's position, want 7", len(got))
		}
	})
}
