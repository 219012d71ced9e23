package tests

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/plinthhq/plinth"
)

// pbExport is a schema in the shape PocketBase's "export collections"
// writes (system id field listed, SQL-string indexes, passwordAuth and the
// other auth keys, editor and autodate fields, a system collection), with
// posts listed before the users it refers to.
const pbExport = `[
  {"id": "pbc_1125843985", "name": "posts", "type": "base", "system": false,
   "listRule": "published = true || author = @request.auth.id", "viewRule": "published = true || author = @request.auth.id",
   "createRule": "@request.auth.id != '' && author = @request.auth.id", "updateRule": "author = @request.auth.id", "deleteRule": null,
   "fields": [
     {"autogeneratePattern": "[a-z0-9]{15}", "hidden": false, "id": "text3208210256", "max": 15, "min": 15, "name": "id", "pattern": "^[a-z0-9]+$", "presentable": false, "primaryKey": true, "required": true, "system": true, "type": "text"},
     {"autogeneratePattern": "", "hidden": false, "id": "text724990059", "max": 0, "min": 0, "name": "title", "pattern": "", "presentable": true, "primaryKey": false, "required": true, "system": false, "type": "text"},
     {"autogeneratePattern": "", "hidden": false, "id": "text2560465762", "max": 80, "min": 0, "name": "slug", "pattern": "^[a-z0-9-]+$", "presentable": false, "primaryKey": false, "required": false, "system": false, "type": "text"},
     {"hidden": false, "id": "number3128519540", "max": null, "min": 0, "name": "views", "onlyInt": false, "noDecimal": true, "presentable": false, "required": false, "system": false, "type": "number"},
     {"hidden": false, "id": "bool1748787223", "name": "published", "presentable": false, "required": false, "system": false, "type": "bool"},
     {"cascadeDelete": false, "collectionId": "_pb_users_auth_", "hidden": false, "id": "relation3182418120", "maxSelect": 1, "minSelect": 0, "name": "author", "presentable": false, "required": false, "system": false, "type": "relation"},
     {"convertURLs": false, "hidden": false, "id": "editor3685223346", "maxSize": 0, "name": "body", "presentable": false, "required": false, "system": false, "type": "editor"},
     {"hidden": false, "id": "date2862495610", "max": "", "min": "", "name": "due", "presentable": false, "required": false, "system": false, "type": "date"},
     {"hidden": false, "id": "autodate2990389176", "name": "created", "onCreate": true, "onUpdate": false, "presentable": false, "system": false, "type": "autodate"},
     {"hidden": false, "id": "autodate3332085495", "name": "updated", "onCreate": true, "onUpdate": true, "presentable": false, "system": false, "type": "autodate"}
   ],
   "indexes": ["CREATE UNIQUE INDEX ` + "`idx_posts_slug`" + ` ON ` + "`posts` (`slug`)" + ` WHERE ` + "`slug`" + ` != ''"]},
  {"id": "_pb_users_auth_", "name": "users", "type": "auth", "system": false,
   "listRule": "id = @request.auth.id", "viewRule": "id = @request.auth.id", "createRule": "", "updateRule": "id = @request.auth.id", "deleteRule": "id = @request.auth.id",
   "authRule": "", "manageRule": null,
   "authAlert": {"emailTemplate": {"body": "x", "subject": "y"}, "enabled": true},
   "oauth2": {"enabled": false, "mappedFields": {"avatarURL": "avatar", "id": "", "name": "name", "username": ""}, "providers": []},
   "passwordAuth": {"enabled": true, "identityFields": ["email"]},
   "mfa": {"duration": 1800, "enabled": false, "rule": ""},
   "otp": {"duration": 180, "emailTemplate": {"body": "x", "subject": "y"}, "enabled": true, "length": 8},
   "authToken": {"duration": 604800}, "passwordResetToken": {"duration": 1800}, "emailChangeToken": {"duration": 1800},
   "verificationToken": {"duration": 259200}, "fileToken": {"duration": 180},
   "verificationTemplate": {"body": "x", "subject": "y"}, "resetPasswordTemplate": {"body": "x", "subject": "y"}, "confirmEmailChangeTemplate": {"body": "x", "subject": "y"},
   "fields": [
     {"autogeneratePattern": "[a-z0-9]{15}", "hidden": false, "id": "text3208210256", "max": 15, "min": 15, "name": "id", "pattern": "^[a-z0-9]+$", "presentable": false, "primaryKey": true, "required": true, "system": true, "type": "text"},
     {"cost": 0, "hidden": true, "id": "password901924565", "max": 0, "min": 8, "name": "password", "pattern": "", "presentable": false, "required": true, "system": true, "type": "password"},
     {"autogeneratePattern": "[a-zA-Z0-9]{50}", "hidden": true, "id": "text2504183744", "max": 60, "min": 30, "name": "tokenKey", "pattern": "", "presentable": false, "primaryKey": false, "required": true, "system": true, "type": "text"},
     {"exceptDomains": null, "hidden": false, "id": "email3885137012", "name": "email", "onlyDomains": null, "presentable": false, "required": true, "system": true, "type": "email"},
     {"hidden": false, "id": "bool1547992806", "name": "emailVisibility", "presentable": false, "required": false, "system": true, "type": "bool"},
     {"hidden": false, "id": "bool256245529", "name": "verified", "presentable": false, "required": false, "system": true, "type": "bool"},
     {"autogeneratePattern": "", "hidden": false, "id": "text1579384326", "max": 255, "min": 0, "name": "name", "pattern": "", "presentable": false, "primaryKey": false, "required": false, "system": false, "type": "text"},
     {"hidden": false, "id": "file376926767", "maxSelect": 1, "maxSize": 0, "mimeTypes": ["image/jpeg", "image/png"], "name": "avatar", "presentable": false, "protected": false, "required": false, "system": false, "thumbs": null, "type": "file"},
     {"hidden": false, "id": "autodate2990389176", "name": "created", "onCreate": true, "onUpdate": false, "presentable": false, "system": false, "type": "autodate"},
     {"hidden": false, "id": "autodate3332085495", "name": "updated", "onCreate": true, "onUpdate": true, "presentable": false, "system": false, "type": "autodate"}
   ],
   "indexes": ["CREATE UNIQUE INDEX ` + "`idx_tokenKey__pb_users_auth_`" + ` ON ` + "`users` (`tokenKey`)" + `", "CREATE UNIQUE INDEX ` + "`idx_email__pb_users_auth_`" + ` ON ` + "`users` (`email`)" + ` WHERE ` + "`email`" + ` != ''"]},
  {"id": "pbc_3142635823", "name": "_superusers", "type": "auth", "system": true, "fields": [], "indexes": []}
]`

