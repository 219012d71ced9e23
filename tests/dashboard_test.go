package tests

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthhq/plinth"
)

// get sends a plain GET without following redirects.
func (s *server) get(t *testing.T, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func TestDashboardServing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		if r := s.get(t, "/_", nil); r.StatusCode != 301 || r.Header.Get("Location") != "/_/" {
			t.Fatalf("/_: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		idx := s.get(t, "/_/", nil)
		body := readAll(t, idx)
		if idx.StatusCode != 200 || !strings.Contains(idx.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("/_/: %d %s", idx.StatusCode, idx.Header.Get("Content-Type"))
		}
		for k, want := range map[string]string{"Content-Security-Policy": wantCSP, "X-Frame-Options": "DENY", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"} {
			if got := idx.Header.Get(k); got != want {
				t.Errorf("index %s = %q, want %q", k, got, want)
			}
		}
		etag := idx.Header.Get("ETag")
		if etag == "" {
			t.Fatal("index has no ETag")
		}
		if r := s.get(t, "/_/", map[string]string{"If-None-Match": etag}); r.StatusCode != 304 {
			t.Errorf("revalidation: %d, want 304", r.StatusCode)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "<style") || strings.Contains(body, " style=") {
			t.Errorf("index has inline script or style: %s", body)
		}
		// Every asset the index names is served, long-cached, under the CSP.
		assets := regexp.MustCompile(`(?:src|href)="(?:\./|/_/)(assets/[^"]+)"`).FindAllStringSubmatch(body, -1)
		if len(assets) == 0 {
			t.Fatalf("index names no assets: %s", body)
		}
		for _, a := range assets {
			r := s.get(t, "/_/"+a[1], nil)
			if r.StatusCode != 200 || r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || r.Header.Get("Content-Security-Policy") != wantCSP {
				t.Errorf("%s: %d cache %q", a[1], r.StatusCode, r.Header.Get("Cache-Control"))
			}
		}
		for _, p := range []string{"/_/nope.js", "/_/assets/../../go.mod", "/_/%2e%2e/plinth.go"} {
			if r := s.get(t, p, nil); r.StatusCode != 404 && r.StatusCode/100 != 3 {
				t.Errorf("%s: %d, want 404", p, r.StatusCode)
			}
		}
		if r := s.get(t, "/_/nope.js", nil); r.Header.Get("Content-Security-Policy") != wantCSP {
			t.Errorf("404 without CSP")
		}
	})
}

