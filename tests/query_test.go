package tests

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// blog seeds users -> posts (-> tags) for query tests and returns ids by name.
func blog(t *testing.T, s *server) map[string]string {
	ids := map[string]string{}
	s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": "",
		"fields": []any{
			map[string]any{"name": "handle", "type": "text"},
			map[string]any{"name": "secret_note", "type": "text", "hidden": true},
		}})
	s.collection(map[string]any{"name": "tags", "listRule": "", "viewRule": "name != 'private'", "fields": []any{
		map[string]any{"name": "name", "type": "text"},
	}})
	s.collection(map[string]any{"name": "posts", "listRule": "", "viewRule": "", "fields": []any{
		map[string]any{"name": "author", "type": "relation", "collectionId": "users"},
		map[string]any{"name": "text", "type": "text"},
		map[string]any{"name": "likes", "type": "number"},
		map[string]any{"name": "pinned", "type": "bool"},
		map[string]any{"name": "tags", "type": "relation", "collectionId": "tags", "maxSelect": 10},
		map[string]any{"name": "labels", "type": "select", "values": []string{"a", "b", "c"}, "maxSelect": 3},
		map[string]any{"name": "reply_to", "type": "relation", "collectionId": "posts"},
		map[string]any{"name": "data", "type": "json"},
	}})
	for _, h := range []string{"ana", "bob", "cid"} {
		ids[h], _ = s.user("users", h+"@example.com", map[string]any{"handle": h, "secret_note": "n-" + h})
	}
	for _, n := range []string{"go", "sql", "private"} {
		ids["tag:"+n] = s.do("POST", "/api/collections/tags/records", s.su, map[string]any{"name": n}).status(200).str("id")
	}
	posts := []struct {
		key, author, text string
		likes             int
		pinned            bool
		tags, labels      []string
		data              any
	}{
		{"p1", "ana", "Hello World", 5, true, []string{"go"}, []string{"a"}, map[string]any{"lang": "en", "n": 3}},
		{"p2", "ana", "100% sure_thing", 0, false, []string{"go", "sql"}, []string{"a", "b"}, nil},
		{"p3", "bob", "hello again", 12, false, nil, nil, map[string]any{"lang": "de", "n": 12}},
		{"p4", "cid", "Zebra", 7, true, []string{"private", "sql"}, []string{"c"}, nil},
	}
	for _, p := range posts {
		var tags []string
		for _, tg := range p.tags {
			tags = append(tags, ids["tag:"+tg])
		}
		body := map[string]any{"author": ids[p.author], "text": p.text, "likes": p.likes, "pinned": p.pinned, "tags": tags, "labels": p.labels, "data": p.data}
		if p.key == "p3" {
			body["reply_to"] = ids["p1"]
		}
		ids[p.key] = s.do("POST", "/api/collections/posts/records", s.su, body).status(200).str("id")
	}
	return ids
}

