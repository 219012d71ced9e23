package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/sqlite"
)

// TestEvalAgreesWithSQL is a differential test: for random records and
// random filters, every answer the in-memory evaluator claims to decide
// must equal what the compiled SQL returns on a real SQLite database.
// Realtime delivery relies on this to never show a record the REST API
// would hide.
func TestEvalAgreesWithSQL(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(t.TempDir(), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := &schema.Collection{ID: "items", Name: "items", Type: schema.TypeBase, Fields: []*schema.Field{
		{Name: "title", Type: schema.FieldText},
		{Name: "n", Type: schema.FieldNumber},
		{Name: "ok", Type: schema.FieldBool},
		{Name: "tags", Type: schema.FieldSelect, Values: []string{"a", "b", "c"}, MaxSelect: 3},
		{Name: "owner", Type: schema.FieldText},
	}}
	schema.PrepareNew(c)
	snap := schema.NewSnapshot(1, []*schema.Collection{c})
	if _, err := db.Write.Exec(sqldb.CreateTable(db.Dialect, c)); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"", "a", "b", "Go", "go", "x_y", "10", "5", "abc"}
	var recs []map[string]any
	for i := 0; i < 60; i++ {
		tags := []string{}
		for _, tg := range []string{"a", "b", "c"} {
			if r.IntN(3) == 0 {
				tags = append(tags, tg)
			}
		}
		rec := map[string]any{"id": fmt.Sprintf("rec%03d", i), "title": words[r.IntN(len(words))], "n": float64(r.IntN(12) - 2),
			"ok": r.IntN(2) == 0, "tags": tags, "owner": []string{"", "u1", "u2"}[r.IntN(3)], "created": "", "updated": ""}
		recs = append(recs, rec)
		if _, err := db.Write.Exec(`INSERT INTO items (id, title, n, ok, tags, owner, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', '')`,
			rec["id"], rec["title"], rec["n"], rec["ok"], schema.EncodeList(tags), rec["owner"]); err != nil {
			t.Fatal(err)
		}
	}
	operands := []string{`title`, `n`, `ok`, `tags`, `owner`, `title:lower`, `tags:length`, `@request.auth.id`, `@request.body.t`,
		`"a"`, `"go"`, `"10"`, `"5"`, `""`, `5`, `0`, `-1`, `10`, `true`, `false`, `null`, `"%o%"`, `"x_y"`, `"g a"`, `"B"`, `"ab c"`}
	ops := []string{"=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?<", "?~", "@@"}
	leaf := func() string {
		return operands[r.IntN(len(operands))] + " " + ops[r.IntN(len(ops))] + " " + operands[r.IntN(len(operands))]
	}
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth == 0 || r.IntN(3) == 0 {
			return leaf()
		}
		op := " && "
		if r.IntN(2) == 0 {
			op = " || "
		}
		return "(" + gen(depth-1) + op + gen(depth-1) + ")"
	}
	envs := []*rules.Env{
		{Snapshot: snap, Trusted: true, Body: map[string]any{"t": []any{"a", "c"}}},
		{Snapshot: snap, Trusted: true, Auth: map[string]any{"id": "u1"}, AuthCollection: c, Body: map[string]any{"t": "go"}},
	}
	checked, decided := 0, 0
	for i := 0; i < 1500; i++ {
		src := gen(2)
		e, err := rules.Parse(src)
		if err != nil {
			t.Fatalf("generator made invalid %q: %v", src, err)
		}
		for _, env := range envs {
			b := sqldb.NewBuilder(db.Dialect)
			res, err := rules.Compile(b, c, "r", e, env, nil)
			if err != nil {
				continue // e.g. :length on a single-valued field
			}
			q, args := b.Render("SELECT r.id FROM items r WHERE " + res.SQL)
			rows, err := db.Read.QueryContext(ctx, q, args...)
			if err != nil {
				t.Fatalf("%s: %v\n%s", src, err, q)
			}
			inSQL := map[string]bool{}
			for rows.Next() {
				var id string
				rows.Scan(&id)
				inSQL[id] = true
			}
			rows.Close()
			for _, rec := range recs {
				vals := apiShaped(rec)
				got, ok := rules.Eval(c, e, vals, env)
				checked++
				if !ok {
					continue
				}
				decided++
				if got != inSQL[rec["id"].(string)] {
					j, _ := json.Marshal(rec)
					t.Fatalf("disagreement on %s\nrecord %s\nEval=%v SQL=%v\nSQL: %s", src, j, got, !got, q)
				}
			}
		}
	}
	if decided < checked/2 {
		t.Errorf("only %d of %d decided in memory", decided, checked)
	}
	t.Logf("%d evaluations, %d decided in memory, all agreeing with SQL", checked, decided)
}

func apiShaped(rec map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range rec {
		out[k] = v
	}
	return out
}
