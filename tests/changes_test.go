package tests

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/plinthhq/plinth"
)

// otherNode is a second node on the same database (PostgreSQL), or s
// itself on SQLite, where one process owns the database.
func otherNode(t *testing.T, s *server, adjust func(*plinth.Config)) *server {
	if s.dbURL == "" {
		return s
	}
	o := startServerWith(t, t.TempDir(), s.dbURL, adjust)
	o.su = s.su
	return o
}

// resumeSSE opens a stream on s carrying a resume position (and, when
// clientID is set, the client to resume).
func (s *server) resumeSSE(clientID, lastID string) *sseClient {
	ctx, cancel := context.WithCancel(context.Background())
	path := "/api/realtime"
	if clientID != "" {
		path += "?clientId=" + clientID
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+path, nil)
	req.Header.Set("Last-Event-ID", lastID)
	return s.sseReq(req, cancel)
}

// collectUntil reads events up to the record whose text is END and
// checks their ids strictly increase.
func (c *sseClient) collectUntil(t *testing.T) []sseEvent {
	t.Helper()
	var out []sseEvent
	var last uint64
	for {
		ev := c.next()
		rec, _ := ev.data["record"].(map[string]any)
		if rec["text"] == "END" {
			return out
		}
		id, err := strconv.ParseUint(ev.id, 10, 64)
		if err != nil || id <= last {
			t.Fatalf("event id %q after %d: ids must be log positions, increasing", ev.id, last)
		}
		last = id
		out = append(out, ev)
	}
}

// seenThenGone connects a client of the user with token tok to posts,
// lets it receive one event and disconnects it; it returns the client
// and that event (whose id is the resume position).
func (s *server) seenThenGone(tok, authorID string) (*sseClient, sseEvent) {
	c := s.sse("/api/realtime")
	s.subscribe(c, tok, "posts").status(204)
	s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": authorID, "text": "seen"}).status(200)
	last := c.next()
	c.close()
	return c, last
}

// posts creates n private posts of author, texts "0" to "n-1".
func (s *server) posts(authorID string, n int) {
	for i := range n {
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": authorID, "text": fmt.Sprint(i)}).status(200)
	}
}

func texts(evs []sseEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		rec, _ := ev.data["record"].(map[string]any)
		out[i] = fmt.Sprint(ev.data["action"], ":", rec["text"])
	}
	return out
}

// A client that reconnects with its last event id — to another node, or
// to a node that does not know it — gets every event it missed that it
// may see, in order, exactly once, then live events; far more than the
// live queue holds (no 64-event cliff).
func TestResumeOnAnyNode(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		anaID, ana, bobID, _ := realtimeFixture(t, s)
		b := otherNode(t, s, nil)
		c := s.sse("/api/realtime")
		s.subscribe(c, ana, "posts").status(204)
		post := func(author, text string, public bool) string {
			return s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": author, "text": text, "public": public}).status(200).str("id")
		}
		post(anaID, "seen", false)
		last := c.next()
		c.close()

		var want []string
		for i := range 300 {
			post(anaID, fmt.Sprint("missed ", i), false)
			want = append(want, fmt.Sprint("create:missed ", i))
			if i%50 == 0 {
				post(bobID, "bob private", false) // not Ana's to see
			}
		}
		id := post(anaID, "to update", false)
		s.do("PATCH", "/api/collections/posts/records/"+id, s.su, map[string]any{"text": "updated"}).status(200)
		s.do("DELETE", "/api/collections/posts/records/"+id, s.su, nil).status(204)
		want = append(want, "create:to update", "update:updated", "delete:updated")

		r := b.resumeSSE("", last.id)
		if r.id == c.id {
			t.Fatal("a node that does not know the client must give a new id")
		}
		b.subscribe(r, ana, "posts").status(204)
		post(anaID, "live", false)
		post(anaID, "END", true)
		want = append(want, "create:live")
		got := texts(r.collectUntil(t))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("resumed on another node: got %d events, want %d; first differences: %v", len(got), len(want), firstDiff(got, want))
		}
	})
}

