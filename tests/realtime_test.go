package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// sseClient is a minimal EventSource.
type sseClient struct {
	t      *testing.T
	id     string
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

type sseEvent struct {
	id, name string
	data     map[string]any
}

func (s *server) sse(path string) *sseClient {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+path, nil)
	return s.sseReq(req, cancel)
}

func (s *server) sseReq(req *http.Request, cancel context.CancelFunc) *sseClient {
	s.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		s.t.Fatalf("sse: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{t: s.t, resp: resp, events: make(chan sseEvent, 1000), cancel: cancel}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(line[6:]), &ev.data)
			}
		}
	}()
	first := c.next()
	if first.name != "plinth_connect" {
		s.t.Fatalf("first event %q", first.name)
	}
	c.id = first.data["clientId"].(string)
	// PocketBase's connect event follows, its id: line the client id.
	if pb := c.next(); pb.name != "PB_CONNECT" || pb.id != c.id || pb.data["clientId"] != c.id {
		s.t.Fatalf("PB_CONNECT: %+v", pb)
	}
	s.t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() { c.cancel(); c.resp.Body.Close() }

func (c *sseClient) next() sseEvent {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatalf("stream closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		c.t.Fatalf("no event within 10s")
	}
	return sseEvent{}
}

// until collects record texts until the sentinel text arrives.
func (c *sseClient) until(sentinel string) []string {
	c.t.Helper()
	var got []string
	for {
		ev := c.next()
		rec, _ := ev.data["record"].(map[string]any)
		text, _ := rec["text"].(string)
		if text == sentinel {
			return got
		}
		got = append(got, ev.data["action"].(string)+":"+text)
	}
}

func (s *server) subscribe(c *sseClient, token string, subs ...any) *response {
	return s.do("POST", "/api/realtime", token, map[string]any{"clientId": c.id, "subscriptions": subs})
}

func realtimeFixture(t *testing.T, s *server) (anaID, ana, bobID, bob string) {
	s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "id = @request.auth.id"})
	anaID, ana = s.user("users", "ana@example.com", nil)
	bobID, bob = s.user("users", "bob@example.com", nil)
	s.collection(map[string]any{"name": "posts",
		"listRule": "public = true || author = @request.auth.id", "viewRule": "public = true || author = @request.auth.id",
		"createRule": "", "updateRule": "", "deleteRule": "",
		"fields": []any{
			map[string]any{"name": "author", "type": "relation", "collectionId": "users"},
			map[string]any{"name": "text", "type": "text"},
			map[string]any{"name": "public", "type": "bool"},
			map[string]any{"name": "note", "type": "text", "hidden": true},
			map[string]any{"name": "blob", "type": "text", "max": 200000},
		}})
	return
}

func TestRealtimeRespectsRules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		anaID, ana, bobID, bob := realtimeFixture(t, s)
		subs := map[string]*sseClient{}
		for name, tok := range map[string]string{"anon": "", "ana": ana, "bob": bob, "su": s.su} {
			c := s.sse("/api/realtime")
			s.subscribe(c, tok, "posts").status(204)
			subs[name] = c
		}
		post := func(author string, public bool, text string) string {
			return s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": author, "public": public, "text": text, "note": "secret"}).status(200).str("id")
		}
		post(anaID, true, "ana public")
		anaPriv := post(anaID, false, "ana private")
		post(bobID, false, "bob private")
		s.do("PATCH", "/api/collections/posts/records/"+anaPriv, s.su, map[string]any{"public": true}).status(200)
		s.do("DELETE", "/api/collections/posts/records/"+anaPriv, s.su, nil).status(204)
		post(bobID, true, "END")
		want := map[string]string{
			"anon": "create:ana public,update:ana private,delete:ana private",
			"ana":  "create:ana public,create:ana private,update:ana private,delete:ana private",
			"bob":  "create:ana public,create:bob private,update:ana private,delete:ana private",
			"su":   "create:ana public,create:ana private,create:bob private,update:ana private,delete:ana private",
		}
		for name, c := range subs {
			if got := strings.Join(c.until("END"), ","); got != want[name] {
				t.Errorf("%s received %s, want %s", name, got, want[name])
			}
		}
		// Hidden fields and other users' emails never travel.
		c := s.sse("/api/realtime")
		s.subscribe(c, bob, "posts", "users").status(204)
		post(anaID, true, "visible")
		ev := c.next()
		rec := ev.data["record"].(map[string]any)
		if _, ok := rec["note"]; ok {
			t.Errorf("hidden field in event: %v", rec)
		}
		s.do("PATCH", "/api/collections/users/records/"+anaID, ana, map[string]any{"emailVisibility": false}).status(200)
		ev = c.next()
		if ev.name != "users" {
			t.Fatalf("event %q", ev.name)
		}
		if _, ok := ev.data["record"].(map[string]any)["email"]; ok {
			t.Errorf("email leaked: %v", ev.data)
		}
	})
}

func TestRealtimeTopicsFiltersAndErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		anaID, ana, bobID, _ := realtimeFixture(t, s)
		target := s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "target", "public": false}).status(200).str("id")
		c := s.sse("/api/realtime")
		s.subscribe(c, ana,
			"posts/"+target,
			map[string]any{"topic": "posts", "filter": `text ~ "go"`, "expand": "author", "fields": "id,text,expand.author.id"},
		).status(204)
		s.do("PATCH", "/api/collections/posts/records/"+target, s.su, map[string]any{"text": "target2"}).status(200)
		ev := c.next()
		if ev.name != "posts/"+target || ev.data["record"].(map[string]any)["text"] != "target2" {
			t.Errorf("record topic: %v %v", ev.name, ev.data)
		}
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": bobID, "text": "no match", "public": true}).status(200)
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "lets go", "public": true}).status(200)
		ev = c.next()
		rec := ev.data["record"].(map[string]any)
		if ev.name != "posts" || rec["text"] != "lets go" || len(rec) != 3 || rec["expand"].(map[string]any)["author"].(map[string]any)["id"] != anaID {
			t.Errorf("filtered, projected, expanded event: %v", ev.data)
		}
		// Bad requests.
		s.do("POST", "/api/realtime", "", map[string]any{"clientId": "nope", "subscriptions": []string{"posts"}}).status(404)
		s.subscribe(c, ana, "nosuch").status(400)
		s.subscribe(c, ana, map[string]any{"topic": "posts", "filter": "text = "}).status(400)
		s.subscribe(c, ana, 42).status(400)
		// Another identity cannot take over the client.
		_, other := s.user("users", "eve@example.com", nil)
		s.subscribe(c, other, "posts").status(403)
	})
}

func TestRealtimeWebSocket(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		anaID, ana, bobID, _ := realtimeFixture(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, strings.Replace(s.url, "http", "ws", 1)+"/api/realtime/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		read := func() map[string]any {
			_, data, err := conn.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.Unmarshal(data, &m)
			return m
		}
		if m := read(); m["type"] != "connect" || m["clientId"] == "" {
			t.Fatalf("connect: %v", m)
		}
		msg, _ := json.Marshal(map[string]any{"type": "subscribe", "token": ana, "subscriptions": []string{"posts"}})
		conn.Write(ctx, websocket.MessageText, msg)
		if m := read(); m["type"] != "subscribed" {
			t.Fatalf("subscribe: %v", m)
		}
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": bobID, "text": "bob private"}).status(200)
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "ana private"}).status(200)
		m := read()
		data := m["data"].(map[string]any)
		if m["type"] != "event" || m["topic"] != "posts" || data["action"] != "create" || data["record"].(map[string]any)["text"] != "ana private" {
			t.Errorf("ws event: %v", m)
		}
		bad, _ := json.Marshal(map[string]any{"type": "subscribe", "token": "garbage", "subscriptions": []string{"posts"}})
		conn.Write(ctx, websocket.MessageText, bad)
		if m := read(); m["type"] != "error" {
			t.Errorf("bad token: %v", m)
		}
	})
}