// PocketBase's collection definitions import as they are: PUT
// /api/collections/import (and POST /api/collections) take its export,
// the imported schema enforces what it says (rules, unique index, integer
// numbers, OTP options), re-importing changes nothing, an export read
// back imports unchanged, and what cannot be carried over is refused
// naming the collection.
func TestPocketBaseCollectionImport(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		var defs []any
		if err := json.Unmarshal([]byte(pbExport), &defs); err != nil {
			t.Fatal(err)
		}
		s.do("PUT", "/api/collections/import", "", map[string]any{"collections": defs}).status(403)
		s.do("PUT", "/api/collections/import", s.su, map[string]any{"collections": defs}).status(204)

		posts := s.do("GET", "/api/collections/posts", s.su, nil).status(200).body
		var names []string
		for _, f := range posts["fields"].([]any) {
			names = append(names, f.(map[string]any)["name"].(string))
		}
		if strings.Join(names, ",") != "id,title,slug,views,published,author,body,due,created,updated" {
			t.Errorf("posts fields: %v", names)
		}
		if posts["id"] != "pbc_1125843985" {
			t.Errorf("collection id not kept: %v", posts["id"])
		}
		m := s.do("GET", "/api/collections/users/auth-methods", "", nil).status(200).body
		if otp := m["otp"].(map[string]any); otp["enabled"] != true || otp["duration"] != 180.0 {
			t.Errorf("otp options: %v", otp)
		}

		// The schema works and enforces what it says.
		anaID, ana := s.user("users", "ana@example.com", map[string]any{"name": "Ana"})
		_, bob := s.user("users", "bob@example.com", nil)
		p := "/api/collections/posts/records"
		s.do("POST", p, "", map[string]any{"title": "x", "author": anaID}).status(403) // createRule
		s.do("POST", p, ana, map[string]any{"title": "Draft", "slug": "draft", "author": anaID}).status(200)
		s.do("POST", p, ana, map[string]any{"title": "Hello", "slug": "hello", "author": anaID, "published": true, "views": 3, "body": "<p>hi</p>"}).status(200)
		if r := s.do("POST", p, ana, map[string]any{"title": "Again", "slug": "hello", "author": anaID}).status(400); r.fieldErr("slug") == "" {
			t.Errorf("unique slug: %s", r.raw)
		}
		s.do("POST", p, ana, map[string]any{"title": "Two", "slug": "", "author": anaID}).status(200)
		s.do("POST", p, ana, map[string]any{"title": "Three", "slug": "", "author": anaID}).status(200) // the unique index skips ''
		if r := s.do("POST", p, ana, map[string]any{"title": "Frac", "author": anaID, "views": 1.5}).status(400); r.fieldErr("views") == "" {
			t.Errorf("noDecimal: %s", r.raw)
		}
		if n := len(s.do("GET", p, bob, nil).status(200).items()); n != 1 {
			t.Errorf("bob sees %d posts, want the published one", n)
		}

		// Re-importing, and importing the export read back, change nothing.
		s.do("PUT", "/api/collections/import", s.su, map[string]any{"collections": defs}).status(204)
		export := s.do("GET", "/api/collections?perPage=500", s.su, nil).status(200).body["items"]
		before, _ := json.Marshal(export)
		s.do("PUT", "/api/collections/import", s.su, map[string]any{"collections": export}).status(204)
		after := s.do("GET", "/api/collections?perPage=500", s.su, nil).status(200).body["items"]
		if !sameDefinitions(t, export, after) {
			t.Errorf("re-import changed the schema:\nbefore %s\nafter  %v", before, after)
		}
		if n := len(s.do("GET", p, ana, nil).status(200).items()); n != 4 {
			t.Errorf("ana's posts after re-import: %d", n)
		}

		// One collection in PocketBase's shape through POST /api/collections.
		one := map[string]any{"name": "tags", "type": "base", "listRule": "", "fields": []any{
			map[string]any{"id": "text1", "name": "id", "type": "text", "system": true, "primaryKey": true, "autogeneratePattern": "[a-z0-9]{15}"},
			map[string]any{"id": "text2", "name": "label", "type": "text", "max": 0, "min": 0, "presentable": true},
		}, "indexes": []string{"CREATE UNIQUE INDEX idx_tags_label ON tags (label)"}}
		s.collection(one)
		s.do("POST", "/api/collections/tags/records", s.su, map[string]any{"label": "go"}).status(200)
		s.do("POST", "/api/collections/tags/records", s.su, map[string]any{"label": "go"}).status(400)

		// Refused clearly, naming the collection and the key.
		bad := []struct {
			name string
			def  map[string]any
			key  string
		}{
			{"expression index", map[string]any{"name": "b1", "fields": []any{map[string]any{"name": "t", "type": "text"}}, "indexes": []string{"CREATE INDEX ix_b1 ON b1 (lower(t))"}}, "indexes.0"},
			{"auth rule", map[string]any{"name": "b2", "type": "auth", "authRule": "name != ''", "passwordAuth": map[string]any{"enabled": true}}, "authRule"},
			{"password login off", map[string]any{"name": "b3", "type": "auth", "passwordAuth": map[string]any{"enabled": false}}, "passwordAuth"},
			{"autogenerate", map[string]any{"name": "b4", "fields": []any{map[string]any{"name": "code", "type": "text", "autogeneratePattern": "[a-z]{5}"}}}, "fields.0"},
		}
		for _, tc := range bad {
			r := s.do("PUT", "/api/collections/import", s.su, map[string]any{"collections": []any{tc.def}}).status(400)
			if !strings.Contains(r.str("message"), tc.def["name"].(string)) || r.fieldErr(tc.key) == "" {
				t.Errorf("%s: %s", tc.name, r.raw)
			}
		}
		// deleteMissing drops what the import does not list (system ones stay).
		s.do("PUT", "/api/collections/import", s.su, map[string]any{"collections": defs[1:], "deleteMissing": true}).status(204)
		s.do("GET", "/api/collections/posts", s.su, nil).status(404)
		s.do("GET", "/api/collections/tags", s.su, nil).status(404)
		s.do("GET", "/api/collections/users", s.su, nil).status(200)
		s.do("GET", "/api/collections/_superusers", s.su, nil).status(200)
	})
}

