// Command hooks shows Plinth used as a Go framework: the whole backend,
// plus a hook that stamps the author of every post and refuses empty
// ones, an after-commit hook that logs, and a custom route that answers
// with the caller's own posts.
//
//	go run ./examples/hooks            # then: curl http://127.0.0.1:8090/api/me/posts
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/plinthhq/plinth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	app, err := plinth.New(ctx, plinth.Config{DataDir: "./plinth_data"})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()

	app.OnRecordCreate("posts", func(e *plinth.RecordEvent) error {
		if strings.TrimSpace(stringValue(e.Values["text"])) == "" {
			return &plinth.Error{Status: http.StatusBadRequest, Message: "A post needs some text."}
		}
		if e.Caller.Auth == nil {
			return errors.New("sign in to post")
		}
		e.Values["author"] = e.Caller.Auth.ID()
		return nil
	})
	app.OnRecordChange("posts", func(c plinth.Change) {
		log.Printf("post %s: %s", c.Action, c.Record.ID())
	})
	app.Handle("GET /api/me/posts", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := plinth.CallerFrom(r)
		if caller.Auth == nil {
			http.Error(w, `{"status":401,"message":"Sign in first.","data":{}}`, http.StatusUnauthorized)
			return
		}
		page, err := app.Records().List(r.Context(), caller, "posts", plinth.ListQuery{
			Filter: "author = @request.auth.id", Sort: "-created", PerPage: 20,
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"count": len(page.Items)})
	}))
	if err := app.Serve(ctx, ""); err != nil {
		log.Fatal(err)
	}
}

func stringValue(v any) string { s, _ := v.(string); return s }
