package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/plinthhq/plinth"
)

// Shapes PocketBase's client SDKs rely on: every list pages (getFullList
// stops at a short page), health carries "code", auth-methods lists
// providers as an array (never null) with the OTP and MFA durations.
func TestPocketBaseClientShapes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		if code := s.do("GET", "/api/health", "", nil).status(200).body["code"]; code != 200.0 {
			t.Errorf("health code = %v", code)
		}
		for i := 0; i < 5; i++ {
			s.collection(map[string]any{"name": fmt.Sprintf("c%d", i)})
		}
		total := 6 // _superusers and the five
		seen := map[string]bool{}
		for page := 1; page <= 10; page++ {
			r := s.do("GET", fmt.Sprintf("/api/collections?page=%d&perPage=2", page), s.su, nil).status(200)
			items := r.items()
			if r.body["totalItems"] != float64(total) || r.body["totalPages"] != 3.0 || r.body["page"] != float64(page) {
				t.Fatalf("page %d: %s", page, r.raw)
			}
			for _, it := range items {
				seen[it["name"].(string)] = true
			}
			if len(items) < 2 {
				break
			}
		}
		if len(seen) != total {
			t.Errorf("paging saw %d collections, want %d", len(seen), total)
		}
		if r := s.do("GET", "/api/collections?perPage=2&skipTotal=1", s.su, nil).status(200); r.body["totalItems"] != -1.0 || len(r.items()) != 2 {
			t.Errorf("skipTotal: %s", r.raw)
		}
		s.do("GET", "/api/collections?page=x", s.su, nil).status(400)

		s.collection(map[string]any{"name": "users", "type": "auth", "authOptions": map[string]any{"otp": map[string]any{"enabled": true, "duration": 120}}})
		m := s.do("GET", "/api/collections/users/auth-methods", "", nil).status(200).body
		providers, ok := m["oauth2"].(map[string]any)["providers"].([]any)
		if !ok || len(providers) != 0 {
			t.Errorf("oauth2 providers = %#v, want []", m["oauth2"])
		}
		if m["otp"].(map[string]any)["duration"] != 120.0 || m["mfa"].(map[string]any)["duration"] != 600.0 {
			t.Errorf("durations: %v %v", m["otp"], m["mfa"])
		}
	})
}