func readAll(t *testing.T, r *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestSuperuserInstall(t *testing.T) {
	for _, e := range engineList {
		t.Run(e.name, func(t *testing.T) {
			s := startServer(t, t.TempDir(), e.newDB(t))
			ctx := context.Background()
			tok, err := s.app.InstallToken(ctx)
			if err != nil || len(tok) != 64 {
				t.Fatalf("install token %q: %v", tok, err)
			}
			install := func(tok, email, pw string) *response {
				return s.do("POST", "/api/superusers/install", "", map[string]any{"token": tok, "email": email, "password": pw})
			}
			cases := []struct {
				name, tok, email, pw string
				field, code          string
			}{
				{"wrong token", strings.Repeat("0", 64), "admin@example.com", "a-long-password", "token", "validation_invalid_token"},
				{"short token", tok[:10], "admin@example.com", "a-long-password", "token", "validation_invalid_token"},
				{"no token", "", "admin@example.com", "a-long-password", "token", "validation_invalid_token"},
				{"bad email", tok, "not-an-email", "a-long-password", "email", "validation_invalid_email"},
			}
			for _, c := range cases {
				if got := install(c.tok, c.email, c.pw).status(400).fieldErr(c.field); got != c.code {
					t.Errorf("%s: %s code %q, want %q", c.name, c.field, got, c.code)
				}
			}
			install(tok, "admin@example.com", "short").status(400) // the password rules apply; the token survives
			install(tok, "admin@example.com", "a-long-password").status(204)
			s.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": "admin@example.com", "password": "a-long-password"}).status(200)
			// Single use, and no new token once a superuser exists.
			if got := install(tok, "evil@example.com", "a-long-password").status(400).fieldErr("token"); got != "validation_invalid_token" {
				t.Errorf("replay: %q", got)
			}
			if again, err := s.app.InstallToken(ctx); err != nil || again != "" {
				t.Errorf("token issued with a superuser present: %q %v", again, err)
			}
			s.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": "evil@example.com", "password": "a-long-password"}).status(400)
		})
	}
}

func TestSuperuserInstallRefusedOnceInstalled(t *testing.T) {
	for _, e := range engineList {
		t.Run(e.name, func(t *testing.T) {
			s := startServer(t, t.TempDir(), e.newDB(t))
			tok, err := s.app.InstallToken(context.Background())
			if err != nil || tok == "" {
				t.Fatal(err)
			}
			// Someone creates a superuser another way while the link is live.
			if err := s.app.UpsertSuperuser(context.Background(), suEmail, suPassword); err != nil {
				t.Fatal(err)
			}
			r := s.do("POST", "/api/superusers/install", "", map[string]any{"token": tok, "email": "late@example.com", "password": "a-long-password"}).status(400)
			if r.fieldErr("token") != "validation_already_installed" {
				t.Errorf("install after a superuser exists: %s", r.raw)
			}
		})
	}
}

func TestCollectionValidate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		_, userTok := func() (string, string) {
			s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
			return s.user("users", "ana@example.com", nil)
		}()
		posts := map[string]any{"name": "posts", "listRule": "title != ''", "fields": []any{
			map[string]any{"name": "title", "type": "text"}, map[string]any{"name": "author", "type": "relation", "collectionId": "users"}}}
		cases := []struct {
			name  string
			def   map[string]any
			field string // "" = valid
			code  string
		}{
			{"valid", posts, "", ""},
			{"unknown field in rule", map[string]any{"name": "p2", "listRule": "nope = 1", "fields": []any{map[string]any{"name": "title", "type": "text"}}}, "listRule", "validation_invalid_rule"},
			{"syntax error in rule", map[string]any{"name": "p3", "viewRule": "title = ", "fields": []any{map[string]any{"name": "title", "type": "text"}}}, "viewRule", "validation_invalid_rule"},
			{"request auth path", map[string]any{"name": "p4", "createRule": "@request.auth.id != '' && @collection.missing.id != ''"}, "createRule", "validation_invalid_rule"},
			{"bad field option", map[string]any{"name": "p5", "fields": []any{map[string]any{"name": "n", "type": "number", "min": 5, "max": 1}}}, "", "400"},
			{"name taken", map[string]any{"name": "users"}, "name", "validation_collection_name_exists"},
		}
		for _, c := range cases {
			func() {
				v := s.do("POST", "/api/collections/validate", s.su, c.def)
				if c.field == "" && c.code == "" {
					v.status(200)
					return
				}
				v.status(400)
				// The same answer as a real create.
				real := s.do("POST", "/api/collections", s.su, c.def).status(400)
				if string(v.raw) != string(real.raw) {
					t.Errorf("%s: validate %s\ncreate   %s", c.name, v.raw, real.raw)
				}
				if c.field != "" && v.fieldErr(c.field) != c.code {
					t.Errorf("%s: %s: %s", c.name, c.field, v.raw)
				}
			}()
		}
		// Nothing was stored.
		s.do("GET", "/api/collections/posts", s.su, nil).status(404)
		s.do("POST", "/api/collections/validate", userTok, posts).status(403)
		s.do("POST", "/api/collections/validate", "", posts).status(403)

		// With the id of an existing collection it checks an update.
		created := s.collection(posts)
		upd := map[string]any{"id": created["id"], "listRule": "missing = 1"}
		v := s.do("POST", "/api/collections/validate", s.su, upd).status(400)
		if v.fieldErr("listRule") != "validation_invalid_rule" {
			t.Errorf("update: %s", v.raw)
		}
		s.do("POST", "/api/collections/validate", s.su, map[string]any{"id": created["id"], "listRule": "title = 'x'"}).status(200)
		if got := s.do("GET", "/api/collections/posts", s.su, nil).status(200).str("listRule"); got != "title != ''" {
			t.Errorf("validation changed the rule: %q", got)
		}
		// A view answers with its inferred fields, and is not created.
		view := s.do("POST", "/api/collections/validate", s.su, map[string]any{"name": "titles", "type": "view", "viewQuery": "SELECT id, title FROM posts"}).status(200)
		if !strings.Contains(string(view.raw), `"title"`) {
			t.Errorf("view fields not inferred: %s", view.raw)
		}
		s.do("GET", "/api/collections/titles", s.su, nil).status(404)
		s.do("POST", "/api/collections", s.su, map[string]any{"name": "titles", "type": "view", "viewQuery": "SELECT id, title FROM posts"}).status(200)
	})
}

