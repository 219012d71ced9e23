package tests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthhq/plinth"
)

// receiver is a real HTTP endpoint that records what it accepts and can
// be told to fail or hang.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	got      []map[string]any // accepted bodies, in order
	attempts int
	failNext int            // answer 500 to this many requests
	hangNext int            // hang (past the client timeout) on this many
	down     bool           // answer 503 to everything
	eventIDs map[string]int // Plinth-Event-Id -> accepted count
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, eventIDs: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.attempts++
	switch {
	case r.down:
		r.mu.Unlock()
		w.WriteHeader(503)
		return
	case r.hangNext > 0:
		r.hangNext--
		r.mu.Unlock()
		select {
		case <-req.Context().Done():
		case <-time.After(3 * time.Second):
		}
		return
	case r.failNext > 0:
		r.failNext--
		r.mu.Unlock()
		http.Error(w, "receiver broken", 500)
		return
	}
	defer r.mu.Unlock()
	// Verify the signature: t=<ts>,v1=<hex hmac(secret, ts.body)>.
	sig := req.Header.Get("Plinth-Signature")
	var ts, v1 string
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	m := hmac.New(sha256.New, []byte(r.secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	if r.secret == "" || !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(v1)) {
		r.t.Errorf("bad signature %q", sig)
		w.WriteHeader(400)
		return
	}
	var ev map[string]any
	json.Unmarshal(body, &ev)
	if req.Header.Get("Plinth-Event-Id") != ev["id"] {
		r.t.Errorf("idempotency key %q, event id %v", req.Header.Get("Plinth-Event-Id"), ev["id"])
	}
	r.eventIDs[req.Header.Get("Plinth-Event-Id")]++
	r.got = append(r.got, ev)
	w.WriteHeader(204)
}

// texts lists "action:text" of the accepted events.
func (r *receiver) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.got))
	for i, ev := range r.got {
		rec, _ := ev["record"].(map[string]any)
		out[i] = fmt.Sprint(ev["action"], ":", rec["text"])
	}
	return out
}

func (r *receiver) waitFor(n int) []string {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.texts(); len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("receiver got %d of %d events: %v", len(r.texts()), n, r.texts())
	return nil
}

func fastWebhooks(c *plinth.Config) {
	c.Webhooks.AllowPrivate = true // the receiver is on 127.0.0.1
	c.Webhooks.RetryBase = 20 * time.Millisecond
	c.Webhooks.Timeout = 300 * time.Millisecond
	c.Webhooks.LeaseTTL = time.Second
	c.ChangesPoll = 50 * time.Millisecond
}

func webhookFixture(s *server) {
	s.collection(map[string]any{"name": "posts", "listRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
		"fields": []any{map[string]any{"name": "text", "type": "text"}, map[string]any{"name": "views", "type": "number"}, map[string]any{"name": "secret", "type": "text", "hidden": true}}})
	s.collection(map[string]any{"name": "other", "createRule": "", "fields": []any{map[string]any{"name": "text", "type": "text"}}})
}