// Form bodies as HTML forms and PocketBase's SDKs send them: urlencoded
// and multipart text values take their fields' types, auth endpoints
// take urlencoded bodies, and "views+"/"views-" add to and subtract from
// a number (concurrent increments on one record lose none).
func TestFormBodiesAndNumberModifiers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		s.collection(map[string]any{"name": "posts", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "",
			"fields": []any{
				map[string]any{"name": "title", "type": "text"},
				map[string]any{"name": "views", "type": "number"},
				map[string]any{"name": "published", "type": "bool"},
				map[string]any{"name": "meta", "type": "json"},
				map[string]any{"name": "tags", "type": "select", "values": []string{"a", "b", "c"}, "maxSelect": 3},
				map[string]any{"name": "image", "type": "file"},
			}})
		const form = "application/x-www-form-urlencoded"
		tests := []struct {
			name string
			send func() *response
		}{
			{"urlencoded", func() *response {
				return s.raw("POST", "/api/collections/posts/records", "", form,
					[]byte("title=hi+there&views=42&published=true&meta=%7B%22a%22%3A1%7D&tags=a&tags=c"), nil)
			}},
			{"multipart", func() *response {
				return s.multipartReq("POST", "/api/collections/posts/records", "", nil,
					part{field: "title", data: []byte("hi there")}, part{field: "views", data: []byte("42")},
					part{field: "published", data: []byte("true")}, part{field: "meta", data: []byte(`{"a":1}`)},
					part{field: "tags", data: []byte("a")}, part{field: "tags", data: []byte("c")})
			}},
		}
		for _, tc := range tests {
			r := tc.send().status(200)
			b := r.body
			if b["title"] != "hi there" || b["views"] != 42.0 || b["published"] != true ||
				b["meta"].(map[string]any)["a"] != 1.0 || len(b["tags"].([]any)) != 2 {
				t.Errorf("%s: %s", tc.name, r.raw)
			}
		}
		// Text that is no number is still refused as such.
		if r := s.raw("POST", "/api/collections/posts/records", "", form, []byte("views=many"), nil).status(400); r.fieldErr("views") != "validation_invalid_number" {
			t.Errorf("bad number: %s", r.raw)
		}
		// Auth endpoints take urlencoded bodies.
		s.user("users", "ana@example.com", nil)
		if r := s.raw("POST", "/api/collections/users/auth-with-password", "", form, []byte("identity=ana%40example.com&password=password123"), nil).status(200); r.str("token") == "" {
			t.Errorf("form login: %s", r.raw)
		}

		// Number modifiers.
		id := s.do("POST", "/api/collections/posts/records", "", map[string]any{"views": 10}).status(200).str("id")
		path := "/api/collections/posts/records/" + id
		if v := s.do("PATCH", path, "", map[string]any{"views+": 5}).status(200).body["views"]; v != 15.0 {
			t.Errorf("views+ = %v", v)
		}
		if v := s.do("PATCH", path, "", map[string]any{"views-": 3}).status(200).body["views"]; v != 12.0 {
			t.Errorf("views- = %v", v)
		}
		if v := s.raw("PATCH", path, "", form, []byte("views%2B=8"), nil).status(200).body["views"]; v != 20.0 {
			t.Errorf("form views+ = %v", v)
		}
		s.do("PATCH", path, "", map[string]any{"views+": "x"}).status(400)
		s.do("PATCH", path, "", map[string]any{"title+": "x"}).status(400)
		const n = 20
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() {
				code, body, err := s.try("PATCH", path, "", map[string]any{"views+": 1})
				if err == nil && code != 200 {
					err = fmt.Errorf("status %d: %v", code, body)
				}
				errs <- err
			}()
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if v := s.do("GET", path, "", nil).status(200).body["views"]; v != 40.0 {
			t.Errorf("after %d concurrent increments views = %v, want 40", n, v)
		}
	})
}

// The realtime wire as PocketBase's SDKs speak it: PB_CONNECT carries the
// client id on its id: line (checked by the sse harness), "coll/*" and
// "coll/ID" topics with "?options=" (query values and headers rules read,
// expand/filter/fields), events named by the topic exactly as subscribed.
func TestRealtimePocketBaseWire(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "notes",
			"listRule": `@request.query.key = "sesame"`, "viewRule": `@request.headers.x_key = "sesame"`,
			"fields": []any{map[string]any{"name": "text", "type": "text"}, map[string]any{"name": "n", "type": "number"}}})
		create := func(text string, n int) string {
			return s.do("POST", "/api/collections/notes/records", s.su, map[string]any{"text": text, "n": n}).status(200).str("id")
		}
		target := create("target", 0)
		opts := func(o map[string]any) string {
			j, _ := json.Marshal(o)
			return "?options=" + url.QueryEscape(string(j))
		}
		wildOK := "notes/*" + opts(map[string]any{"query": map[string]any{"key": "sesame", "filter": "n > 1", "fields": "id,text"}})
		wildNo := "notes/*" + opts(map[string]any{"query": map[string]any{"key": "wrong"}})
		one := "notes/" + target + opts(map[string]any{"headers": map[string]any{"x_key": "sesame"}})
		oneNo := "notes/" + target + opts(map[string]any{"headers": map[string]any{"x_key": "nope"}})
		c := s.sse("/api/realtime")
		s.subscribe(c, "", wildOK, wildNo, one, oneNo, "notes/*").status(204)

		create("small", 1)
		create("big", 2)
		s.do("PATCH", "/api/collections/notes/records/"+target, s.su, map[string]any{"text": "target2"}).status(200)
		sentinel := create("end", 5)
		got := map[string][]string{}
		for {
			ev := c.next()
			rec := ev.data["record"].(map[string]any)
			got[ev.name] = append(got[ev.name], ev.data["action"].(string)+":"+rec["text"].(string))
			if ev.name == wildOK && rec["id"] == sentinel {
				if len(rec) != 2 {
					t.Errorf("fields option ignored: %v", rec)
				}
				break
			}
		}
		// The filter n > 1 drops "small" and the target (n 0); the plain
		// "notes/*" and the wrong key and header fail the rules.
		want := map[string][]string{
			wildOK: {"create:big", "create:end"},
			one:    {"update:target2"},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("events by name:\n got %v\nwant %v", got, want)
		}
		// Bad options are a clear 400.
		if r := s.subscribe(c, "", "notes/*?options=%7Bnot-json"); r.code != 400 || !strings.Contains(string(r.raw), "options") {
			t.Errorf("bad options: %d %s", r.code, r.raw)
		}
		s.subscribe(c, "", "nosuch/*").status(400)
		s.subscribe(c, "", "notes/bad id!").status(400)
	})
}

