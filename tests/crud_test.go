package tests

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// allTypes is a collection with one field of every type and option.
func allTypes(s *server) {
	s.collection(map[string]any{"name": "tags", "type": "base", "listRule": "", "viewRule": "", "createRule": "", "fields": []any{
		map[string]any{"name": "label", "type": "text", "required": true},
	}})
	s.collection(map[string]any{
		"name": "things", "type": "base",
		"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
		"fields": []any{
			map[string]any{"name": "title", "type": "text", "required": true, "min": 2, "max": 10, "pattern": "^[a-z ]+$"},
			map[string]any{"name": "count", "type": "number", "min": -5, "max": 100, "onlyInt": true},
			map[string]any{"name": "ratio", "type": "number"},
			map[string]any{"name": "active", "type": "bool"},
			map[string]any{"name": "contact", "type": "email"},
			map[string]any{"name": "site", "type": "url"},
			map[string]any{"name": "due", "type": "date"},
			map[string]any{"name": "color", "type": "select", "values": []string{"red", "green", "blue"}},
			map[string]any{"name": "sizes", "type": "select", "values": []string{"s", "m", "l"}, "maxSelect": 3},
			map[string]any{"name": "meta", "type": "json", "maxSize": 200},
			map[string]any{"name": "main_tag", "type": "relation", "collectionId": "tags"},
			map[string]any{"name": "tag_list", "type": "relation", "collectionId": "tags", "maxSelect": 5},
			map[string]any{"name": "secret", "type": "text", "hidden": true},
		},
	})
}

