package tests

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/plinthhq/plinth"
)

// POST /api/batch: record writes across collections in one transaction,
// each checked by its own rules as if sent alone, all or nothing, the
// failing request named with its own error, realtime events only after
// the commit (none for a rolled-back batch), a configurable size limit.
func TestBatch(t *testing.T) {
	small := func(c *plinth.Config) { c.BatchMaxRequests = 8 }
	forEachEngineWith(t, small, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": ""})
		anaID, ana := s.user("users", "ana@example.com", nil)
		bobID, bob := s.user("users", "bob@example.com", nil)
		s.collection(map[string]any{"name": "posts", "listRule": "", "viewRule": "",
			"createRule": "author = @request.auth.id", "updateRule": "author = @request.auth.id", "deleteRule": "author = @request.auth.id",
			"fields": []any{
				map[string]any{"name": "author", "type": "relation", "collectionId": "users"},
				map[string]any{"name": "text", "type": "text", "required": true},
				map[string]any{"name": "views", "type": "number"},
			}})
		s.collection(map[string]any{"name": "tags", "listRule": "", "viewRule": "", "createRule": "@request.method = 'POST'",
			"fields": []any{map[string]any{"name": "label", "type": "text"}}})
		c := s.sse("/api/realtime")
		s.subscribe(c, "", "posts/*", "tags").status(204)

		existing := s.do("POST", "/api/collections/posts/records", ana, map[string]any{"author": anaID, "text": "old", "views": 1}).status(200).str("id")
		if ev := c.next(); ev.data["record"].(map[string]any)["text"] != "old" {
			t.Fatalf("event: %v", ev.data)
		}
		r := s.do("POST", "/api/batch", ana, map[string]any{"requests": []any{
			map[string]any{"method": "POST", "url": "/api/collections/posts/records?expand=author", "body": map[string]any{"author": anaID, "text": "one"}},
			map[string]any{"method": "POST", "url": "/api/collections/tags/records", "body": map[string]any{"label": "go"}},
			map[string]any{"method": "PATCH", "url": "/api/collections/posts/records/" + existing, "body": map[string]any{"views+": 1}},
			map[string]any{"method": "PUT", "url": "/api/collections/posts/records", "body": map[string]any{"id": "upsertednew0001", "author": anaID, "text": "upsert new"}},
			map[string]any{"method": "PUT", "url": "/api/collections/posts/records", "body": map[string]any{"id": existing, "text": "upsert old"}},
			map[string]any{"method": "DELETE", "url": "/api/collections/posts/records/upsertednew0001"},
		}}).status(200)
		var results []map[string]any
		if err := json.Unmarshal(r.raw, &results); err != nil || len(results) != 6 {
			t.Fatalf("results: %s", r.raw)
		}
		for i, want := range []float64{200, 200, 200, 200, 200, 204} {
			if results[i]["status"] != want {
				t.Errorf("result %d: %v", i, results[i])
			}
		}
		first := results[0]["body"].(map[string]any)
		if first["expand"].(map[string]any)["author"].(map[string]any)["id"] != anaID {
			t.Errorf("expand in a batch result: %v", first)
		}
		if b := results[4]["body"].(map[string]any); b["text"] != "upsert old" || b["views"] != 2.0 {
			t.Errorf("upsert of an existing record: %v", b)
		}
		// Events follow the commit, in order.
		var got []string
		for len(got) < 6 {
			ev := c.next()
			rec := ev.data["record"].(map[string]any)
			label, _ := rec["text"].(string)
			if label == "" {
				label, _ = rec["label"].(string)
			}
			got = append(got, ev.data["action"].(string)+":"+label)
		}
		if want := "[create:one create:go update:old create:upsert new update:upsert old delete:upsert new]"; fmt.Sprint(got) != want {
			t.Errorf("events %v, want %s", got, want)
		}

		// All or nothing: the second request breaks bob's create rule.
		r = s.do("POST", "/api/batch", bob, map[string]any{"requests": []any{
			map[string]any{"method": "POST", "url": "/api/collections/posts/records", "body": map[string]any{"author": bobID, "text": "bob ok"}},
			map[string]any{"method": "POST", "url": "/api/collections/posts/records", "body": map[string]any{"author": anaID, "text": "as ana"}},
		}}).status(400)
		fail, _ := r.body["data"].(map[string]any)["requests"].(map[string]any)["1"].(map[string]any)
		if fail["code"] != "batch_request_failed" || fail["response"].(map[string]any)["status"] != 403.0 {
			t.Errorf("failure report: %s", r.raw)
		}
		// Others' records stay others': bob cannot delete ana's post in a batch either.
		s.do("POST", "/api/batch", bob, map[string]any{"requests": []any{
			map[string]any{"method": "DELETE", "url": "/api/collections/posts/records/" + existing},
		}}).status(400)
		// A validation failure late in the batch undoes the earlier writes.
		s.do("POST", "/api/batch", ana, map[string]any{"requests": []any{
			map[string]any{"method": "PATCH", "url": "/api/collections/posts/records/" + existing, "body": map[string]any{"text": "changed"}},
			map[string]any{"method": "POST", "url": "/api/collections/posts/records", "body": map[string]any{"author": anaID}},
		}}).status(400)
		if txt := s.do("GET", "/api/collections/posts/records/"+existing, "", nil).status(200).str("text"); txt != "upsert old" {
			t.Errorf("rolled-back update visible: %q", txt)
		}
		if n := len(s.do("GET", "/api/collections/posts/records?filter="+q(`text = "bob ok"`), "", nil).status(200).items()); n != 0 {
			t.Errorf("a failed batch left %d records", n)
		}
		// Nothing from the failed batches was announced.
		s.do("POST", "/api/collections/posts/records", ana, map[string]any{"author": anaID, "text": "sentinel"}).status(200)
		if ev := c.next(); ev.data["record"].(map[string]any)["text"] != "sentinel" {
			t.Errorf("event from a rolled-back batch: %v", ev.data)
		}

		// Bad batches.
		many := make([]any, 9)
		for i := range many {
			many[i] = map[string]any{"method": "POST", "url": "/api/collections/tags/records", "body": map[string]any{"label": "x"}}
		}
		s.do("POST", "/api/batch", ana, map[string]any{"requests": many}).status(400)
		s.do("POST", "/api/batch", ana, map[string]any{"requests": []any{}}).status(400)
		s.do("POST", "/api/batch", s.su, map[string]any{"requests": []any{map[string]any{"method": "GET", "url": "/api/collections/tags/records"}}}).status(400)
		s.do("POST", "/api/batch", s.su, map[string]any{"requests": []any{map[string]any{"method": "POST", "url": "/api/settings"}}}).status(400)
		s.do("POST", "/api/batch", s.su, map[string]any{"requests": []any{map[string]any{"method": "POST", "url": "/api/collections/nosuch/records"}}}).status(400)
		s.do("POST", "/api/batch", ana, "not json").status(400)
	})
}