// Back-relation expand ("posts_via_author"): rule-checked like any
// expand, nested, a list (one record for a unique single relation); an
// expand that yields nothing the caller may see is "expand": {}.
func TestBackRelationExpand(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": ""})
		anaID, ana := s.user("users", "ana@example.com", nil)
		bobID, _ := s.user("users", "bob@example.com", nil)
		s.collection(map[string]any{"name": "posts", "listRule": "", "viewRule": "public = true || author = @request.auth.id",
			"fields": []any{
				map[string]any{"name": "author", "type": "relation", "collectionId": "users"},
				map[string]any{"name": "title", "type": "text"},
				map[string]any{"name": "public", "type": "bool"},
			}})
		s.collection(map[string]any{"name": "comments", "listRule": "", "viewRule": "",
			"fields": []any{
				map[string]any{"name": "posts", "type": "relation", "collectionId": "posts", "maxSelect": 5},
				map[string]any{"name": "text", "type": "text"},
			}})
		s.collection(map[string]any{"name": "profiles", "listRule": "", "viewRule": "",
			"fields":  []any{map[string]any{"name": "user", "type": "relation", "collectionId": "users"}},
			"indexes": []any{map[string]any{"name": "profiles_user", "columns": []string{"user"}, "unique": true}}})
		post := func(author, title string, public bool) string {
			return s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": author, "title": title, "public": public}).status(200).str("id")
		}
		p1 := post(anaID, "a1", true)
		post(anaID, "a2 draft", false)
		p3 := post(bobID, "b1", true)
		s.do("POST", "/api/collections/comments/records", s.su, map[string]any{"posts": []string{p1, p3}, "text": "on both"}).status(200)
		s.do("POST", "/api/collections/profiles/records", s.su, map[string]any{"user": anaID}).status(200)

		titles := func(v any) []string {
			var out []string
			list, _ := v.([]any)
			for _, it := range list {
				out = append(out, it.(map[string]any)["title"].(string))
			}
			sort.Strings(out)
			return out
		}
		path := "/api/collections/users/records/" + anaID + "?expand=" + q("posts_via_author.comments_via_posts,profiles_via_user")
		// Anonymous: the draft is not viewable.
		ex := s.do("GET", path, "", nil).status(200).body["expand"].(map[string]any)
		if got := titles(ex["posts_via_author"]); fmt.Sprint(got) != "[a1]" {
			t.Errorf("anonymous back-relation: %v", got)
		}
		first := ex["posts_via_author"].([]any)[0].(map[string]any)
		if cs, _ := first["expand"].(map[string]any)["comments_via_posts"].([]any); len(cs) != 1 {
			t.Errorf("nested multi back-relation: %v", first)
		}
		if prof, ok := ex["profiles_via_user"].(map[string]any); !ok || prof["user"] != anaID {
			t.Errorf("unique back-relation is one record: %v", ex["profiles_via_user"])
		}
		// The author sees the draft too.
		ex = s.do("GET", path, ana, nil).status(200).body["expand"].(map[string]any)
		if got := titles(ex["posts_via_author"]); fmt.Sprint(got) != "[a1 a2 draft]" {
			t.Errorf("author back-relation: %v", got)
		}
		// Lists expand per record.
		r := s.do("GET", "/api/collections/users/records?sort=created,id&expand=posts_via_author", "", nil).status(200)
		if a, b := titles(r.items()[0]["expand"].(map[string]any)["posts_via_author"]), titles(r.items()[1]["expand"].(map[string]any)["posts_via_author"]); fmt.Sprint(a, b) != "[a1] [b1]" {
			t.Errorf("list back-relations: %v %v", a, b)
		}
		// Nothing viewable: an empty expand object, not a missing key.
		draft := s.do("GET", "/api/collections/posts/records?filter="+q(`title = "a2 draft"`), ana, nil).status(200).items()[0]["id"].(string)
		s.do("PATCH", "/api/collections/posts/records/"+draft, s.su, map[string]any{"author": bobID}).status(200)
		r = s.do("GET", "/api/collections/posts/records/"+p1+"?expand=author", "", nil).status(200)
		if e, ok := r.body["expand"].(map[string]any); !ok || len(e) != 1 {
			t.Errorf("expand: %s", r.raw)
		}
		s.do("PATCH", "/api/collections/users", s.su, map[string]any{"viewRule": nil}).status(200)
		r = s.do("GET", "/api/collections/posts/records/"+p1+"?expand=author", "", nil).status(200)
		if e, ok := r.body["expand"].(map[string]any); !ok || len(e) != 0 {
			t.Errorf("unviewable expand should be {}: %s", r.raw)
		}
		if r := s.do("GET", "/api/collections/posts/records/"+p1, "", nil).status(200); r.body["expand"] != nil {
			t.Errorf("no expand asked, none sent: %s", r.raw)
		}
		// Unknown back-relations are a clear 400.
		for _, bad := range []string{"posts_via_title", "nosuch_via_author", "comments_via_posts"} {
			s.do("GET", "/api/collections/users/records/"+anaID+"?expand="+bad, s.su, nil).status(400)
		}
	})
}