// Into a new database (which starts with its own users collection), a
// PocketBase export updates that users collection in place and points
// the relations to PocketBase's users id at it.
func TestPocketBaseImportOverDefaultUsers(t *testing.T) {
	forEachEngineWith(t, func(c *plinth.Config) { c.NoUsersCollection = false }, func(t *testing.T, s *server) {
		var defs []any
		json.Unmarshal([]byte(pbExport), &defs)
		usersID := s.do("GET", "/api/collections/users", s.su, nil).status(200).str("id")
		s.do("PUT", "/api/collections/import", s.su, map[string]any{"collections": defs}).status(204)
		if id := s.do("GET", "/api/collections/users", s.su, nil).status(200).str("id"); id != usersID {
			t.Errorf("users id %s, want the local %s", id, usersID)
		}
		for _, f := range s.do("GET", "/api/collections/posts", s.su, nil).status(200).body["fields"].([]any) {
			if fm := f.(map[string]any); fm["name"] == "author" && fm["collectionId"] != usersID {
				t.Errorf("author points at %v", fm["collectionId"])
			}
		}
		anaID, ana := s.user("users", "ana@example.com", nil)
		s.do("POST", "/api/collections/posts/records", ana, map[string]any{"title": "Hi", "author": anaID}).status(200)
		s.do("PUT", "/api/collections/import", s.su, map[string]any{"collections": defs}).status(204) // again: no change
	})
}

// sameDefinitions compares two collection lists, ignoring timestamps.
func sameDefinitions(t *testing.T, a, b any) bool {
	norm := func(v any) string {
		list, _ := v.([]any)
		for _, c := range list {
			cm := c.(map[string]any)
			delete(cm, "created")
			delete(cm, "updated")
		}
		j, _ := json.Marshal(list)
		return string(j)
	}
	return norm(a) == norm(b)
}
