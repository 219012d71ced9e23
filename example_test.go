package plinth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/plinthhq/plinth"
)

// newExampleApp starts Plinth on a throwaway data directory with a posts
// collection anyone may create in.
func newExampleApp() (*plinth.App, func()) {
	dir, _ := os.MkdirTemp("", "plinth-example")
	app, err := plinth.New(context.Background(), plinth.Config{DataDir: dir, FileSweepInterval: -1})
	if err != nil {
		panic(err)
	}
	body := `{"name":"posts","listRule":"","viewRule":"","createRule":"","fields":[{"name":"title","type":"text","required":true},{"name":"slug","type":"text"}]}`
	if _, err := app.CreateCollection(context.Background(), []byte(body)); err != nil {
		panic(err)
	}
	return app, func() { app.Close(); os.RemoveAll(dir) }
}

// A before-create hook can change what is written or refuse the write.
func ExampleApp_OnRecordCreate() {
	app, done := newExampleApp()
	defer done()
	app.OnRecordCreate("posts", func(e *plinth.RecordEvent) error {
		title, _ := e.Values["title"].(string)
		if strings.Contains(title, "spam") {
			return errors.New("no spam, please")
		}
		e.Values["slug"] = strings.ReplaceAll(strings.ToLower(title), " ", "-")
		return nil
	})
	ctx := context.Background()
	rec, err := app.Records().Create(ctx, nil, "posts", map[string]any{"title": "Hello World"})
	fmt.Println(rec.String("slug"), err)
	_, err = app.Records().Create(ctx, nil, "posts", map[string]any{"title": "buy spam"})
	var perr *plinth.Error
	fmt.Println(errors.As(err, &perr), perr.Status, perr.Message)
	// Output:
	// hello-world <nil>
	// true 400 no spam, please
}

// After-commit hooks see every committed change, in commit order.
func ExampleApp_OnRecordChange() {
	app, done := newExampleApp()
	defer done()
	seen := make(chan string, 1)
	app.OnRecordChange("posts", func(c plinth.Change) { seen <- c.Action + " " + c.Record.String("title") })
	app.Records().Create(context.Background(), nil, "posts", map[string]any{"title": "first"})
	fmt.Println(<-seen)
	// Output: create first
}

// A custom route runs behind the same middleware as the API and can use
// the caller's rules through Records.
func ExampleApp_Handle() {
	app, done := newExampleApp()
	defer done()
	app.Handle("GET /api/hello/{name}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := plinth.CallerFrom(r)
		page, err := app.Records().List(r.Context(), caller, "posts", plinth.ListQuery{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "hello %s, %d posts", r.PathValue("name"), page.TotalItems)
	}))
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/hello/ana")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(b))
	// Output: 200 hello ana, 0 posts
}

// File migrations: a directory of NNNN_name.json files, each with up and
// down steps, applied once each and recorded in _migrations.
func ExampleApp_MigrateUp() {
	app, done := newExampleApp()
	defer done()
	dir, _ := os.MkdirTemp("", "plinth-migrations")
	defer os.RemoveAll(dir)
	path, _ := plinth.CreateMigrationFile(dir, "tags")
	os.WriteFile(path, []byte(`{"up":[{"createCollection":{"name":"tags","fields":[{"name":"label","type":"text"}]}}],"down":[{"deleteCollection":"tags"}]}`), 0o644)
	applied, err := app.MigrateUp(context.Background(), dir, 0)
	fmt.Println(applied, err)
	st, _ := app.MigrationStatus(context.Background(), dir)
	fmt.Println(st[0].Name, st[0].Applied)
	reverted, err := app.MigrateDown(context.Background(), dir, 1)
	fmt.Println(reverted, err)
	// Output:
	// [0001_tags] <nil>
	// 0001_tags true
	// [0001_tags] <nil>
}