func TestWebhookRegistration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		webhookFixture(s)
		_, user := s.user2()
		ok := map[string]any{"url": "https://hooks.example.com/in", "collections": []string{"posts"}}
		s.do("POST", "/api/webhooks", "", ok).status(403)
		s.do("POST", "/api/webhooks", user, ok).status(403)
		s.do("GET", "/api/webhooks", user, nil).status(403)
		for name, body := range map[string]map[string]any{
			"url":          {"url": "ftp://x.example.com", "collections": []string{"posts"}},
			"url ":         {"url": "https://user:pw@x.example.com", "collections": []string{"posts"}},
			"url  ":        {"url": "http://127.0.0.1:9/x", "collections": []string{"posts"}},
			"url   ":       {"url": "http://169.254.169.254/latest/meta-data", "collections": []string{"posts"}},
			"url    ":      {"url": "http://[::1]/x", "collections": []string{"posts"}},
			"url     ":     {"url": "http://localhost/x", "collections": []string{"posts"}},
			"collections":  {"url": "https://x.example.com", "collections": []string{"nope"}},
			"collections ": {"url": "https://x.example.com", "collections": []string{}},
			"actions":      {"url": "https://x.example.com", "collections": []string{"posts"}, "actions": []string{"view"}},
			"filter":       {"url": "https://x.example.com", "collections": []string{"posts"}, "filter": "nosuchfield = 1"},
			"filter ":      {"url": "https://x.example.com", "collections": []string{"posts"}, "filter": "views >"},
			"secret":       {"url": "https://x.example.com", "collections": []string{"posts"}, "secret": "short"},
		} {
			r := s.do("POST", "/api/webhooks", s.su, body).status(400)
			if r.fieldErr(strings.TrimSpace(name)) == "" {
				t.Errorf("%s: no error on the field: %s", name, r.raw)
			}
		}
		s.do("POST", "/api/webhooks", s.su, map[string]any{"url": "https://x.example.com", "collections": []string{"posts"}, "colections": []string{"x"}}).status(400)
		created := s.do("POST", "/api/webhooks", s.su, ok).status(200)
		id := created.str("id")
		if !strings.HasPrefix(created.str("secret"), "whsec_") {
			t.Fatalf("a generated secret is shown once at creation: %s", created.raw)
		}
		if v := s.do("GET", "/api/webhooks/"+id, s.su, nil).status(200); v.str("secret") != "" || v.str("url") != ok["url"] {
			t.Errorf("view: %s", v.raw)
		}
		for i := range 3 {
			s.do("POST", "/api/webhooks", s.su, map[string]any{"url": fmt.Sprintf("https://x%d.example.com", i), "collections": []string{"*"}}).status(200)
		}
		page := s.do("GET", "/api/webhooks?perPage=3&page=2", s.su, nil).status(200)
		if page.body["totalItems"] != float64(4) || len(page.items()) != 1 || page.items()[0]["secret"] != nil {
			t.Errorf("list: %s", page.raw)
		}
		s.do("PATCH", "/api/webhooks/"+id, s.su, map[string]any{"enabled": false, "actions": []string{"delete"}}).status(200)
		if v := s.do("GET", "/api/webhooks/"+id, s.su, nil).status(200); v.body["enabled"] != false {
			t.Errorf("patch: %s", v.raw)
		}
		s.do("PATCH", "/api/webhooks/"+id, s.su, map[string]any{"url": "http://10.0.0.1/"}).status(400)
		s.do("DELETE", "/api/webhooks/"+id, s.su, nil).status(204)
		s.do("GET", "/api/webhooks/"+id, s.su, nil).status(404)
		s.do("GET", "/api/webhooks/"+id+"/deliveries", s.su, nil).status(404)
	})
}

// user2 makes an ordinary signed-in user (not a superuser).
func (s *server) user2() (string, string) {
	if s.do("GET", "/api/collections/members", s.su, nil).code == 404 {
		s.collection(map[string]any{"name": "members", "type": "auth", "createRule": ""})
	}
	return s.user("members", "member@example.com", nil)
}

// Deliveries reach a receiver that fails, times out and recovers: every
// matching change arrives, once, in commit order, signed, with the
// change id as idempotency key; the delivery log shows the attempts.
func TestWebhookDeliveryRetriesInOrder(t *testing.T) {
	forEachEngineWith(t, fastWebhooks, func(t *testing.T, s *server) {
		webhookFixture(s)
		rcv := newReceiver(t)
		rcv.failNext, rcv.hangNext = 3, 1
		created := s.do("POST", "/api/webhooks", s.su, map[string]any{"url": rcv.srv.URL + "/in", "collections": []string{"posts"},
			"actions": []string{"create", "update", "delete"}, "filter": "views >= 10"}).status(200)
		rcv.mu.Lock()
		rcv.secret = created.str("secret")
		rcv.mu.Unlock()
		var want []string
		for i := range 10 {
			views := []int{5, 10, 20}[i%3]
			id := s.do("POST", "/api/collections/posts/records", "", map[string]any{"text": fmt.Sprint("p", i), "views": views, "secret": "hidden"}).status(200).str("id")
			if views >= 10 {
				want = append(want, fmt.Sprint("create:p", i))
			}
			if i == 4 {
				s.do("PATCH", "/api/collections/posts/records/"+id, s.su, map[string]any{"text": "p4 edited"}).status(200)
				s.do("DELETE", "/api/collections/posts/records/"+id, s.su, nil).status(204)
				want = append(want, "update:p4 edited", "delete:p4 edited")
			}
		}
		s.do("POST", "/api/collections/other/records", "", map[string]any{"text": "not watched"}).status(200)
		rcv.waitFor(len(want))
		time.Sleep(200 * time.Millisecond) // nothing more arrives
		got := rcv.texts()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("delivered:\n %v\nwant\n %v", got, want)
		}
		rcv.mu.Lock()
		for id, n := range rcv.eventIDs {
			if n != 1 {
				t.Errorf("event %s accepted %d times", id, n)
			}
		}
		if rec := rcv.got[0]["record"].(map[string]any); rec["secret"] != "hidden" || rec["collectionName"] != "posts" {
			t.Errorf("payload record: %v", rec)
		}
		rcv.mu.Unlock()
		log := s.do("GET", "/api/webhooks/"+created.str("id")+"/deliveries?perPage=100", s.su, nil).status(200)
		items := log.items()
		if len(items) != len(want) {
			t.Fatalf("delivery log: %s", log.raw)
		}
		oldest := items[len(items)-1] // newest first
		if oldest["status"] != "delivered" || oldest["attempts"].(float64) != 5 || oldest["lastError"] != "" {
			t.Errorf("the first delivery took 3 failures and a timeout: %v", oldest)
		}
		s.do("GET", "/api/webhooks/"+created.str("id")+"/deliveries?status=bogus", s.su, nil).status(400)
	})
}

