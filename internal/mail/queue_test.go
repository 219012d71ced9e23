package mail

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/dbtest"
)

// forEachDB runs fn on each engine, with the system tables.
var forEachDB = dbtest.ForEach

// quiet discards the queue's logs: the failures here are on purpose.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// deadSMTP is an address nothing listens on.
func deadSMTP(t *testing.T) func(context.Context) (SMTP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	p, _ := strconv.Atoi(port)
	return func(context.Context) (SMTP, error) { return SMTP{Host: host, Port: p, TLS: "none"}, nil }
}

func onlyJob(t *testing.T, q *Queue) job {
	t.Helper()
	rows, err := q.db.Read.Query("SELECT id, kind, payload, created, attempts FROM _mailQueue")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var jobs []job
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.id, &j.kind, &j.payload, &j.created, &j.attempts); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	return jobs[0]
}

// A node claims only a job that is due and not leased: another node that
// read the job before this one tried and rescheduled it must wait out
// the backoff, and two nodes never hold the same job.
func TestClaimRespectsLeaseAndBackoff(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		a := NewQueue(db, quiet, deadSMTP(t), QueueOptions{})
		b := NewQueue(db, quiet, deadSMTP(t), QueueOptions{})
		if err := a.Enqueue(ctx, db.Write, "k", map[string]string{}); err != nil {
			t.Fatal(err)
		}
		j := onlyJob(t, a)
		if !a.claim(ctx, j.id) {
			t.Fatal("a due, free job could not be claimed")
		}
		if b.claim(ctx, j.id) {
			t.Fatal("a leased job was claimed by a second node")
		}
		a.fail(ctx, j, context.DeadlineExceeded, false) // releases it, due after a backoff
		if b.claim(ctx, j.id) {
			t.Fatal("a job was claimed before its backoff ended")
		}
		b.now = func() time.Time { return time.Now().Add(time.Hour) }
		if !b.claim(ctx, j.id) {
			t.Fatal("a job whose backoff ended could not be claimed")
		}
	})
}

// Each attempt resolves the job again, so what a message carries is made
// for the attempt that delivers it, and the rendered message is never
// stored in the queue.
func TestEachAttemptResolvesAndNothingRenderedIsStored(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		q := NewQueue(db, quiet, deadSMTP(t), QueueOptions{})
		var calls atomic.Int32
		q.Handle("k", func(context.Context, json.RawMessage) (*Message, error) {
			n := calls.Add(1)
			return &Message{From: "a@example.com", To: "b@example.com", Subject: "s", Text: "secret-token-" + strconv.Itoa(int(n))}, nil
		})
		if err := q.Enqueue(ctx, db.Write, "k", map[string]string{"email": "b@example.com"}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			q.now = func() time.Time { return time.Now().Add(time.Duration(i) * 20 * time.Minute) }
			if n := q.sendDue(ctx); n != 1 {
				t.Fatalf("attempt %d handled %d jobs", i, n)
			}
			if calls.Load() != int32(i) {
				t.Fatalf("after %d attempts the job was resolved %d times", i, calls.Load())
			}
		}
		rows, err := db.Read.Query("SELECT * FROM _mailQueue")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if s, _ := v.(string); strings.Contains(s, "secret-token") {
					t.Errorf("column %s stores the rendered message: %q", cols[i], s)
				}
				if b, _ := v.([]byte); strings.Contains(string(b), "secret-token") {
					t.Errorf("column %s stores the rendered message", cols[i])
				}
			}
		}
	})
}

// A job not delivered within MaxAge is given up without being resolved
// or sent.
func TestMaxAgeGivesUp(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		q := NewQueue(db, quiet, deadSMTP(t), QueueOptions{MaxAge: time.Hour})
		var calls atomic.Int32
		q.Handle("k", func(context.Context, json.RawMessage) (*Message, error) {
			calls.Add(1)
			return nil, nil
		})
		if err := q.Enqueue(ctx, db.Write, "k", map[string]string{}); err != nil {
			t.Fatal(err)
		}
		q.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		q.sendDue(ctx)
		if calls.Load() != 0 {
			t.Errorf("an expired job was resolved")
		}
		var status string
		if err := db.Read.QueryRow("SELECT status FROM _mailQueue").Scan(&status); err != nil || status != "failed" {
			t.Errorf("status %q (%v), want failed", status, err)
		}
		if n, _ := q.Pending(ctx); n != 0 {
			t.Errorf("%d pending after giving up", n)
		}
	})
}

// Once the server has accepted the message, a connection that breaks
// before QUIT is answered is a delivery, not a failure to retry (which
// would send the message twice).
func TestSendIgnoresFailedQuit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		reply := func(s string) { conn.Write([]byte(s + "\r\n")) }
		reply("220 localhost ready")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
				reply("250 localhost")
			case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"):
				reply("250 ok")
			case cmd == "DATA":
				reply("354 go on")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
				}
				reply("250 queued")
			case cmd == "QUIT":
				return // hang up without answering
			default:
				reply("500 unknown")
			}
		}
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	err = Send(context.Background(), SMTP{Host: host, Port: p, TLS: "none"}, Message{From: "a@example.com", To: "b@example.com", Subject: "s", Text: "t"})
	if err != nil {
		t.Fatalf("accepted message reported as failed: %v", err)
	}
}
