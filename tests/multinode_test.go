package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/plinthhq/plinth"
)

// TestMultiNode runs three nodes on one PostgreSQL database: writes
// through one node are read through the others, and schema changes made
// through one node are served by the others without a restart.
func TestMultiNode(t *testing.T) {
	e := postgresEngine()
	dbURL := e.newDB(t)
	a := startServer(t, t.TempDir(), dbURL)
	if err := a.app.UpsertSuperuser(t.Context(), suEmail, suPassword); err != nil {
		t.Fatal(err)
	}
	a.su = a.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": suEmail, "password": suPassword}).status(200).str("token")
	b := startServer(t, t.TempDir(), dbURL)
	c := startServer(t, t.TempDir(), dbURL)
	// Tokens are stateless: one node's token works on every node.
	b.su, c.su = a.su, a.su
	b.do("GET", "/api/collections", a.su, nil).status(200)

	a.collection(map[string]any{"name": "notes", "listRule": "", "viewRule": "", "createRule": "", "fields": []any{map[string]any{"name": "title", "type": "text"}}})
	// Served at once by the others (collection miss re-checks the version).
	id := b.do("POST", "/api/collections/notes/records", "", map[string]any{"title": "from b"}).status(200).str("id")
	if got := c.do("GET", "/api/collections/notes/records/"+id, "", nil).status(200).body["title"]; got != "from b" {
		t.Fatalf("read through c: %v", got)
	}
	// A field added through c: a and b must accept it (notification).
	col := c.do("GET", "/api/collections/notes", c.su, nil).status(200).body
	fields := append(col["fields"].([]any), map[string]any{"name": "stars", "type": "number"})
	c.do("PATCH", "/api/collections/notes", c.su, map[string]any{"fields": fields}).status(200)
	for _, n := range []*server{a, b} {
		ok := false
		for i := 0; i < 100 && !ok; i++ {
			r := n.do("POST", "/api/collections/notes/records", "", map[string]any{"title": "x", "stars": 3})
			ok = r.code == 200
			if !ok {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if !ok {
			t.Fatalf("node %s never saw the new field", n.url)
		}
	}
	// Rules changed through b apply on a.
	b.do("PATCH", "/api/collections/notes", b.su, map[string]any{"listRule": nil}).status(200)
	ok := false
	for i := 0; i < 100 && !ok; i++ {
		ok = a.do("GET", "/api/collections/notes/records", "", nil).code == 403
		if !ok {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatalf("node a still serves the old list rule")
	}
	// A collection deleted through a disappears from c.
	a.do("DELETE", "/api/collections/notes", a.su, nil).status(204)
	ok = false
	for i := 0; i < 100 && !ok; i++ {
		ok = c.do("GET", "/api/collections/notes/records", c.su, nil).code == 404
		if !ok {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatalf("node c still serves a deleted collection")
	}
}

// Five nodes started at the same moment on an empty database all come
// up (bootstrap and system migrations take a cluster-wide lock), ten
// times over.
func TestNodesStartTogether(t *testing.T) {
	e := postgresEngine()
	for round := 0; round < 10; round++ {
		dbURL := e.newDB(t)
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		apps := make(chan *plinth.App, 5)
		start := make(chan struct{})
		for i := 0; i < 5; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				app, err := plinth.New(context.Background(), plinth.Config{DataDir: t.TempDir(), DB: dbURL, FileSweepInterval: -1,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					errs <- err
					return
				}
				apps <- app
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		close(apps)
		for err := range errs {
			t.Errorf("round %d: a node failed to start: %v", round, err)
		}
		n := 0
		for app := range apps {
			n++
			if err := app.UpsertSuperuser(context.Background(), fmt.Sprintf("root%d@example.com", n), "superuser-pass-1"); err != nil {
				t.Errorf("round %d: node not usable: %v", round, err)
			}
			app.Close()
		}
		if t.Failed() {
			return
		}
	}
}

// A short-lived process (a CLI command, say) that changes data announces
// the change to the other nodes before it closes the database.
func TestShortLivedNodeAnnouncesChanges(t *testing.T) {
	dbURL := postgresEngine().newDB(t)
	a := startServer(t, t.TempDir(), dbURL)
	a.loginSuperuser()
	a.collection(map[string]any{"name": "notes", "listRule": "", "viewRule": "", "createRule": "", "fields": []any{map[string]any{"name": "text", "type": "text"}}})
	c := a.sse("/api/realtime")
	a.subscribe(c, "", "notes").status(204)
	var logs errorLog
	b, err := plinth.New(context.Background(), plinth.Config{DataDir: t.TempDir(), DB: dbURL, FileSweepInterval: -1, Logger: slog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Records().Create(context.Background(), nil, "notes", map[string]any{"text": "from a command"}); err != nil {
		t.Fatal(err)
	}
	b.Close() // at once, as a CLI command does
	if errs := logs.errors(); len(errs) > 0 {
		t.Errorf("errors while closing: %v", errs)
	}
	ev := c.next()
	if rec, _ := ev.data["record"].(map[string]any); rec["text"] != "from a command" {
		t.Fatalf("event %v", ev.data)
	}
}

// Liveness never needs the database; readiness says when a node can take
// traffic: on a shared database, once it listens for the other nodes'
// changes — and from then on their events reach it.
func TestReadiness(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.do("GET", "/api/health", "", nil).status(200)
		n := s
		if s.dbURL != "" {
			n = startServer(t, t.TempDir(), s.dbURL)
		}
		ready := false
		for i := 0; i < 200 && !ready; i++ {
			code, body, err := n.try("GET", "/api/health?ready=1", "", nil)
			if ready = code == 200; !ready {
				data, _ := body["data"].(map[string]any)
				if err != nil || code != 503 || data["listener"] == nil {
					t.Fatalf("not ready: %d %v %v", code, body, err)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}
		if !ready {
			t.Fatal("never ready")
		}
		// Ready means listening: an event committed through the first node
		// right now reaches a subscriber on this one.
		s.collection(map[string]any{"name": "notes", "listRule": "", "createRule": "", "fields": []any{map[string]any{"name": "text", "type": "text"}}})
		c := n.sse("/api/realtime")
		n.subscribe(c, "", "notes").status(204)
		s.do("POST", "/api/collections/notes/records", "", map[string]any{"text": "hello"}).status(200)
		if ev := c.next(); ev.data["record"].(map[string]any)["text"] != "hello" {
			t.Errorf("event %v", ev.data)
		}
	})
}