// TestRealtimeSlowConsumerAndCleanup: a client that never reads is
// dropped, writers keep going, and no goroutine outlives its connection.
func TestRealtimeSlowConsumerAndCleanup(t *testing.T) {
	s := newServer(t, sqliteEngine())
	anaID, _, _, _ := realtimeFixture(t, s)
	settle := func() int {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()

	// A raw connection that subscribes and then never reads again.
	u, _ := url.Parse(s.url)
	raw, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	raw.(*net.TCPConn).SetReadBuffer(4096)
	raw.Write([]byte("GET /api/realtime HTTP/1.1\r\nHost: x\r\n\r\n"))
	br := bufio.NewReader(raw)
	var clientID string
	for clientID == "" {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			var m map[string]string
			json.Unmarshal([]byte(line[6:]), &m)
			clientID = m["clientId"]
		}
	}
	s.do("POST", "/api/realtime", "", map[string]any{"clientId": clientID, "subscriptions": []string{"posts"}}).status(204)
	// Many quick readers too, to check they are cleaned up.
	var readers []*sseClient
	for i := 0; i < 20; i++ {
		c := s.sse("/api/realtime")
		s.subscribe(c, "", "posts").status(204)
		readers = append(readers, c)
	}
	// Far more than the kernel's socket buffers hold, so the stalled
	// client's queue must overflow.
	big := strings.Repeat("x", 100000)
	for i := 0; i < 300; i++ {
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "blob": big, "public": true}).status(200)
	}
	// The stalled client's queue overflowed; it was disconnected.
	gone := false
	for i := 0; i < 200 && !gone; i++ {
		r := s.do("POST", "/api/realtime", "", map[string]any{"clientId": clientID, "subscriptions": []string{"posts"}})
		gone = r.code == 404
		if !gone {
			time.Sleep(25 * time.Millisecond)
		}
	}
	if !gone {
		t.Fatalf("stalled client was not dropped")
	}
	raw.Close()
	for _, c := range readers {
		c.close()
	}
	after := 0
	for i := 0; i < 100; i++ {
		if after = settle(); after <= before+2 {
			break
		}
	}
	if after > before+2 {
		buf := make([]byte, 1<<16)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, after, buf[:n])
	}
}

func TestRealtimeResumeAndAuthChange(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		anaID, ana, _, _ := realtimeFixture(t, s)
		c := s.sse("/api/realtime")
		s.subscribe(c, ana, "posts").status(204)
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "one"}).status(200)
		last := c.next()
		c.close()
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "two"}).status(200)
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "three"}).status(200)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/realtime?clientId="+c.id, nil)
		req.Header.Set("Last-Event-ID", last.id)
		r := s.sseReq(req, cancel)
		if r.id != c.id {
			t.Fatalf("resume gave a new client")
		}
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "END"}).status(200)
		if got := strings.Join(r.until("END"), ","); got != "create:two,create:three" {
			t.Errorf("after resume: %s", got)
		}
		// Ana changes her password: the connection is no longer hers.
		s.do("PATCH", "/api/collections/users/records/"+anaID, ana, map[string]any{"password": "new-password-1", "oldPassword": "password123"}).status(200)
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "private after logout"}).status(200)
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "END", "public": true}).status(200)
		if got := r.until("END"); len(got) != 0 {
			t.Errorf("revoked session still receives private records: %v", got)
		}
	})
}

