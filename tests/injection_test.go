package tests

import (
	"strings"
	"testing"
)

// TestInjectionAttempts sends hostile input through every parameter that
// reaches SQL generation. Each must be a clean 400 (or 404 for paths),
// never a 500, and the data must be intact afterwards.
func TestInjectionAttempts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		ids := blog(t, s)
		base := "/api/collections/posts/records"
		filters := []string{
			`text = "x"; DROP TABLE posts; --`,
			`text = "x" OR 1=1`,
			`text = 'x' || 1=1 --'`,
			`text) OR (1=1`,
			`"text" = "x"`,
			`posts.text = "x"`,
			`text = x"`,
			`text ~ `,
			`1 = 1 && likes > (SELECT 1)`,
			`likes > 0 UNION SELECT * FROM _superusers`,
			`author.email = "x"`,
			`@collection._superusers.email != ""`,
			`@request.auth.password = ""`,
			`@request.auth.tokenKey = ""`,
			`text = "\"`,
			`text = "` + strings.Repeat("(", 100) + `"`,
			strings.Repeat("(", 200) + `text = "x"` + strings.Repeat(")", 200),
			strings.Repeat(`text = "x" && `, 100) + `text = "x"`,
			`a.b.c.d.e.f.g.h.i.j = 1`,
			"text = \"\x00\"; --",
			`text = $1`,
			`text = ?1`,
			`@foo = 1`,
			`likes:nosuch = 1`,
		}
		for _, f := range filters {
			r := s.do("GET", base+"?filter="+q(f), "", nil)
			if r.code != 400 && r.code != 200 {
				t.Errorf("filter %q: status %d %s", f, r.code, r.raw)
			}
			if r.code == 200 && len(r.items()) != 0 {
				// A syntactically valid hostile string may only match
				// as a literal value, which none of the posts has.
				t.Errorf("filter %q matched %d records", f, len(r.items()))
			}
			if strings.Contains(strings.ToLower(string(r.raw)), "select ") || strings.Contains(string(r.raw), "sqlite") || strings.Contains(string(r.raw), "pq:") {
				t.Errorf("filter %q: response leaks SQL: %s", f, r.raw)
			}
		}
		bad := []string{
			"?sort=" + q("likes; DROP TABLE posts"),
			"?sort=" + q("(SELECT 1)"),
			"?sort=" + q(`"text"`),
			"?sort=" + q("text DESC"),
			"?sort=" + q("-"),
			"?sort=" + q("author.password"),
			"?fields=" + q("id,(SELECT 1)"),
			"?fields=" + q("text;--"),
			"?expand=" + q("author;DROP TABLE users"),
			"?expand=" + q("author.(x)"),
			"?expand=" + q("a.b.c.d.e.f.g.h"),
			"?page=" + q("1;"),
			"?perPage=" + q("1 OR 1=1"),
		}
		for _, b := range bad {
			s.do("GET", base+b, "", nil).status(400)
		}
		for _, name := range []string{`posts"`, `posts;DROP TABLE posts`, `_superusers" --`, `..%2F..%2Fetc`, `sqlite_master`, `pg_catalog.pg_user`} {
			r := s.do("GET", "/api/collections/"+q(name)+"/records", "", nil)
			if r.code != 404 && r.code != 400 && r.code != 403 {
				t.Errorf("collection %q: status %d", name, r.code)
			}
		}
		// _superusers is a real collection but superusers-only.
		s.do("GET", "/api/collections/_superusers/records", "", nil).status(403)
		// Hostile collection definitions.
		for _, def := range []map[string]any{
			{"name": `x"; DROP TABLE posts; --`},
			{"name": "ok1", "fields": []any{map[string]any{"name": `a" TEXT); DROP TABLE posts; --`, "type": "text"}}},
			{"name": "ok2", "fields": []any{map[string]any{"name": "a", "type": "text; DROP"}}},
			{"name": "ok3", "indexes": []any{map[string]any{"name": "i; DROP", "columns": []string{"id"}}}},
			{"name": "ok4", "listRule": `1=1) OR (1=1`},
			{"name": "ok5", "type": "view", "viewQuery": "SELECT id FROM posts; DROP TABLE posts"},
			{"name": "ok6", "type": "view", "viewQuery": "DELETE FROM posts"},
			{"name": "ok7", "unknownOption": true},
		} {
			s.do("POST", "/api/collections", s.su, def).status(400)
		}
		// Record ids in paths.
		for _, id := range []string{`x' OR '1'='1`, `..%2F..`, strings.Repeat("a", 200)} {
			s.do("GET", base+"/"+q(id), "", nil).status(404)
		}
		// Everything still there.
		if n := len(s.do("GET", base, "", nil).status(200).items()); n != 4 {
			t.Fatalf("posts after attacks: %d", n)
		}
		s.do("GET", base+"/"+ids["p1"], "", nil).status(200)
	})
}

// TestRequestLimitsAndErrors covers the error shape and request guards.
func TestRequestLimitsAndErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "docs", "createRule": "", "listRule": "", "viewRule": "", "fields": []any{map[string]any{"name": "body", "type": "json", "maxSize": 5 << 20}}})
		big := `{"body":"` + strings.Repeat("x", 2<<20) + `"}`
		r := s.do("POST", "/api/collections/docs/records", "", big).status(413)
		if r.body["status"] != 413.0 || r.body["message"] == "" {
			t.Errorf("413 shape: %s", r.raw)
		}
		r = s.do("POST", "/api/collections/docs/records", "", `{"body":`).status(400)
		if _, ok := r.body["data"].(map[string]any); !ok {
			t.Errorf("error without data object: %s", r.raw)
		}
		s.do("POST", "/api/collections/docs/records", "", `[1,2]`).status(400)
		s.do("GET", "/api/collections/nope/records", "", nil).status(404)
		s.do("GET", "/api/nothing-here", "", nil).status(404)
		s.do("GET", "/api/collections", "", nil).status(403)
		s.do("GET", "/api/collections", "not-a-token", nil).status(401)
		s.do("GET", "/api/collections/docs/records", "Bearer x.y.z", nil).status(401)
		h := s.do("GET", "/api/health", "", nil).status(200)
		if h.body["message"] == "" {
			t.Errorf("health: %s", h.raw)
		}
	})
}
