// Package bench holds Plinth's Go benchmarks. They measure, never assert:
// run `go test ./bench -bench . -benchmem` and compare with benchstat.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/plinthhq/plinth"
	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/sqlite"
)

func benchSchema() (*schema.Snapshot, *schema.Collection) {
	users := &schema.Collection{ID: "users", Name: "users", Type: schema.TypeAuth}
	schema.PrepareNew(users)
	users.Fields = append(users.Fields, &schema.Field{Name: "handle", Type: schema.FieldText})
	posts := &schema.Collection{ID: "posts", Name: "posts", Type: schema.TypeBase, Fields: []*schema.Field{
		{Name: "author", Type: schema.FieldRelation, CollectionID: "users"},
		{Name: "text", Type: schema.FieldText},
		{Name: "tags", Type: schema.FieldSelect, Values: []string{"a", "b"}, MaxSelect: 2},
	}}
	schema.PrepareNew(posts)
	return schema.NewSnapshot(1, []*schema.Collection{users, posts}), posts
}

// BenchmarkFilterCompile measures parse + compile of a typical list rule
// combined with a client filter.
func BenchmarkFilterCompile(b *testing.B) {
	snap, posts := benchSchema()
	env := &rules.Env{Snapshot: snap, Trusted: true, Auth: map[string]any{"id": "u1"}, AuthCollection: snap.Get("users")}
	src := `(author = @request.auth.id || author.handle ~ "ana") && tags ?= "a" && created >= @todayStart && text != ""`
	b.ReportAllocs()
	for b.Loop() {
		bl := sqldb.NewBuilder(sqlite.Dialect{})
		if _, err := rules.CompileString(bl, posts, "r", src, env, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// app starts Plinth on a temp SQLite file with n seeded posts.
func app(b *testing.B, n int) (http.Handler, []string) {
	b.Helper()
	a, err := plinth.New(context.Background(), plinth.Config{DataDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SQLiteSynchronous: "NORMAL", PasswordHashing: plinth.HashParams{MemoryKiB: 512, Iterations: 1}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	h := a.Handler()
	if err := a.UpsertSuperuser(context.Background(), "b@example.com", "bench-password"); err != nil {
		b.Fatal(err)
	}
	tok := call(b, h, "POST", "/api/superusers/auth-with-password", "", `{"identity":"b@example.com","password":"bench-password"}`)["token"].(string)
	call(b, h, "POST", "/api/collections", tok, `{"name":"posts","listRule":"","viewRule":"","createRule":"",
		"fields":[{"name":"text","type":"text"},{"name":"likes","type":"number"},{"name":"author","type":"text"}],
		"indexes":[{"name":"idx_posts_created","columns":["created"]},{"name":"idx_posts_author","columns":["author"]}]}`)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = call(b, h, "POST", "/api/collections/posts/records", "", fmt.Sprintf(`{"text":"post %d","likes":%d,"author":"a%d"}`, i, i%100, i%50))["id"].(string)
	}
	return h, ids
}

func call(b *testing.B, h http.Handler, method, path, token, body string) map[string]any {
	req := httptest.NewRequest(method, path, bytes.NewReader([]byte(body)))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body.String())
	}
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return out
}

func BenchmarkRecordGet(b *testing.B) {
	h, ids := app(b, 2000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		call(b, h, "GET", "/api/collections/posts/records/"+ids[i%len(ids)], "", "")
		i++
	}
}

func BenchmarkRecordList(b *testing.B) {
	h, _ := app(b, 2000)
	for _, c := range []struct{ name, query string }{
		{"newest20", "sort=-created&perPage=20"},
		{"filtered", "perPage=20&sort=-likes&filter=" + url.QueryEscape(`author = "a7" && likes > 10`)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				call(b, h, "GET", "/api/collections/posts/records?"+c.query, "", "")
			}
		})
	}
}
