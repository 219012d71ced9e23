package tests

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// mailbox keeps what an smtpSink received per recipient, so the SDK
// suite (another process) can read the tokens mailed to its users.
type mailbox struct {
	mu   sync.Mutex
	cond *sync.Cond
	by   map[string][]string
}

func newMailbox(sink *smtpSink) *mailbox {
	m := &mailbox{by: map[string][]string{}}
	m.cond = sync.NewCond(&m.mu)
	go func() {
		for msg := range sink.got {
			m.mu.Lock()
			m.by[msg.to] = append(m.by[msg.to], msg.text)
			m.cond.Broadcast()
			m.mu.Unlock()
		}
	}()
	return m
}

// ServeHTTP answers GET /?to=ADDRESS with the oldest unread mail to that
// address (its text part), waiting up to 10 s; 404 if none arrives.
func (m *mailbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	deadline := time.Now().Add(10 * time.Second)
	wake := time.AfterFunc(10*time.Second, func() { m.mu.Lock(); m.cond.Broadcast(); m.mu.Unlock() })
	defer wake.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.by[to]) == 0 {
		if time.Now().After(deadline) {
			http.Error(w, "no mail to "+to, http.StatusNotFound)
			return
		}
		m.cond.Wait()
	}
	text := m.by[to][0]
	m.by[to] = m.by[to][1:]
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(text))
}

// sdkFixture creates the collections the SDK suite uses: an auth
// collection users (sign-up open, a user sees and edits itself), posts
// (everyone reads published posts, authors manage their own) with a
// relation, number, bool, json and file field, and a mail server.
func sdkFixture(t *testing.T, s *server) string {
	sink, addr := startSMTP(t)
	host, port, _ := net.SplitHostPort(addr)
	s.do("PATCH", "/api/settings", s.su, map[string]any{"appURL": "https://app.example.com",
		"smtp":   map[string]any{"host": host, "port": atoi(port), "tls": "none"},
		"sender": map[string]any{"name": "Plinth", "address": "no-reply@example.com"}}).status(200)
	s.collection(map[string]any{"name": "users", "type": "auth",
		"listRule": "id = @request.auth.id", "viewRule": "", "createRule": "",
		"updateRule": "id = @request.auth.id", "deleteRule": "id = @request.auth.id",
		"fields": []any{map[string]any{"name": "name", "type": "text"}}})
	s.collection(map[string]any{"name": "posts",
		"listRule":   "published = true || author = @request.auth.id",
		"viewRule":   "published = true || author = @request.auth.id",
		"createRule": "@request.auth.id != '' && author = @request.auth.id",
		"updateRule": "author = @request.auth.id", "deleteRule": "author = @request.auth.id",
		"fields": []any{
			map[string]any{"name": "author", "type": "relation", "collectionId": "users"},
			map[string]any{"name": "title", "type": "text", "required": true, "max": 100},
			map[string]any{"name": "views", "type": "number"},
			map[string]any{"name": "published", "type": "bool"},
			map[string]any{"name": "meta", "type": "json"},
			map[string]any{"name": "image", "type": "file", "maxSize": 1 << 20, "thumbs": []string{"20x20"}},
		}})
	mail := httptest.NewServer(newMailbox(sink))
	t.Cleanup(mail.Close)
	return mail.URL
}

// TestPocketBaseSDK runs tests/sdk — the official PocketBase JavaScript
// SDK from npm, under Node's test runner — against a real Plinth on every
// engine. Every SDK call an application makes is one test there; any
// failing one fails this test with the runner's report.
func TestPocketBaseSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the PocketBase SDK suite (tests/sdk) needs Node.js 20+ and npm")
	}
	dir, err := filepath.Abs("sdk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pocketbase")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatal("node_modules missing in tests/sdk and npm is not installed")
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	forEachEngine(t, func(t *testing.T, s *server) {
		mailURL := sdkFixture(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// One file at a time: the files share the server and its mailbox.
		cmd := exec.CommandContext(ctx, node, "--test", "--test-concurrency=1", "--test-reporter=spec")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"PLINTH_URL="+s.url,
			"PLINTH_SU_EMAIL="+suEmail, "PLINTH_SU_PASSWORD="+suPassword,
			"PLINTH_MAIL_URL="+mailURL,
			"NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("SDK suite failed (%v):\n%s", err, out)
		}
		t.Logf("SDK suite:\n%s", out)
	})
}