func TestFilterSemantics(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		ids := blog(t, s)
		cases := []struct {
			filter string
			want   []string
		}{
			{`likes > 5`, []string{"p3", "p4"}},
			{`likes >= 5 && likes <= 7`, []string{"p1", "p4"}},
			{`likes != 0`, []string{"p1", "p3", "p4"}},
			{`likes < 1 || pinned = true`, []string{"p1", "p2", "p4"}},
			{`(likes < 1 || pinned = true) && text ~ "z"`, []string{"p4"}},
			{`pinned = false`, []string{"p2", "p3"}},
			{`text ~ "hello"`, []string{"p1", "p3"}},
			{`text !~ "hello"`, []string{"p2", "p4"}},
			{`text ~ "100%"`, []string{"p2"}},
			{`text ~ "e_t"`, []string{"p2"}},
			{`text ~ "o_w"`, []string{}},
			{`text ~ "sure_thing"`, []string{"p2"}},
			{`text = "Zebra"`, []string{"p4"}},
			{`text = 'zebra'`, []string{}},
			{`author.handle = "ana"`, []string{"p1", "p2"}},
			{`author.handle != "ana"`, []string{"p3", "p4"}},
			{`reply_to.author.handle = "ana"`, []string{"p3"}},
			{`reply_to = null`, []string{"p1", "p2", "p4"}},
			{`reply_to != null`, []string{"p3"}},
			{`reply_to.text ~ "world"`, []string{"p3"}},
			{`tags.name ?= "sql"`, []string{"p2", "p4"}},
			{`tags.name = "go"`, []string{"p1"}},
			{`tags.name != "go"`, []string{"p3", "p4"}},
			{`tags.name ?!= "go"`, []string{"p2", "p4"}},
			{`labels ?= "b"`, []string{"p2"}},
			{`labels = "a"`, []string{"p1"}},
			{`labels = null`, []string{"p3"}},
			{`labels:length = 2`, []string{"p2"}},
			{`labels:length >= 1`, []string{"p1", "p2", "p4"}},
			{`data.lang = "en"`, []string{"p1"}},
			{`data.n > 5`, []string{"p3"}},
			{`data = null`, []string{"p2", "p4"}},
			{`id = "` + ids["p1"] + `"`, []string{"p1"}},
			{`created <= @now && created >= @yearStart`, []string{"p1", "p2", "p3", "p4"}},
			{`created > @now`, []string{}},
			{`1 = 1`, []string{"p1", "p2", "p3", "p4"}},
			{`"a" = "b"`, []string{}},
			{`@request.auth.id = ""`, []string{"p1", "p2", "p3", "p4"}},
			{`likes = "12"`, []string{"p3"}},
			{`text:lower = "zebra"`, []string{"p4"}},
		}
		for _, c := range cases {
			r := s.do("GET", "/api/collections/posts/records?perPage=100&filter="+q(c.filter), "", nil)
			if r.code != 200 {
				t.Errorf("filter %s: %d %s", c.filter, r.code, r.raw)
				continue
			}
			var got []string
			for _, id := range r.ids() {
				for k, v := range ids {
					if v == id {
						got = append(got, k)
					}
				}
			}
			slices.Sort(got)
			if got == nil {
				got = []string{}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("filter %s: got %v, want %v", c.filter, got, c.want)
			}
		}
		// Client filters cannot read hidden fields or others' emails.
		for _, f := range []string{`author.secret_note = "n-ana"`, `author.email = "ana@example.com"`, `author.password = ""`, `author.tokenKey != ""`} {
			s.do("GET", "/api/collections/posts/records?filter="+q(f), "", nil).status(400)
		}
		// Superusers may filter on hidden fields.
		r := s.do("GET", "/api/collections/posts/records?filter="+q(`author.secret_note = "n-ana"`), s.su, nil).status(200)
		if len(r.items()) != 2 {
			t.Errorf("superuser hidden filter: %s", r.raw)
		}
	})
}

func TestSortPaginationProjectionExpand(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		ids := blog(t, s)
		name := func(id string) string {
			for k, v := range ids {
				if v == id {
					return k
				}
			}
			return "?"
		}
		names := func(r *response) string {
			var out []string
			for _, id := range r.ids() {
				out = append(out, name(id))
			}
			return strings.Join(out, ",")
		}
		for _, c := range []struct{ sort, want string }{
			{"likes", "p2,p1,p4,p3"},
			{"-likes", "p3,p4,p1,p2"},
			{"pinned,-likes", "p3,p2,p4,p1"},
			{"author.handle,-likes", "p1,p2,p3,p4"},
			{"+text", "p2,p1,p4,p3"},
		} {
			r := s.do("GET", "/api/collections/posts/records?sort="+q(c.sort), "", nil).status(200)
			if got := names(r); got != c.want {
				t.Errorf("sort %s: %s, want %s", c.sort, got, c.want)
			}
		}
		if r := s.do("GET", "/api/collections/posts/records?sort=@random", "", nil).status(200); len(r.items()) != 4 {
			t.Errorf("random sort lost rows")
		}
		for _, bad := range []string{"nosuch", "tags", "likes;drop", "author.secret_note"} {
			s.do("GET", "/api/collections/posts/records?sort="+q(bad), "", nil).status(400)
		}
		// Pagination.
		p1 := s.do("GET", "/api/collections/posts/records?sort=likes&perPage=3&page=1", "", nil).status(200)
		p2 := s.do("GET", "/api/collections/posts/records?sort=likes&perPage=3&page=2", "", nil).status(200)
		if names(p1) != "p2,p1,p4" || names(p2) != "p3" || p1.body["totalItems"] != 4.0 || p1.body["totalPages"] != 2.0 || p2.body["page"] != 2.0 {
			t.Errorf("pagination: %s / %s", p1.raw, p2.raw)
		}
		sk := s.do("GET", "/api/collections/posts/records?skipTotal=1", "", nil).status(200)
		if sk.body["totalItems"] != -1.0 || sk.body["totalPages"] != -1.0 {
			t.Errorf("skipTotal: %s", sk.raw)
		}
		if pp := s.do("GET", "/api/collections/posts/records?perPage=100000", "", nil).status(200); pp.body["perPage"] != 500.0 {
			t.Errorf("perPage cap: %v", pp.body["perPage"])
		}
		s.do("GET", "/api/collections/posts/records?page=-1", "", nil).status(400)
		s.do("GET", "/api/collections/posts/records?perPage=abc", "", nil).status(400)

		// Projection.
		pr := s.do("GET", "/api/collections/posts/records/"+ids["p1"]+"?fields=id,text", "", nil).status(200)
		if len(pr.body) != 2 || pr.body["text"] != "Hello World" {
			t.Errorf("fields: %s", pr.raw)
		}
		// Expand: single, nested, multi (through the target's view rule), projection into expand.
		ex := s.do("GET", "/api/collections/posts/records/"+ids["p3"]+"?expand=author,reply_to.author,tags", "", nil).status(200)
		exp := ex.body["expand"].(map[string]any)
		if exp["author"].(map[string]any)["handle"] != "bob" {
			t.Errorf("expand author: %s", ex.raw)
		}
		if _, ok := exp["author"].(map[string]any)["secret_note"]; ok {
			t.Errorf("expanded hidden field")
		}
		if _, ok := exp["author"].(map[string]any)["email"]; ok {
			t.Errorf("expanded someone else's email")
		}
		rt := exp["reply_to"].(map[string]any)
		if rt["text"] != "Hello World" || rt["expand"].(map[string]any)["author"].(map[string]any)["handle"] != "ana" {
			t.Errorf("nested expand: %s", ex.raw)
		}
		ex4 := s.do("GET", "/api/collections/posts/records/"+ids["p4"]+"?expand=tags", "", nil).status(200)
		tl := ex4.body["expand"].(map[string]any)["tags"].([]any)
		if len(tl) != 1 || tl[0].(map[string]any)["name"] != "sql" {
			t.Errorf("multi expand must skip records hidden by the view rule: %s", ex4.raw)
		}
		fp := s.do("GET", "/api/collections/posts/records?filter="+q(`id="`+ids["p3"]+`"`)+"&expand=author&fields="+q("id,expand.author.handle"), "", nil).status(200)
		it := fp.items()[0]
		if fmt.Sprint(it) != fmt.Sprintf("map[expand:map[author:map[handle:bob]] id:%s]", ids["p3"]) {
			t.Errorf("projected expand: %v", it)
		}
		s.do("GET", "/api/collections/posts/records?expand=text", "", nil).status(400)
		s.do("GET", "/api/collections/posts/records?expand=nosuch", "", nil).status(400)
	})
}