// A new database starts with a "users" auth collection, as PocketBase's
// does: sign-up and login work at once and each user sees only itself.
// The decision is made once per database (deleting users does not bring
// it back; a database first opened without it never gets it), and the
// microblog demo takes the default collection over.
func TestDefaultUsersCollection(t *testing.T) {
	withUsers := func(c *plinth.Config) { c.NoUsersCollection = false }
	forEachEngineWith(t, withUsers, func(t *testing.T, s *server) {
		c := s.do("GET", "/api/collections/users", s.su, nil).status(200).body
		if c["type"] != "auth" {
			t.Fatalf("users: %v", c)
		}
		anaID, ana := s.user("users", "ana@example.com", map[string]any{"name": "Ana", "passwordConfirm": "password123"})
		_, bob := s.user("users", "bob@example.com", nil)
		if ids := s.do("GET", "/api/collections/users/records", ana, nil).status(200).ids(); len(ids) != 1 || ids[0] != anaID {
			t.Errorf("ana lists %v", ids)
		}
		s.do("GET", "/api/collections/users/records/"+anaID, bob, nil).status(404)
		s.do("PATCH", "/api/collections/users/records/"+anaID, bob, map[string]any{"name": "x"}).status(404)
		s.do("PATCH", "/api/collections/users/records/"+anaID, ana, map[string]any{"name": "Ana B"}).status(200)

		// The microblog demo adopts it.
		if fresh, err := s.app.InstallDemo(context.Background()); err != nil || !fresh {
			t.Fatalf("demo over the default users: %v %v", fresh, err)
		}
		if f := s.do("GET", "/api/collections/users", s.su, nil).status(200).body["fields"]; !strings.Contains(fmt.Sprint(f), "handle") {
			t.Errorf("demo fields missing: %v", f)
		}

		// Once per database: deleted, it stays deleted after a restart.
		for _, name := range []string{"timeline", "likes", "follows", "posts", "users"} {
			s.do("DELETE", "/api/collections/"+name, s.su, nil).status(204)
		}
		s.app.Close()
		again := startServerWith(t, s.dataDir, s.dbURL, withUsers)
		again.loginSuperuser()
		again.do("GET", "/api/collections/users", again.su, nil).status(404)
	})
	// A database first opened without it does not get it later.
	forEachEngine(t, func(t *testing.T, s *server) {
		s.app.Close()
		again := startServerWith(t, s.dataDir, s.dbURL, withUsers)
		again.loginSuperuser()
		again.do("GET", "/api/collections/users", again.su, nil).status(404)
	})
}