// Deliveries pending while the node stops are sent by the next node to
// run (a restart here; on PostgreSQL another node takes over the lease
// from one that stopped), and a change is given up after RetryFor.
func TestWebhookSurvivesRestart(t *testing.T) {
	forEachEngineWith(t, fastWebhooks, func(t *testing.T, s *server) {
		webhookFixture(s)
		rcv := newReceiver(t)
		rcv.down = true
		created := s.do("POST", "/api/webhooks", s.su, map[string]any{"url": rcv.srv.URL, "collections": []string{"posts"}}).status(200)
		rcv.secret = created.str("secret")
		for i := range 5 {
			s.do("POST", "/api/collections/posts/records", "", map[string]any{"text": fmt.Sprint(i)}).status(200)
		}
		pollUntil(t, "attempts while the receiver is down", func() bool {
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			return rcv.attempts >= 2
		})
		s.app.Close()
		rcv.mu.Lock()
		rcv.down = false
		rcv.mu.Unlock()
		startServerWith(t, s.dataDir, s.dbURL, fastWebhooks)
		if got := rcv.waitFor(5); strings.Join(got, ",") != "create:0,create:1,create:2,create:3,create:4" {
			t.Fatalf("after restart: %v", got)
		}
	})
}

// A host name is checked where it is dialled: the machine's own name
// (resolving to a loopback address) passes the registration check, but
// no connection is made to it.
func TestWebhookRefusesPrivateAddressesWhenDialling(t *testing.T) {
	forEachEngineWith(t, func(c *plinth.Config) { fastWebhooks(c); c.Webhooks.AllowPrivate = false }, func(t *testing.T, s *server) {
		webhookFixture(s)
		rcv := newReceiver(t)
		port := rcv.srv.URL[strings.LastIndex(rcv.srv.URL, ":")+1:]
		host, _ := os.Hostname()
		addrs, _ := net.LookupHost(host)
		if len(addrs) == 0 || !strings.HasPrefix(addrs[0], "127.") {
			t.Skipf("this machine's name %q does not resolve to a loopback address (%v)", host, addrs)
		}
		created := s.do("POST", "/api/webhooks", s.su, map[string]any{"url": "http://" + host + ":" + port + "/", "collections": []string{"posts"}}).status(200)
		s.do("POST", "/api/collections/posts/records", "", map[string]any{"text": "x"}).status(200)
		var last map[string]any
		pollUntil(t, "a refused attempt in the delivery log", func() bool {
			items := s.do("GET", "/api/webhooks/"+created.str("id")+"/deliveries", s.su, nil).status(200).items()
			if len(items) == 1 && items[0]["attempts"].(float64) >= 1 {
				last = items[0]
				return true
			}
			return false
		})
		if !strings.Contains(last["lastError"].(string), "refused") || last["status"] != "pending" {
			t.Errorf("delivery: %v", last)
		}
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if rcv.attempts != 0 {
			t.Errorf("the receiver on loopback was reached %d times", rcv.attempts)
		}
	})
}

// Several nodes: each change is delivered once and in order, and when
// the delivering node stops another takes over.
func TestWebhookAcrossNodes(t *testing.T) {
	a := newServerWith(t, postgresEngine(), fastWebhooks)
	dbURL := a.dbURL
	b := startServerWith(t, t.TempDir(), dbURL, fastWebhooks)
	webhookFixture(a)
	rcv := newReceiver(t)
	created := a.do("POST", "/api/webhooks", a.su, map[string]any{"url": rcv.srv.URL, "collections": []string{"posts"}, "actions": []string{"create"}}).status(200)
	rcv.secret = created.str("secret")
	var want []string
	for i := range 40 {
		node := []*server{a, b}[i%2]
		if i > 19 {
			node = b
		}
		node.do("POST", "/api/collections/posts/records", "", map[string]any{"text": fmt.Sprint(i)}).status(200)
		want = append(want, fmt.Sprint("create:", i))
		if i == 19 {
			rcv.waitFor(20)
			a.app.Close() // whichever node delivered, one remains
		}
	}
	rcv.waitFor(40)
	time.Sleep(300 * time.Millisecond)
	if got := rcv.texts(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("across nodes:\n %v", got)
	}
}