func firstDiff(got, want []string) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %q vs %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(got), len(want))
}

// The same client resumes on its node with more missed events than its
// live queue holds: the replay streams them all, the client id is kept.
func TestResumeLongReplaySameClient(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		anaID, ana, _, _ := realtimeFixture(t, s)
		c, last := s.seenThenGone(ana, anaID)
		s.posts(anaID, 500)
		r := s.resumeSSE(c.id, last.id)
		if r.id != c.id {
			t.Fatal("resume gave a new client")
		}
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "END"}).status(200)
		got := r.collectUntil(t)
		if len(got) != 500 || texts(got)[0] != "create:0" || texts(got)[499] != "create:499" {
			t.Fatalf("replayed %d of 500 events", len(got))
		}
	})
}

// A position the log no longer holds (pruned), or never held, gets an
// explicit reset event, never a silent gap; the client then works live.
func TestResumeOutOfRetentionResets(t *testing.T) {
	forEachEngineWith(t, func(c *plinth.Config) { c.ChangesMaxCount = 5 }, func(t *testing.T, s *server) {
		anaID, ana, _, _ := realtimeFixture(t, s)
		c, last := s.seenThenGone(ana, anaID)
		s.posts(anaID, 20)
		if n, err := s.app.PruneChangeLog(t.Context()); err != nil || n < 15 {
			t.Fatalf("prune: %d %v", n, err)
		}
		lastN, _ := strconv.ParseUint(last.id, 10, 64)
		for _, pos := range []string{last.id, strconv.FormatUint(lastN+1000000, 10)} {
			for _, id := range []string{c.id, ""} {
				r := s.resumeSSE(id, pos)
				ev := r.next()
				if ev.name != "plinth_reset" || ev.id == "" {
					t.Fatalf("resume from %s (client %q): got %q, want plinth_reset", pos, id, ev.name)
				}
				s.subscribe(r, ana, "posts").status(204)
				s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "live"}).status(200)
				s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "END"}).status(200)
				if got := texts(r.collectUntil(t)); strings.Join(got, ",") != "create:live" {
					t.Fatalf("after reset: %v", got)
				}
				r.close()
			}
		}
	})
}

// WebSocket clients resume on any node with ?lastEventId=.
func TestWebSocketResumeOnAnyNode(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		anaID, ana, _, _ := realtimeFixture(t, s)
		b := otherNode(t, s, nil)
		_, last := s.seenThenGone(ana, anaID)
		s.posts(anaID, 100)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, strings.Replace(b.url, "http", "ws", 1)+"/api/realtime/ws?lastEventId="+last.id, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		msg, _ := json.Marshal(map[string]any{"type": "subscribe", "token": ana, "subscriptions": []string{"posts"}})
		conn.Write(ctx, websocket.MessageText, msg)
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "END"}).status(200)
		var got []string
		var prev float64
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("after %d events: %v", len(got), err)
			}
			var m struct {
				Type string  `json:"type"`
				ID   float64 `json:"id"`
				Data struct {
					Record map[string]any `json:"record"`
				} `json:"data"`
			}
			json.Unmarshal(data, &m)
			if m.Type != "event" {
				continue
			}
			if m.ID <= prev {
				t.Fatalf("id %v after %v", m.ID, prev)
			}
			prev = m.ID
			text, _ := m.Data.Record["text"].(string)
			if text == "END" {
				break
			}
			got = append(got, text)
		}
		if len(got) != 100 || got[0] != "0" || got[99] != "99" {
			t.Fatalf("websocket resume: %d events", len(got))
		}
	})
}