// The sessions list pages like every list, so a client fetching "all
// pages" stops.
func TestSessionsListPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		_, tok := s.user("users", "ana@example.com", nil)
		for i := 0; i < 4; i++ {
			s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123"}).status(200)
		}
		seen := map[string]bool{}
		for page := 1; page <= 5; page++ {
			r := s.do("GET", fmt.Sprintf("/api/collections/users/sessions?page=%d&perPage=2", page), tok, nil).status(200)
			if r.body["totalItems"] != 5.0 || r.body["totalPages"] != 3.0 {
				t.Fatalf("page %d: %s", page, r.raw)
			}
			items := r.items()
			for _, it := range items {
				seen[it["id"].(string)] = true
			}
			if len(items) < 2 {
				break
			}
		}
		if len(seen) != 5 {
			t.Errorf("paging saw %d sessions, want 5", len(seen))
		}
		if r := s.do("GET", "/api/collections/users/sessions?page=9", tok, nil).status(200); len(r.items()) != 0 {
			t.Errorf("past the end: %s", r.raw)
		}
		s.do("GET", "/api/collections/users/sessions?perPage=-1", tok, nil).status(400)
	})
}

// warnLog keeps the messages logged at WARN and above.
type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *warnLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *warnLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
		l.mu.Lock()
		l.msgs = append(l.msgs, msg)
		l.mu.Unlock()
	}
	return nil
}
func (l *warnLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *warnLog) WithGroup(string) slog.Handler      { return l }

// Without SMTP the email flows answer 204 as PocketBase does, the same
// for known and unknown addresses, and the server says why in its log.
func TestMailFlowsWithoutSMTPWarn(t *testing.T) {
	logs := &warnLog{}
	forEachEngineWith(t, func(c *plinth.Config) { c.Logger = slog.New(logs) }, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		_, tok := s.user("users", "ana@example.com", nil)
		for _, email := range []string{"ana@example.com", "nobody@example.com"} {
			s.do("POST", "/api/collections/users/request-verification", "", map[string]any{"email": email}).status(204)
			s.do("POST", "/api/collections/users/request-password-reset", "", map[string]any{"email": email}).status(204)
		}
		s.do("POST", "/api/collections/users/request-email-change", tok, map[string]any{"newEmail": "new@example.com"}).status(204)
		s.do("POST", "/api/collections/users/request-verification", "", map[string]any{"email": ""}).status(400) // still validated
	})
	logs.mu.Lock()
	defer logs.mu.Unlock()
	count := map[string]int{}
	for _, m := range logs.msgs {
		if strings.Contains(m, "SMTP is not configured") {
			for _, flow := range []string{"verification", "passwordReset", "emailChange"} {
				if strings.Contains(m, "flow="+flow) {
					count[flow]++
				}
			}
		}
	}
	// Per engine: verification and reset twice each, email change once.
	n := len(engineList)
	if count["verification"] != 2*n || count["passwordReset"] != 2*n || count["emailChange"] != n {
		t.Errorf("warnings %v in %q", count, logs.msgs)
	}
}

// The public part of the settings (the app's name, for pages shown to
// people not signed in) is readable by anyone; the rest stays private.
func TestPublicSettings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.do("PATCH", "/api/settings", s.su, map[string]any{"appName": "Acme Notes"}).status(200)
		r := s.do("GET", "/api/settings/public", "", nil).status(200)
		if r.str("appName") != "Acme Notes" || len(r.body) != 1 {
			t.Errorf("public settings: %s", r.raw)
		}
		s.do("GET", "/api/settings", "", nil).status(403)
	})
}
