package tests

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/plinthhq/plinth"
)

// Hooks registered through the Go API apply to requests through HTTP:
// before hooks change or veto writes, after hooks see committed state in
// order (cascaded deletes included), and custom routes see the caller.
func TestHooksThroughHTTP(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "listRule": "", "viewRule": ""})
		anaID, ana := s.user("users", "ana@example.com", nil)
		s.collection(map[string]any{"name": "notes", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
			"fields": []any{map[string]any{"name": "text", "type": "text"}, map[string]any{"name": "author", "type": "relation", "collectionId": "users", "cascadeDelete": true},
				map[string]any{"name": "locked", "type": "bool"}}})
		var mu sync.Mutex
		var changes []string
		s.app.OnRecordChange("*", func(c plinth.Change) {
			mu.Lock()
			changes = append(changes, c.Action+":"+c.Record.Collection.Name)
			mu.Unlock()
		})
		s.app.OnRecordCreate("notes", func(e *plinth.RecordEvent) error {
			if e.Caller.Auth != nil {
				e.Values["author"] = e.Caller.Auth.ID() // stamped by the server
			}
			return nil
		})
		s.app.OnRecordUpdate("notes", func(e *plinth.RecordEvent) error {
			if e.Original != nil && e.Original.Values["locked"] == true {
				return &plinth.Error{Status: http.StatusConflict, Message: "This note is locked."}
			}
			return nil
		})
		s.app.OnRecordDelete("*", func(e *plinth.RecordEvent) error {
			if e.Collection.Name == "users" && e.Original != nil && e.Original.String("email") == "keep@example.com" {
				return errors.New("this account is kept")
			}
			return nil
		})
		id := s.do("POST", "/api/collections/notes/records", ana, map[string]any{"text": "hi", "author": "someone-else"}).status(200).str("id")
		if got := s.do("GET", "/api/collections/notes/records/"+id, "", nil).status(200).body["author"]; got != anaID {
			t.Errorf("author = %v, want the caller stamped by the hook", got)
		}
		s.do("PATCH", "/api/collections/notes/records/"+id, "", map[string]any{"locked": true}).status(200)
		if r := s.do("PATCH", "/api/collections/notes/records/"+id, "", map[string]any{"text": "changed"}); r.code != 409 || r.str("message") != "This note is locked." {
			t.Errorf("update of a locked note: %d %s", r.code, r.raw)
		}
		keepID, _ := s.user("users", "keep@example.com", nil)
		if r := s.do("DELETE", "/api/collections/users/records/"+keepID, s.su, nil); r.code != 400 || r.str("message") != "this account is kept" {
			t.Errorf("vetoed delete: %d %s", r.code, r.raw)
		}
		s.do("DELETE", "/api/collections/users/records/"+anaID, s.su, nil).status(204) // cascades to the note
		mu.Lock()
		defer mu.Unlock()
		want := []string{"create:notes", "update:notes", "create:users"} // ana was created before the hook
		if len(changes) < len(want)+2 {
			t.Fatalf("changes %v", changes)
		}
		for i, w := range want {
			if changes[i] != w {
				t.Errorf("change %d = %s, want %s (all: %v)", i, changes[i], w, changes)
			}
		}
		rest := changes[len(want):]
		if !(len(rest) == 2 && ((rest[0] == "delete:users" && rest[1] == "delete:notes") || (rest[0] == "delete:notes" && rest[1] == "delete:users"))) {
			t.Errorf("cascade changes %v, want the user's and the note's deletes", rest)
		}
	})
}

// Go migrations run once each, in order, across restarts; one that fails
// stops the start and runs again on the next.
func TestGoMigrations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		runs := 0
		fail := true
		migrations := []plinth.Migration{
			{Name: "0001_tags", Up: func(ctx context.Context, app *plinth.App) error {
				runs++
				_, err := app.CreateCollection(ctx, []byte(`{"name":"tags","listRule":"","fields":[{"name":"label","type":"text"}]}`))
				if err == nil {
					_, err = app.Records().Create(ctx, nil, "tags", map[string]any{"label": "first"})
				}
				return err
			}},
			{Name: "0002_flaky", Up: func(ctx context.Context, app *plinth.App) error {
				if fail {
					return errors.New("not yet")
				}
				_, err := app.Records().Create(ctx, nil, "tags", map[string]any{"label": "second"})
				return err
			}},
		}
		with := func(c *plinth.Config) { c.Migrations = migrations }
		s.app.Close()
		if _, err := plinth.New(context.Background(), plinth.Config{DataDir: s.dataDir, DB: s.dbURL, Migrations: migrations, FileSweepInterval: -1}); err == nil || !strings.Contains(err.Error(), "0002_flaky") {
			t.Fatalf("a failing migration must stop the start: %v", err)
		}
		fail = false
		n := startServerWith(t, s.dataDir, s.dbURL, with)
		// Another start on the same data: a restart (SQLite) or another node.
		dir := s.dataDir
		if s.dbURL != "" {
			dir = t.TempDir()
		}
		m := startServerWith(t, dir, s.dbURL, with)
		if runs != 1 {
			t.Errorf("0001 ran %d times, want once", runs)
		}
		for _, node := range []*server{n, m} {
			if got := node.do("GET", "/api/collections/tags/records?sort=label", "", nil).status(200).items(); len(got) != 2 || got[0]["label"] != "first" || got[1]["label"] != "second" {
				t.Errorf("tags: %v", got)
			}
		}
	})
}