// pgExec runs statements on the test database outside Plinth.
func pgOpen(t *testing.T, dbURL string) *sql.DB {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Writers on two nodes update the same records at once: subscribers on
// both nodes see every change once, in one order (commit order), each
// carrying the record as that change left it, also for records over the
// notification size limit; killing the listening connections loses
// nothing (the log is read from each node's position).
func TestChangeStreamAcrossNodes(t *testing.T) {
	a := newServerWith(t, postgresEngine(), noRateLimits)
	dbURL := a.dbURL
	b := startServerWith(t, t.TempDir(), dbURL, func(c *plinth.Config) { noRateLimits(c); c.ChangesPoll = 200 * time.Millisecond })
	b.su = a.su
	anaID, ana, _, _ := realtimeFixture(t, a)
	var ids []string
	for i := range 5 {
		ids = append(ids, a.do("POST", "/api/collections/posts/records", a.su, map[string]any{"author": anaID, "text": fmt.Sprint("r", i)}).status(200).str("id"))
	}
	subs := []*sseClient{a.sse("/api/realtime"), b.sse("/api/realtime"), b.sse("/api/realtime")}
	for i, c := range subs {
		[]*server{a, b, b}[i].subscribe(c, ana, "posts").status(204)
	}
	pg := pgOpen(t, dbURL)
	big := strings.Repeat("z", 9000)
	var wg sync.WaitGroup
	const perWriter = 150
	for w, node := range []*server{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				body := map[string]any{"text": fmt.Sprintf("w%d-%d", w, i)}
				if i%10 == 0 {
					body["blob"] = big + fmt.Sprint(w, i) // over NOTIFY's limit
				}
				node.do("PATCH", "/api/collections/posts/records/"+ids[i%len(ids)], node.su, body).status(200)
				if w == 0 && i == perWriter/2 {
					// Every node's listening connection dies mid-stream.
					if _, err := pg.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE '%listener%' AND datname = current_database()"); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	a.do("POST", "/api/collections/posts/records", a.su, map[string]any{"author": anaID, "text": "END"}).status(200)
	var first []string
	for i, c := range subs {
		evs := c.collectUntil(t)
		var seq []string
		last := map[string]map[string]any{}
		blobs := map[string]string{} // record -> blob as of the events so far
		for _, ev := range evs {
			rec := ev.data["record"].(map[string]any)
			text, id := rec["text"].(string), rec["id"].(string)
			seq = append(seq, ev.id+":"+text)
			last[id] = rec
			var w, n int
			fmt.Sscanf(text, "w%d-%d", &w, &n)
			if n%10 == 0 {
				blobs[id] = big + fmt.Sprint(w, n)
			}
			if blob, _ := rec["blob"].(string); blob != blobs[id] {
				t.Errorf("subscriber %d: event %s does not carry the record as that change left it", i, text)
			}
		}
		if len(evs) != 2*perWriter {
			t.Errorf("subscriber %d: %d events, want %d", i, len(evs), 2*perWriter)
		}
		if i == 0 {
			first = seq
		} else if strings.Join(seq, ",") != strings.Join(first, ",") {
			t.Errorf("subscriber %d saw another order than subscriber 0: %s", i, firstDiff(seq, first))
		}
		for _, id := range ids {
			stored := a.do("GET", "/api/collections/posts/records/"+id, a.su, nil).status(200)
			if got := last[id]["text"]; got != stored.str("text") {
				t.Errorf("subscriber %d: last event of %s says %v, stored %v", i, id, got, stored.str("text"))
			}
		}
	}
}

// A table locked by another transaction makes requests that need it a
// 503 with Retry-After after the lock timeout, not a stalled node: other
// collections and health keep answering.
func TestLockedTableIs503(t *testing.T) {
	s := newServerWith(t, postgresEngine(), func(c *plinth.Config) { c.PGLockTimeout = 300 * time.Millisecond })
	dbURL := s.dbURL
	_, ana, _, _ := realtimeFixture(t, s)
	s.collection(map[string]any{"name": "notes", "listRule": "", "fields": []any{map[string]any{"name": "text", "type": "text"}}})
	pg := pgOpen(t, dbURL)
	tx, err := pg.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`LOCK TABLE posts IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make([]int, 30) // more than the pool would hold if they waited
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := s.try("GET", "/api/collections/posts/records", ana, nil)
			codes[i] = code
		}()
	}
	req, _ := http.NewRequest("GET", s.url+"/api/collections/posts/records", nil)
	req.Header.Set("Authorization", "Bearer "+ana)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || body["message"] == "" || body["status"] != float64(503) {
		t.Fatalf("locked table: %d %v (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	s.do("GET", "/api/collections/notes/records", ana, nil).status(200)
	s.do("GET", "/api/health", ana, nil).status(200)
	wg.Wait()
	for _, c := range codes {
		if c != 503 {
			t.Fatalf("concurrent requests on the locked table: %v", codes)
		}
	}
	tx.Rollback()
	s.do("GET", "/api/collections/posts/records", ana, nil).status(200)
}

// Renaming and removing fields under load, through the node that serves
// the requests (and through another one on PostgreSQL), gives answers of
// the old or the new schema, never a server error.
func TestSchemaChangeUnderLoad(t *testing.T) {
	forEachEngineWith(t, noRateLimits, func(t *testing.T, s *server) {
		coll := s.collection(map[string]any{"name": "items", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
			"fields": []any{map[string]any{"name": "title", "type": "text"}, map[string]any{"name": "n", "type": "number"}}})
		ns := nodes(t, s)
		var ids []string
		for i := range 5 {
			ids = append(ids, s.do("POST", "/api/collections/items/records", "", map[string]any{"title": fmt.Sprint(i), "n": i}).status(200).str("id"))
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		bad := map[string]int{}
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				node := ns[w%len(ns)]
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					var code int
					var err error
					switch i % 3 {
					case 0:
						code, _, err = node.try("GET", "/api/collections/items/records?sort=-n", "", nil)
					case 1:
						code, _, err = node.try("POST", "/api/collections/items/records", "", map[string]any{"n": i})
					default:
						code, _, err = node.try("PATCH", "/api/collections/items/records/"+ids[i%len(ids)], "", map[string]any{"n": i})
					}
					if err != nil || code >= 500 {
						mu.Lock()
						bad[fmt.Sprint(i%3, code, err)]++
						mu.Unlock()
					}
				}
			}()
		}
		fields := coll["fields"].([]any)
		for round := range 6 {
			// Rename title, then add and remove a field.
			for _, f := range fields {
				if f := f.(map[string]any); strings.HasPrefix(f["name"].(string), "title") {
					f["name"] = fmt.Sprint("title", round)
				}
			}
			s.do("PATCH", "/api/collections/items", s.su, map[string]any{"fields": fields}).status(200)
			extra := append(append([]any{}, fields...), map[string]any{"name": "tmp", "type": "text"})
			s.do("PATCH", "/api/collections/items", s.su, map[string]any{"fields": extra}).status(200)
			s.do("PATCH", "/api/collections/items", s.su, map[string]any{"fields": fields}).status(200)
			fields = s.do("GET", "/api/collections/items", s.su, nil).status(200).body["fields"].([]any)
		}
		close(stop)
		wg.Wait()
		if len(bad) > 0 {
			t.Errorf("server errors during schema changes: %v", bad)
		}
	})
}

// A statement that runs into the statement timeout is a 503 saying so,
// with Retry-After, not a generic 500.
func TestStatementTimeoutIs503(t *testing.T) {
	s := newServerWith(t, postgresEngine(), func(c *plinth.Config) { c.PGStatementTimeout = 200 * time.Millisecond })
	s.collection(map[string]any{"name": "slow", "type": "view", "listRule": "",
		"viewQuery": "SELECT (ROW_NUMBER() OVER())::text AS id, n FROM generate_series(1, 3) AS n, LATERAL (SELECT pg_sleep(0.2)) AS z"})
	req, _ := http.NewRequest("GET", s.url+"/api/collections/slow/records", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(fmt.Sprint(body["message"]), "too long") {
		t.Fatalf("statement timeout: %d %v", resp.StatusCode, body)
	}
}