// TestFiltersRespectTargetRules: a client filter that follows a relation
// or names another collection sees only the records that collection's
// rules let the caller read, so filters cannot probe hidden values.
func TestFiltersRespectTargetRules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "listRule": "", "viewRule": ""})
		anaID, ana := s.user("users", "ana@example.com", nil)
		_, bob := s.user("users", "bob@example.com", nil)
		s.collection(map[string]any{"name": "secrets", "listRule": "owner = @request.auth.id", "viewRule": "owner = @request.auth.id", "fields": []any{
			map[string]any{"name": "owner", "type": "relation", "collectionId": "users"},
			map[string]any{"name": "code", "type": "text"},
		}})
		s.collection(map[string]any{"name": "vault", "fields": []any{map[string]any{"name": "code", "type": "text"}}}) // superusers only
		s.collection(map[string]any{"name": "notes", "listRule": "", "viewRule": "", "fields": []any{
			map[string]any{"name": "secret", "type": "relation", "collectionId": "secrets"},
			map[string]any{"name": "locked", "type": "relation", "collectionId": "vault"},
			map[string]any{"name": "text", "type": "text"},
		}})
		sec := s.do("POST", "/api/collections/secrets/records", s.su, map[string]any{"owner": anaID, "code": "hunter2"}).status(200).str("id")
		s.do("POST", "/api/collections/notes/records", s.su, map[string]any{"secret": sec, "text": "n"}).status(200)
		count := func(tok, filter string) int {
			return len(s.do("GET", "/api/collections/notes/records?filter="+q(filter), tok, nil).status(200).items())
		}
		for _, f := range []string{`secret.code = "hunter2"`, `@collection.secrets.code ?= "hunter2"`} {
			if n := count(ana, f); n != 1 {
				t.Errorf("owner, %s: %d", f, n)
			}
			if n := count(bob, f); n != 0 {
				t.Errorf("other user probed a hidden value with %s", f)
			}
			if n := count("", f); n != 0 {
				t.Errorf("anonymous probed a hidden value with %s", f)
			}
			if n := count(s.su, f); n != 1 {
				t.Errorf("superuser, %s: %d", f, n)
			}
		}
		s.do("GET", "/api/collections/notes/records?filter="+q(`locked.code = "x"`), bob, nil).status(400)
		s.do("GET", "/api/collections/notes/records?sort=secret.code", bob, nil).status(200)
	})
}