func TestCRUDEveryFieldType(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		allTypes(s)
		tag1 := s.do("POST", "/api/collections/tags/records", "", map[string]any{"label": "one"}).status(200).str("id")
		tag2 := s.do("POST", "/api/collections/tags/records", "", map[string]any{"label": "two"}).status(200).str("id")
		good := map[string]any{
			"title": "hello", "count": 7, "ratio": 0.25, "active": true, "contact": "a@example.com",
			"site": "https://example.com/x", "due": "2026-01-02T03:04:05Z", "color": "green",
			"sizes": []string{"s", "l"}, "meta": map[string]any{"a": []any{1.0, "x"}},
			"main_tag": tag1, "tag_list": []string{tag1, tag2}, "secret": "shh",
		}
		rec := s.do("POST", "/api/collections/things/records", "", good).status(200)
		id := rec.str("id")
		if len(id) != 15 {
			t.Fatalf("id %q", id)
		}
		want := map[string]any{
			"title": "hello", "count": 7.0, "ratio": 0.25, "active": true, "contact": "a@example.com",
			"site": "https://example.com/x", "due": "2026-01-02 03:04:05.000Z", "color": "green",
			"sizes": []any{"s", "l"}, "meta": map[string]any{"a": []any{1.0, "x"}},
			"main_tag": tag1, "tag_list": []any{tag1, tag2}, "collectionName": "things",
		}
		check := func(got map[string]any) {
			t.Helper()
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			if _, ok := got["secret"]; ok {
				t.Errorf("hidden field returned to a non-superuser")
			}
			if got["created"] == "" || got["updated"] == "" {
				t.Errorf("autodate not set: %v", got)
			}
		}
		check(rec.body)
		check(s.do("GET", "/api/collections/things/records/"+id, "", nil).status(200).body)
		if v := s.do("GET", "/api/collections/things/records/"+id, s.su, nil).status(200).body["secret"]; v != "shh" {
			t.Errorf("superuser should see hidden field, got %v", v)
		}

		// Validation failures, one per field and rule.
		bad := []struct {
			field string
			value any
			code  string
		}{
			{"title", "", "validation_required"},
			{"title", "a", "validation_min_text_constraint"},
			{"title", "abcdefghijk", "validation_max_text_constraint"},
			{"title", "Hello", "validation_invalid_format"},
			{"title", 5, "validation_invalid_string"},
			{"count", 1.5, "validation_only_int_constraint"},
			{"count", -6, "validation_min_number_constraint"},
			{"count", 101, "validation_max_number_constraint"},
			{"count", "7", "validation_invalid_number"},
			{"active", "yes", "validation_invalid_bool"},
			{"contact", "not-an-email", "validation_invalid_email"},
			{"site", "ftp://x", "validation_invalid_url"},
			{"site", "not a url", "validation_invalid_url"},
			{"due", "tomorrow", "validation_invalid_date"},
			{"color", "purple", "validation_invalid_value"},
			{"color", []string{"red", "blue"}, "validation_too_many_values"},
			{"sizes", []string{"s", "xl"}, "validation_invalid_value"},
			{"sizes", []any{1}, "validation_invalid_value"},
			{"meta", strings.Repeat("x", 300), "validation_json_size_limit"},
			{"main_tag", "doesnotexist123", "validation_missing_rel_records"},
			{"main_tag", "bad id!", "validation_invalid_relation"},
			{"tag_list", []string{tag1, "nope12345678901"}, "validation_missing_rel_records"},
			{"nosuchfield", 1, "validation_unknown_field"},
			{"created", "2020-01-01", "validation_readonly"},
		}
		for _, b := range bad {
			body := map[string]any{}
			for k, v := range good {
				body[k] = v
			}
			body[b.field] = b.value
			r := s.do("POST", "/api/collections/things/records", "", body).status(400)
			if got := r.fieldErr(b.field); got != b.code {
				t.Errorf("%s=%v: code %q, want %q (%s)", b.field, b.value, got, b.code, r.raw)
			}
		}
		// A failed create left nothing behind.
		if n := s.do("GET", "/api/collections/things/records", "", nil).status(200).body["totalItems"]; n != 1.0 {
			t.Fatalf("totalItems %v, want 1", n)
		}

		// Update: partial, modifiers on multi fields, validation.
		upd := s.do("PATCH", "/api/collections/things/records/"+id, "", map[string]any{"count": 9, "sizes+": "m", "tag_list-": tag1}).status(200)
		if upd.body["count"] != 9.0 || !reflect.DeepEqual(upd.body["sizes"], []any{"s", "l", "m"}) || !reflect.DeepEqual(upd.body["tag_list"], []any{tag2}) {
			t.Errorf("update result %s", upd.raw)
		}
		if upd.body["title"] != "hello" {
			t.Errorf("untouched field changed: %v", upd.body["title"])
		}
		s.do("PATCH", "/api/collections/things/records/"+id, "", map[string]any{"count": 1000}).status(400)
		s.do("PATCH", "/api/collections/things/records/"+id, "", map[string]any{"id": "otherid12345678"}).status(400)
		s.do("PATCH", "/api/collections/things/records/nosuchrecord1", "", map[string]any{"count": 1}).status(404)

		// Clearing optional values.
		clr := s.do("PATCH", "/api/collections/things/records/"+id, "", map[string]any{"meta": nil, "main_tag": "", "sizes": []string{}, "contact": ""}).status(200)
		if clr.body["meta"] != nil || clr.body["main_tag"] != "" || !reflect.DeepEqual(clr.body["sizes"], []any{}) || clr.body["contact"] != "" {
			t.Errorf("clear result %s", clr.raw)
		}

		// Custom id, duplicate id.
		body := map[string]any{"id": "custom_id_1", "title": "abc"}
		s.do("POST", "/api/collections/things/records", "", body).status(200)
		dup := s.do("POST", "/api/collections/things/records", "", body).status(400)
		if dup.fieldErr("id") != "validation_not_unique" {
			t.Errorf("duplicate id: %s", dup.raw)
		}

		// Delete.
		s.do("DELETE", "/api/collections/things/records/"+id, "", nil).status(204)
		s.do("GET", "/api/collections/things/records/"+id, "", nil).status(404)
		s.do("DELETE", "/api/collections/things/records/"+id, "", nil).status(404)
	})
}

func TestUniqueIndexes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "people", "listRule": "", "createRule": "", "fields": []any{
			map[string]any{"name": "handle", "type": "text"},
			map[string]any{"name": "a", "type": "text"},
			map[string]any{"name": "b", "type": "text"},
		}, "indexes": []any{
			map[string]any{"name": "idx_handle", "columns": []string{"handle"}, "unique": true},
			map[string]any{"name": "idx_ab", "columns": []string{"a", "b"}, "unique": true},
		}})
		s.do("POST", "/api/collections/people/records", "", map[string]any{"handle": "ana", "a": "1", "b": "1"}).status(200)
		r := s.do("POST", "/api/collections/people/records", "", map[string]any{"handle": "ana", "a": "1", "b": "2"}).status(400)
		if r.fieldErr("handle") != "validation_not_unique" {
			t.Errorf("unique handle: %s", r.raw)
		}
		r = s.do("POST", "/api/collections/people/records", "", map[string]any{"handle": "bob", "a": "1", "b": "1"}).status(400)
		if r.fieldErr("a") != "validation_not_unique" || r.fieldErr("b") != "validation_not_unique" {
			t.Errorf("unique pair: %s", r.raw)
		}
		// Blank values of a unique optional field do not collide.
		s.do("POST", "/api/collections/people/records", "", map[string]any{"a": "2"}).status(200)
		s.do("POST", "/api/collections/people/records", "", map[string]any{"a": "3"}).status(200)
	})
}