func TestRealtimeCrossNode(t *testing.T) {
	dbURL := postgresEngine().newDB(t)
	a := startServer(t, t.TempDir(), dbURL)
	a.app.UpsertSuperuser(t.Context(), suEmail, suPassword)
	a.su = a.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": suEmail, "password": suPassword}).status(200).str("token")
	b := startServer(t, t.TempDir(), dbURL)
	anaID, ana, _, _ := realtimeFixture(t, a)
	c := b.sse("/api/realtime")
	// The collection was created through a; b finds it on demand.
	b.subscribe(c, ana, "posts").status(204)
	big := strings.Repeat("y", 9000) // over the NOTIFY payload limit
	a.do("POST", "/api/collections/posts/records", a.su, map[string]any{"author": anaID, "text": "via a"}).status(200)
	a.do("POST", "/api/collections/posts/records", a.su, map[string]any{"author": anaID, "text": "big", "blob": big}).status(200)
	a.do("POST", "/api/collections/posts/records", a.su, map[string]any{"author": anaID, "text": "END"}).status(200)
	got := c.until("END")
	if len(got) != 2 || got[0] != "create:via a" || got[1] != "create:big" {
		t.Errorf("cross-node events: %d %.60v", len(got), got)
	}
}

// Revoking a user's tokens (log out everywhere) or ending one session
// reaches open realtime connections at once, on every node: they stop
// receiving the user's private records.
func TestRealtimeRevocation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		anaID, ana, _, _ := realtimeFixture(t, s)
		other := s // where the connections are; another node on PostgreSQL
		if s.dbURL != "" {
			other = startServer(t, t.TempDir(), s.dbURL)
			waitListening(t, s, other)
		}
		private := func(text string) {
			s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": text}).status(200)
		}
		end := func() {
			s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": anaID, "text": "END", "public": true}).status(200)
		}
		connect := func(tok string) *sseClient {
			c := other.sse("/api/realtime")
			other.subscribe(c, tok, "posts").status(204)
			return c
		}

		// One session ends: its connection becomes anonymous, the other
		// session's connection keeps its identity.
		second := s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123"}).status(200).str("token")
		first, kept := connect(ana), connect(second)
		private("before")
		end()
		if got := first.until("END"); strings.Join(got, ",") != "create:before" {
			t.Fatalf("before revocation: %v", got)
		}
		kept.until("END")
		sessions := s.do("GET", "/api/collections/users/sessions", second, nil).status(200).items()
		var sid string
		for _, ss := range sessions {
			if ss["current"] != true {
				sid, _ = ss["id"].(string)
			}
		}
		if sid == "" {
			t.Fatalf("sessions: %v", sessions)
		}
		s.do("DELETE", "/api/collections/users/sessions/"+sid, second, nil).status(204)
		private("after session end")
		end()
		if got := first.until("END"); len(got) != 0 {
			t.Errorf("ended session still receives private records: %v", got)
		}
		if got := kept.until("END"); strings.Join(got, ",") != "create:after session end" {
			t.Errorf("the other session: %v", got)
		}

		// Log out everywhere: no connection of the user keeps its identity.
		s.do("POST", "/api/collections/users/logout-all", second, nil).status(204)
		private("after logout-all")
		end()
		if got := kept.until("END"); len(got) != 0 {
			t.Errorf("logged-out connection still receives private records: %v", got)
		}
	})
}

// waitListening returns once events committed through from reach
// subscribers on to: a node starts listening for other nodes' events
// shortly after it starts, and events before that are not replayed yet
// (issue 12).
func waitListening(t *testing.T, from, to *server) {
	t.Helper()
	from.collection(map[string]any{"name": "pings", "listRule": "", "createRule": "", "fields": []any{map[string]any{"name": "n", "type": "number"}}})
	c := to.sse("/api/realtime")
	to.subscribe(c, "", "pings").status(204)
	for i := 0; i < 100; i++ {
		from.do("POST", "/api/collections/pings/records", "", map[string]any{"n": i}).status(200)
		select {
		case <-c.events:
			c.close()
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("the second node never received the first node's events")
}
