package tests

import (
	"reflect"
	"testing"
)

func TestDeleteCascadesAndReferences(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "authors", "listRule": "", "viewRule": "", "deleteRule": "", "fields": []any{map[string]any{"name": "name", "type": "text"}}})
		s.collection(map[string]any{"name": "books", "listRule": "", "viewRule": "", "fields": []any{
			map[string]any{"name": "author", "type": "relation", "collectionId": "authors", "cascadeDelete": true},
			map[string]any{"name": "title", "type": "text"},
		}})
		s.collection(map[string]any{"name": "reviews", "listRule": "", "viewRule": "", "fields": []any{
			map[string]any{"name": "book", "type": "relation", "collectionId": "books", "cascadeDelete": true},
			map[string]any{"name": "mentions", "type": "relation", "collectionId": "authors", "maxSelect": 5},
			map[string]any{"name": "fav", "type": "relation", "collectionId": "authors"},
		}})
		s.collection(map[string]any{"name": "contracts", "listRule": "", "viewRule": "", "fields": []any{
			map[string]any{"name": "author", "type": "relation", "collectionId": "authors", "required": true},
		}})
		mk := func(coll string, body map[string]any) string {
			return s.do("POST", "/api/collections/"+coll+"/records", s.su, body).status(200).str("id")
		}
		a1, a2 := mk("authors", map[string]any{"name": "a1"}), mk("authors", map[string]any{"name": "a2"})
		b1 := mk("books", map[string]any{"author": a1, "title": "t"})
		r1 := mk("reviews", map[string]any{"book": b1, "mentions": []string{a1, a2}, "fav": a1})
		r2 := mk("reviews", map[string]any{"mentions": []string{a1, a2}, "fav": a1})
		c2 := mk("contracts", map[string]any{"author": a2})

		// a2 is required by a contract: refused, nothing changes.
		s.do("DELETE", "/api/collections/authors/records/"+a2, "", nil).status(400)
		s.do("GET", "/api/collections/authors/records/"+a2, "", nil).status(200)
		if got := s.do("GET", "/api/collections/reviews/records/"+r2, "", nil).status(200).body["mentions"]; !reflect.DeepEqual(got, []any{a1, a2}) {
			t.Errorf("refused delete modified references: %v", got)
		}
		// a1: books cascade (and their reviews), optional references cleared.
		s.do("DELETE", "/api/collections/authors/records/"+a1, "", nil).status(204)
		s.do("GET", "/api/collections/books/records/"+b1, "", nil).status(404)
		s.do("GET", "/api/collections/reviews/records/"+r1, "", nil).status(404)
		r := s.do("GET", "/api/collections/reviews/records/"+r2, "", nil).status(200)
		if !reflect.DeepEqual(r.body["mentions"], []any{a2}) || r.body["fav"] != "" {
			t.Errorf("references not cleared: %s", r.raw)
		}
		// Removing the contract frees a2.
		s.do("DELETE", "/api/collections/contracts/records/"+c2, s.su, nil).status(204)
		s.do("DELETE", "/api/collections/authors/records/"+a2, "", nil).status(204)
		// A collection that others point at cannot be dropped.
		s.do("DELETE", "/api/collections/authors", s.su, nil).status(400)
		s.do("DELETE", "/api/collections/contracts", s.su, nil).status(204)
		s.do("GET", "/api/collections/contracts/records", s.su, nil).status(404)
	})
}

func TestViewCollections(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": "",
			"fields": []any{map[string]any{"name": "handle", "type": "text"}}})
		s.collection(map[string]any{"name": "posts", "listRule": "", "viewRule": "", "fields": []any{
			map[string]any{"name": "author", "type": "relation", "collectionId": "users"},
			map[string]any{"name": "likes", "type": "number"},
			map[string]any{"name": "text", "type": "text"},
		}})
		anaID, anaTok := s.user("users", "ana@example.com", map[string]any{"handle": "ana"})
		bobID, _ := s.user("users", "bob@example.com", map[string]any{"handle": "bob"})
		for i, a := range []string{anaID, anaID, bobID} {
			s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"author": a, "likes": i + 1, "text": "p"}).status(200)
		}
		v := s.collection(map[string]any{"name": "author_stats", "type": "view",
			"listRule": "id = @request.auth.id", "viewRule": "",
			"viewQuery": "SELECT p.author AS id, COUNT(*) AS posts, SUM(p.likes) AS total_likes, p.author AS who FROM posts p GROUP BY p.author",
			"fields":    []any{map[string]any{"name": "who", "type": "relation", "collectionId": "users"}},
		})
		var names []string
		for _, f := range v["fields"].([]any) {
			names = append(names, f.(map[string]any)["name"].(string))
		}
		if !reflect.DeepEqual(names, []string{"id", "posts", "total_likes", "who"}) { // id: the system field, listed first
			t.Errorf("inferred fields %v", names)
		}
		list := s.do("GET", "/api/collections/author_stats/records?expand=who", anaTok, nil).status(200)
		items := list.items()
		if len(items) != 1 || items[0]["id"] != anaID || items[0]["posts"] != 2.0 || items[0]["total_likes"] != 3.0 {
			t.Fatalf("view list: %s", list.raw)
		}
		if items[0]["expand"].(map[string]any)["who"].(map[string]any)["handle"] != "ana" {
			t.Errorf("view relation expand: %s", list.raw)
		}
		got := s.do("GET", "/api/collections/author_stats/records/"+bobID, "", nil).status(200)
		if got.body["posts"] != 1.0 {
			t.Errorf("view record: %s", got.raw)
		}
		// Read-only.
		s.do("POST", "/api/collections/author_stats/records", s.su, map[string]any{"posts": 1}).status(400)
		s.do("DELETE", "/api/collections/author_stats/records/"+bobID, s.su, nil).status(400)
		s.do("POST", "/api/collections", s.su, map[string]any{"name": "bad_view", "type": "view", "viewQuery": "SELECT likes FROM posts"}).status(400)
		s.do("POST", "/api/collections", s.su, map[string]any{"name": "bad_view", "type": "view", "viewQuery": "SELECT id FROM nosuchtable"}).status(400)
		s.do("POST", "/api/collections", s.su, map[string]any{"name": "bad_view", "type": "view", "viewQuery": "SELECT id FROM posts", "createRule": ""}).status(400)
		// Updating the query re-infers fields.
		s.do("PATCH", "/api/collections/author_stats", s.su, map[string]any{"viewQuery": "SELECT p.author AS id, MAX(p.likes) AS best FROM posts p GROUP BY p.author", "fields": []any{}, "listRule": ""}).status(200)
		l2 := s.do("GET", "/api/collections/author_stats/records?sort=-best", "", nil).status(200).items()
		if len(l2) != 2 || l2[0]["best"] != 3.0 {
			t.Errorf("updated view: %v", l2)
		}
		s.do("DELETE", "/api/collections/author_stats", s.su, nil).status(204)
	})
}