func TestSchemaChangeKeepsData(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		col := s.collection(map[string]any{"name": "notes", "listRule": "title != ''", "viewRule": "", "createRule": "", "fields": []any{
			map[string]any{"name": "title", "type": "text"},
			map[string]any{"name": "body", "type": "text"},
			map[string]any{"name": "stars", "type": "number"},
		}, "indexes": []any{map[string]any{"name": "idx_notes_title", "columns": []string{"title"}}}})
		var ids []string
		for i := 0; i < 5; i++ {
			ids = append(ids, s.do("POST", "/api/collections/notes/records", "", map[string]any{"title": fmt.Sprintf("t%d", i), "body": "b", "stars": i}).status(200).str("id"))
		}
		fields := col["fields"].([]any)
		// Rename title -> heading (same id), drop body, add tags; rename the collection.
		var next []any
		for _, f := range fields {
			fm := f.(map[string]any)
			switch fm["name"] {
			case "title":
				fm["name"] = "heading"
				next = append(next, fm)
			case "body":
			default:
				next = append(next, fm)
			}
		}
		next = append(next, map[string]any{"name": "tags", "type": "select", "values": []string{"x", "y"}, "maxSelect": 2})
		// The list rule references the old name: the change must be refused
		// until the rule follows.
		r := s.do("PATCH", "/api/collections/notes", s.su, map[string]any{"name": "memos", "fields": next}).status(400)
		if r.fieldErr("listRule") != "validation_invalid_rule" {
			t.Fatalf("rule check: %s", r.raw)
		}
		s.do("GET", "/api/collections/notes/records/"+ids[0], "", nil).status(200)
		s.do("PATCH", "/api/collections/notes", s.su, map[string]any{"name": "memos", "fields": next, "listRule": "heading != ''"}).status(200)
		s.do("GET", "/api/collections/notes/records", "", nil).status(404)
		list := s.do("GET", "/api/collections/memos/records?sort=stars", "", nil).status(200)
		items := list.items()
		if len(items) != 5 {
			t.Fatalf("items %d", len(items))
		}
		for i, it := range items {
			if it["heading"] != fmt.Sprintf("t%d", i) || it["stars"] != float64(i) || it["id"] != ids[i] {
				t.Errorf("item %d after rename: %v", i, it)
			}
			if _, ok := it["body"]; ok {
				t.Errorf("dropped field still returned")
			}
			if _, ok := it["tags"]; !ok {
				t.Errorf("new field missing")
			}
		}
		// Swap two names in one change.
		col = s.do("GET", "/api/collections/memos", s.su, nil).status(200).body
		fields = col["fields"].([]any)
		for _, f := range fields {
			fm := f.(map[string]any)
			switch fm["name"] {
			case "heading":
				fm["name"] = "stars2"
			case "stars":
				fm["name"] = "heading2"
			}
		}
		s.do("PATCH", "/api/collections/memos", s.su, map[string]any{"fields": fields, "listRule": "stars2 != ''"}).status(200)
		got := s.do("GET", "/api/collections/memos/records/"+ids[3], "", nil).status(200)
		if got.body["stars2"] != "t3" || got.body["heading2"] != 3.0 {
			t.Errorf("swap: %s", got.raw)
		}
		// Type changes are refused, data untouched.
		for _, f := range fields {
			fm := f.(map[string]any)
			if fm["name"] == "stars2" {
				fm["type"] = "number"
			}
		}
		s.do("PATCH", "/api/collections/memos", s.su, map[string]any{"fields": fields}).status(400)

		// Restart on the same data: everything is still there.
		s.app.Close()
		s2 := startServer(t, s.dataDir, s.dbURL)
		s2.su = s.su
		s2.do("GET", "/api/collections/memos/records/"+ids[4], "", nil).status(200)
	})
}
