// Package tests drives real Plinth servers over HTTP. Every test runs once
// per database engine in engines(): the same assertions on SQLite and on
// PostgreSQL, never copied per engine.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/plinthhq/plinth"
)

// engine names a database a test server can run on.
type engine struct {
	name string
	// newDB returns the Config.DB value for a fresh, empty database, and a
	// cleanup; "" means embedded SQLite in the temp data dir.
	newDB func(t *testing.T) string
}

func sqliteEngine() engine {
	return engine{name: "sqlite", newDB: func(t *testing.T) string { return "" }}
}

// engines lists the engines to run against; see engines_pg_test.go.
var engineList = []engine{sqliteEngine()}

func forEachEngine(t *testing.T, fn func(t *testing.T, s *server)) {
	forEachEngineWith(t, nil, fn)
}

// forEachEngineWith is forEachEngine with an adjusted configuration.
func forEachEngineWith(t *testing.T, adjust func(*plinth.Config), fn func(t *testing.T, s *server)) {
	for _, e := range engineList {
		t.Run(e.name, func(t *testing.T) {
			fn(t, newServerWith(t, e, adjust))
		})
	}
}

// noRateLimits turns the authentication rate limits off, for tests that
// send many attempts on purpose.
func noRateLimits(c *plinth.Config) { c.AuthRatePerIP, c.AuthRatePerAccount = -1, -1 }

// server is a running Plinth behind a real TCP listener.
type server struct {
	t       *testing.T
	url     string
	app     *plinth.App
	dataDir string
	dbURL   string
	su      string // superuser token
}

const suEmail, suPassword = "root@example.com", "superuser-pass-1"

func newServer(t *testing.T, e engine) *server {
	t.Helper()
	return newServerWith(t, e, nil)
}

func newServerWith(t *testing.T, e engine, adjust func(*plinth.Config)) *server {
	t.Helper()
	dir := t.TempDir()
	dbURL := e.newDB(t)
	s := startServerWith(t, dir, dbURL, adjust)
	if err := s.app.UpsertSuperuser(context.Background(), suEmail, suPassword); err != nil {
		t.Fatalf("upsert superuser: %v", err)
	}
	res := s.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": suEmail, "password": suPassword})
	res.status(200)
	s.su = res.str("token")
	return s
}

func startServer(t *testing.T, dir, dbURL string) *server {
	t.Helper()
	return startServerWith(t, dir, dbURL, nil)
}

// startServerWith lets a test adjust the configuration (storage, say).
func startServerWith(t *testing.T, dir, dbURL string, adjust func(*plinth.Config)) *server {
	t.Helper()
	var logOut io.Writer = io.Discard
	if os.Getenv("PLINTH_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	cfg := plinth.Config{
		DataDir: dir, DB: dbURL,
		Logger:          slog.New(slog.NewTextHandler(logOut, nil)),
		PasswordHashing: plinth.HashParams{MemoryKiB: 512, Iterations: 1},
		MaxBodyBytes:    1 << 20,
		// Most tests define their own users; TestDefaultUsersCollection
		// covers the one a new database starts with.
		NoUsersCollection: true,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	app, err := plinth.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start plinth: %v", err)
	}
	ts := httptest.NewServer(app.Handler())
	t.Cleanup(func() {
		// Closing the app first ends realtime streams, which the test
		// server would otherwise wait for.
		app.Close()
		ts.Close()
	})
	return &server{t: t, url: ts.URL, app: app, dataDir: dir, dbURL: dbURL}
}

// response is a decoded HTTP answer.
type response struct {
	t    *testing.T
	code int
	raw  []byte
	body map[string]any
	req  string
	hdr  http.Header
}

func (s *server) do(method, path, token string, body any) *response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		case []byte:
			rd = bytes.NewReader(b)
		default:
			j, err := json.Marshal(b)
			if err != nil {
				s.t.Fatal(err)
			}
			rd = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := &response{t: s.t, code: resp.StatusCode, raw: raw, req: method + " " + path, hdr: resp.Header}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			s.t.Fatalf("%s: invalid JSON %q", r.req, raw)
		}
	}
	if resp.StatusCode >= 500 {
		s.t.Errorf("%s: server error %d: %s", r.req, resp.StatusCode, raw)
	}
	return r
}

func (r *response) status(want int) *response {
	r.t.Helper()
	if r.code != want {
		r.t.Fatalf("%s: status %d, want %d; body %s", r.req, r.code, want, r.raw)
	}
	return r
}

func (r *response) str(key string) string {
	r.t.Helper()
	v, _ := r.body[key].(string)
	return v
}

// fieldErr returns the error code reported for field in data.
func (r *response) fieldErr(field string) string {
	d, _ := r.body["data"].(map[string]any)
	e, _ := d[field].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r *response) items() []map[string]any {
	r.t.Helper()
	raw, ok := r.body["items"].([]any)
	if !ok {
		r.t.Fatalf("%s: no items in %s", r.req, r.raw)
	}
	out := make([]map[string]any, len(raw))
	for i, it := range raw {
		out[i] = it.(map[string]any)
	}
	return out
}

func (r *response) ids() []string {
	var out []string
	for _, it := range r.items() {
		out = append(out, it["id"].(string))
	}
	return out
}

// collection creates a collection as superuser and fails the test on error.
func (s *server) collection(def map[string]any) map[string]any {
	s.t.Helper()
	return s.do("POST", "/api/collections", s.su, def).status(200).body
}

// user creates an auth record in users and logs in, returning id and token.
func (s *server) user(coll, email string, extra map[string]any) (string, string) {
	s.t.Helper()
	body := map[string]any{"email": email, "password": "password123"}
	for k, v := range extra {
		body[k] = v
	}
	rec := s.do("POST", "/api/collections/"+coll+"/records", "", body)
	if rec.code != 200 {
		rec = s.do("POST", "/api/collections/"+coll+"/records", s.su, body)
	}
	rec.status(200)
	tok := s.do("POST", "/api/collections/"+coll+"/auth-with-password", "", map[string]any{"identity": email, "password": "password123"}).status(200)
	return rec.str("id"), tok.str("token")
}

// try sends a JSON request without the test helpers' fatal checks, so it
// can run in other goroutines; it returns the status and the body.
func (s *server) try(method, path, token string, body any) (int, map[string]any, error) {
	j, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(j))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

// q escapes a query parameter value.
func q(s string) string { return url.QueryEscape(s) }