func TestSettingsTestEmail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		_, userTok := s.user("users", "ana@example.com", nil)
		body := map[string]any{"to": "ops@example.com"}
		if r := s.do("POST", "/api/settings/test/email", s.su, body).status(400); !strings.Contains(r.str("message"), "not configured") {
			t.Errorf("unconfigured: %s", r.raw)
		}
		sink, addr := startSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"appName": "Acme",
			"smtp": map[string]any{"host": host, "port": atoi(port), "tls": "none"}}).status(200)
		s.do("POST", "/api/settings/test/email", userTok, body).status(403)
		s.do("POST", "/api/settings/test/email", "", body).status(403)
		for _, bad := range []map[string]any{{"to": "nope"}, {"to": ""}, {"to": "Ops <ops@example.com>"}, {"to": "ops@example.com", "template": "nope"}} {
			s.do("POST", "/api/settings/test/email", s.su, bad).status(400)
		}
		s.do("POST", "/api/settings/test/email", s.su, body).status(204)
		select {
		case m := <-sink.got:
			if m.to != "ops@example.com" || !strings.Contains(m.text, "/_/#/auth/confirm-verification/test-token") {
				t.Errorf("test mail to %s: %q", m.to, m.text)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no test mail")
		}
		s.do("POST", "/api/settings/test/email", s.su, map[string]any{"to": "ops@example.com", "template": "otp"}).status(204)
		select {
		case m := <-sink.got:
			if !strings.Contains(m.text, "123456") {
				t.Errorf("otp test mail: %q", m.text)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no otp test mail")
		}
		// A server that refuses: the reason comes back as a 400.
		sink.failing.Store(true)
		if r := s.do("POST", "/api/settings/test/email", s.su, body).status(400); r.fieldErr("smtp") != "smtp_failed" {
			t.Errorf("refused: %s", r.raw)
		}
	})
}

func TestEmailLinksPointToDashboard(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		sink, addr := startSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		s.user("users", "ana@example.com", nil)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"smtp": map[string]any{"host": host, "port": atoi(port), "tls": "none"}}).status(200)
		// No appURL set: links point at the address this node serves.
		served := s.app.ServedURL()
		if !strings.HasPrefix(served, "http://") {
			t.Fatalf("served URL %q", served)
		}
		s.do("POST", "/api/collections/users/request-verification", "", map[string]any{"email": "ana@example.com"}).status(204)
		got := sink.match(t, "ana@example.com", regexp.MustCompile(`(`+regexp.QuoteMeta(served)+`/_/#/auth/confirm-verification/\S+)`))
		tok := got[strings.LastIndex(got, "/")+1:]
		s.do("POST", "/api/collections/users/confirm-verification", "", map[string]any{"token": tok}).status(204)

		// appURL set: links use it.
		s.do("PATCH", "/api/settings", s.su, map[string]any{"appURL": "https://app.example.com/"}).status(200)
		s.do("POST", "/api/collections/users/request-password-reset", "", map[string]any{"email": "ana@example.com"}).status(204)
		sink.match(t, "ana@example.com", regexp.MustCompile(`(https://app\.example\.com/_/#/auth/confirm-password-reset/[A-Za-z0-9_\-.]+)`))

		// authLinkURL overrides the target for apps with their own pages.
		s.do("PATCH", "/api/settings", s.su, map[string]any{"authLinkURL": "https://my.example.com/{action}?c={collection}&t={token}"}).status(200)
		s.do("POST", "/api/collections/users/request-password-reset", "", map[string]any{"email": "ana@example.com"}).status(204)
		sink.match(t, "ana@example.com", regexp.MustCompile(`(https://my\.example\.com/confirm-password-reset\?c=users&t=[A-Za-z0-9_\-.]+)`))
		for _, bad := range []string{"https://my.example.com/no-token", "javascript:alert(1)//{token}", "/relative/{token}"} {
			s.do("PATCH", "/api/settings", s.su, map[string]any{"authLinkURL": bad}).status(400)
		}
	})
}

