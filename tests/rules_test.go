package tests

import (
	"testing"
)

// TestRulesMatrix checks every operation for every kind of caller against
// the three kinds of rule: null (superusers only), "" (everyone) and an
// expression (here: owner only).
func TestRulesMatrix(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": ""})
		ownerID, ownerTok := s.user("users", "owner@example.com", nil)
		otherID, otherTok := s.user("users", "other@example.com", nil)
		const expr = "owner = @request.auth.id"
		rules := map[string]any{"null": nil, "empty": "", "expr": expr}
		for name, rule := range rules {
			s.collection(map[string]any{"name": "docs_" + name,
				"listRule": rule, "viewRule": rule, "createRule": rule, "updateRule": rule, "deleteRule": rule,
				"fields": []any{
					map[string]any{"name": "owner", "type": "relation", "collectionId": "users"},
					map[string]any{"name": "title", "type": "text"},
				}})
		}
		callers := map[string]string{"anon": "", "owner": ownerTok, "other": otherTok, "superuser": s.su}
		seed := func(coll string) string {
			return s.do("POST", "/api/collections/"+coll+"/records", s.su, map[string]any{"owner": ownerID, "title": "x"}).status(200).str("id")
		}
		// want[rule][caller] per operation: status, and for list the item count.
		type exp struct{ list, view, create, update, del int }
		want := map[string]map[string]exp{
			"null": {
				"anon":      {403, 403, 403, 403, 403},
				"owner":     {403, 403, 403, 403, 403},
				"other":     {403, 403, 403, 403, 403},
				"superuser": {1, 200, 200, 200, 204},
			},
			"empty": {
				"anon":      {1, 200, 200, 200, 204},
				"owner":     {1, 200, 200, 200, 204},
				"other":     {1, 200, 200, 200, 204},
				"superuser": {1, 200, 200, 200, 204},
			},
			"expr": {
				"anon":      {0, 404, 403, 404, 404},
				"owner":     {1, 200, 200, 200, 204},
				"other":     {0, 404, 403, 404, 404},
				"superuser": {1, 200, 200, 200, 204},
			},
		}
		for rule, byCaller := range want {
			coll := "docs_" + rule
			base := "/api/collections/" + coll + "/records"
			for caller, w := range byCaller {
				tok := callers[caller]
				t.Run(rule+"/"+caller, func(t *testing.T) {
					id := seed(coll)
					defer s.do("DELETE", base+"/"+id, s.su, nil)
					// list: a number < 100 is an expected item count
					// among the records visible in this collection.
					lr := s.do("GET", base+"?filter="+q(`id = "`+id+`"`), tok, nil)
					if w.list >= 100 {
						lr.status(w.list)
					} else if lr.status(200); len(lr.items()) != w.list {
						t.Errorf("list: %d items, want %d", len(lr.items()), w.list)
					}
					s.do("GET", base+"/"+id, tok, nil).status(w.view)
					cr := s.do("POST", base, tok, map[string]any{"owner": ownerID, "title": "new"}).status(w.create)
					if cr.code == 200 {
						s.do("DELETE", base+"/"+cr.str("id"), s.su, nil).status(204)
					}
					s.do("PATCH", base+"/"+id, tok, map[string]any{"title": "changed"}).status(w.update)
					s.do("DELETE", base+"/"+id, tok, nil).status(w.del)
					if w.del == 204 {
						s.do("GET", base+"/"+id, s.su, nil).status(404)
					} else {
						got := s.do("GET", base+"/"+id, s.su, nil).status(200)
						if w.update != 200 && got.body["title"] != "x" {
							t.Errorf("rejected update changed the record: %s", got.raw)
						}
					}
				})
			}
		}

		// The update rule holds before and after: the owner cannot hand a
		// record to someone else, and the change is rolled back.
		id := seed("docs_expr")
		s.do("PATCH", "/api/collections/docs_expr/records/"+id, ownerTok, map[string]any{"owner": otherID}).status(403)
		if got := s.do("GET", "/api/collections/docs_expr/records/"+id, s.su, nil).status(200).body["owner"]; got != ownerID {
			t.Errorf("owner changed to %v despite rejection", got)
		}
		// Creating as someone else is rejected and rolled back.
		s.do("POST", "/api/collections/docs_expr/records", otherTok, map[string]any{"owner": ownerID, "title": "forged"}).status(403)
		n := s.do("GET", "/api/collections/docs_expr/records?filter="+q(`title = "forged"`), s.su, nil).status(200)
		if len(n.items()) != 0 {
			t.Errorf("rejected create was stored")
		}
	})
}

// TestRuleFeatures covers request macros, body and relation paths in rules.
func TestRuleFeatures(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": "",
			"fields": []any{map[string]any{"name": "role", "type": "select", "values": []string{"admin", "member"}}}})
		adminID, adminTok := s.user("users", "admin@example.com", map[string]any{"role": "admin"})
		_, memberTok := s.user("users", "member@example.com", map[string]any{"role": "member"})
		s.collection(map[string]any{"name": "posts",
			"listRule":   `published = true || author = @request.auth.id`,
			"viewRule":   `published = true || author.role = "admin" && @request.auth.role = "admin"`,
			"createRule": `@request.auth.id != "" && author = @request.auth.id && @request.body.title:isset = true`,
			"updateRule": `@request.auth.role = "admin"`,
			"fields": []any{
				map[string]any{"name": "author", "type": "relation", "collectionId": "users"},
				map[string]any{"name": "title", "type": "text"},
				map[string]any{"name": "published", "type": "bool"},
			}})
		s.do("POST", "/api/collections/posts/records", adminTok, map[string]any{"author": adminID}).status(403) // no title
		draft := s.do("POST", "/api/collections/posts/records", adminTok, map[string]any{"author": adminID, "title": "d"}).status(200).str("id")
		if n := len(s.do("GET", "/api/collections/posts/records", memberTok, nil).status(200).items()); n != 0 {
			t.Errorf("member sees %d drafts", n)
		}
		if n := len(s.do("GET", "/api/collections/posts/records", adminTok, nil).status(200).items()); n != 1 {
			t.Errorf("author sees %d of own drafts", n)
		}
		s.do("GET", "/api/collections/posts/records/"+draft, memberTok, nil).status(404)
		s.do("GET", "/api/collections/posts/records/"+draft, adminTok, nil).status(200)
		s.do("PATCH", "/api/collections/posts/records/"+draft, memberTok, map[string]any{"published": true}).status(404)
		s.do("PATCH", "/api/collections/posts/records/"+draft, adminTok, map[string]any{"published": true}).status(200)
		s.do("GET", "/api/collections/posts/records/"+draft, memberTok, nil).status(200)
		s.do("PATCH", "/api/collections/posts/records/"+draft, memberTok, map[string]any{"title": "x"}).status(403)
	})
}