// A refused schema change leaves the live schema as it was: decoding the
// patch must not write through into the collection every request reads.
func TestRefusedPatchLeavesRulesUnchanged(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "secrets", "listRule": nil, "fields": []any{map[string]any{"name": "title", "type": "text"}}})
		s.do("POST", "/api/collections/secrets/records", s.su, map[string]any{"title": "hidden"}).status(200)
		// A public rule next to an invalid field: the whole change is refused.
		s.do("PATCH", "/api/collections/secrets", s.su, map[string]any{"listRule": "", "fields": []any{map[string]any{"name": "title", "type": "text"}, map[string]any{"name": "n", "type": "number", "min": 5, "max": 1}}}).status(400)
		s.do("PATCH", "/api/collections/secrets", s.su, map[string]any{"viewRule": "nope = 1"}).status(400)
		got := s.do("GET", "/api/collections/secrets", s.su, nil).status(200)
		if got.body["listRule"] != nil || got.body["viewRule"] != nil {
			t.Errorf("refused change took effect: %s", got.raw)
		}
		s.do("GET", "/api/collections/secrets/records", "", nil).status(403) // still superusers only
	})
}

// syncBuf is a log sink the server writes while the test reads.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Serving with no superuser logs a one-time install link on the address
// actually served; the link creates the first superuser once.
func TestServePrintsInstallLink(t *testing.T) {
	for _, e := range engineList {
		t.Run(e.name, func(t *testing.T) {
			logs := &syncBuf{}
			app, err := plinth.New(context.Background(), plinth.Config{DataDir: t.TempDir(), DB: e.newDB(t),
				Logger:          slog.New(slog.NewTextHandler(logs, nil)),
				PasswordHashing: plinth.HashParams{MemoryKiB: 512, Iterations: 1}})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- app.ServeListener(ctx, ln) }()
			t.Cleanup(func() { cancel(); <-done; app.Close() })
			base := "http://" + ln.Addr().String()
			re := regexp.MustCompile(`url=` + regexp.QuoteMeta(base) + `/_/#/install/([0-9a-f]{64})`)
			var m []string
			for i := 0; i < 1000 && m == nil; i++ {
				m = re.FindStringSubmatch(logs.String())
				if m == nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if m == nil {
				t.Fatalf("no install link for %s in the log:\n%s", base, logs.String())
			}
			if app.ServedURL() != base {
				t.Errorf("served URL %q, want %q", app.ServedURL(), base)
			}
			s := &server{t: t, url: base, app: app}
			s.do("POST", "/api/superusers/install", "", map[string]any{"token": m[1], "email": "first@example.com", "password": "a-long-password"}).status(204)
			s.do("POST", "/api/superusers/install", "", map[string]any{"token": m[1], "email": "second@example.com", "password": "a-long-password"}).status(400)
			s.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": "first@example.com", "password": "a-long-password"}).status(200)
		})
	}
}

func TestEmailTemplatePreview(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		_, userTok := s.user("users", "ana@example.com", nil)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"appName": "Acme", "appURL": "https://acme.example.com"}).status(200)
		cases := []struct {
			name string
			body map[string]any
			want string // in the subject, html or text; "" = 400
		}{
			{"saved default", map[string]any{"template": "verification"}, "https://acme.example.com/_/#/auth/confirm-verification/test-token"},
			{"draft", map[string]any{"template": "passwordReset", "subject": "Hi {{.AppName}}", "html": "<p>{{.Email}}</p>", "text": "{{.Link}}"}, "Hi Acme"},
			{"otp code", map[string]any{"template": "otp"}, "123456"},
			{"escaped html", map[string]any{"template": "emailChange", "subject": "x", "html": "<p>{{.AppName}}</p>"}, "<p>Acme</p>"},
			{"unknown template", map[string]any{"template": "nope"}, ""},
			{"broken draft", map[string]any{"template": "otp", "subject": "{{.Nope}}"}, ""},
		}
		for _, c := range cases {
			r := s.do("POST", "/api/settings/email/preview", s.su, c.body)
			if c.want == "" {
				if r.code != 400 {
					t.Errorf("%s: %d %s", c.name, r.code, r.raw)
				}
				continue
			}
			if r.code != 200 || !strings.Contains(r.str("subject")+r.str("html")+r.str("text"), c.want) {
				t.Errorf("%s: %d %s", c.name, r.code, r.raw)
			}
		}
		s.do("POST", "/api/settings/email/preview", userTok, map[string]any{"template": "otp"}).status(403)
		// Nothing was saved.
		if st := s.do("GET", "/api/settings", s.su, nil).status(200); strings.Contains(string(st.raw), "Hi {{") {
			t.Errorf("preview saved the draft: %s", st.raw)
		}
	})
}
