package rules

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/sqldb/postgres"
	"github.com/plinthhq/plinth/internal/sqldb/sqlite"
)

// fuzzSchema is a small collection with every storage class and a relation.
func fuzzSchema() (*schema.Snapshot, *schema.Collection) {
	users := &schema.Collection{ID: "users", Name: "users", Type: schema.TypeAuth}
	schema.PrepareNew(users)
	posts := &schema.Collection{ID: "posts", Name: "posts", Type: schema.TypeBase, Fields: []*schema.Field{
		{Name: "title", Type: schema.FieldText},
		{Name: "n", Type: schema.FieldNumber},
		{Name: "ok", Type: schema.FieldBool},
		{Name: "data", Type: schema.FieldJSON},
		{Name: "tags", Type: schema.FieldSelect, Values: []string{"a", "b"}, MaxSelect: 2},
		{Name: "author", Type: schema.FieldRelation, CollectionID: "users"},
		{Name: "parent", Type: schema.FieldRelation, CollectionID: "posts"},
	}}
	schema.PrepareNew(posts)
	return schema.NewSnapshot(1, []*schema.Collection{users, posts}), posts
}

// FuzzParse checks the parser never panics, round-trips through Format,
// and that compiled SQL contains no input text outside bind arguments:
// every identifier in the SQL is one the schema defines.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`a = 1`, `title ~ "x" && (n > 2 || ok = true)`, `tags ?= "a"`, `author.email = @request.auth.email`,
		`parent.parent.title != ""`, `data.x.y = 5`, `@request.body.title:isset = true`, `tags:length > 1`,
		`created >= @todayStart`, `"x" = 'y'`, `title = "'; DROP TABLE posts; --"`, `((((a=1))))`, `a = -0.5e`,
		`@collection.users.id ?= author`, "title = \"\x00\"", `title:lower = "x"`, `n = null || data = null`,
		`title @@ "dune arrakis"`, `title @@ '"x" * NEAR -y'`,
	} {
		f.Add(s)
	}
	snap, posts := fuzzSchema()
	env := &Env{Snapshot: snap, Trusted: true, Auth: map[string]any{"id": "u1", "email": "x"}, AuthCollection: snap.Get("users"),
		Body: map[string]any{"title": "t", "tags": []any{"a"}}}
	allowed := map[string]bool{}
	for _, c := range snap.All() {
		allowed[c.Name] = true
		for _, fl := range c.Fields {
			allowed[fl.Name] = true
		}
	}
	allowed["id"] = true
	// The compiler's own SQL literals, collected from fixed probes that
	// exercise every construct; any other literal would carry input text.
	literals := map[string]bool{}
	for _, probe := range []string{`data.x = 5`, `data.x = "s"`, `data = null`, `title = null`, `title ~ "x"`, `title ~ n`, `title @@ "x y"`,
		`tags ?= "a"`, `tags = "a"`, `tags:length > 1`, `@request.body.tags ?= title`, `parent.title = "x"`, `n = "x"`, `ok = 1`} {
		for _, d := range []sqldb.Dialect{sqlite.Dialect{}, postgres.Dialect{}} {
			b := sqldb.NewBuilder(d)
			res, err := CompileString(b, posts, "r", probe, env, nil)
			if err != nil {
				f.Fatalf("probe %q: %v", probe, err)
			}
			sql, _ := b.Render(res.SQL)
			for _, lit := range sqlLiterals(sql) {
				if !strings.HasPrefix(lit, "$.") && !strings.HasPrefix(lit, "{") {
					literals[lit] = true
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := Parse(in)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(in) {
				t.Fatalf("bad error %v for %q", err, in)
			}
			return
		}
		if e == nil {
			return
		}
		out := Format(e)
		if len(out) > MaxLength {
			return // escaping can lengthen a valid input past the limit
		}
		e2, err := Parse(out)
		if err != nil {
			t.Fatalf("Format output %q does not parse: %v (input %q)", out, err, in)
		}
		if Format(e2) != out {
			t.Fatalf("Format unstable: %q vs %q", Format(e2), out)
		}
		for _, d := range []sqldb.Dialect{sqlite.Dialect{}, postgres.Dialect{}} {
			b := sqldb.NewBuilder(d)
			res, err := Compile(b, posts, "r", e, env, nil)
			if err != nil {
				var ce *CompileError
				if !errors.As(err, &ce) {
					t.Fatalf("compile error of unexpected type %T: %v", err, err)
				}
				continue
			}
			sql, _ := b.Render(res.SQL)
			checkSQL(t, sql, allowed, literals, in)
		}
	})
}

// checkSQL verifies every quoted identifier in sql is a schema name and no
// string literal other than the compiler's own constants appears.
func checkSQL(t *testing.T, sql string, allowed, compilerLiterals map[string]bool, in string) {
	t.Helper()
	if !utf8.ValidString(sql) && utf8.ValidString(in) {
		t.Fatalf("invalid UTF-8 in SQL")
	}
	for i := 0; i < len(sql); i++ {
		switch sql[i] {
		case '"':
			j := strings.IndexByte(sql[i+1:], '"')
			if j < 0 {
				t.Fatalf("unterminated identifier in %s", sql)
			}
			if id := sql[i+1 : i+1+j]; !allowed[id] {
				t.Fatalf("identifier %q not from the schema in %s (input %q)", id, sql, in)
			}
			i += j + 1
		case '\'':
			j := strings.IndexByte(sql[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated literal in %s", sql)
			}
			lit := sql[i+1 : i+1+j]
			if !compilerLiterals[lit] && !strings.HasPrefix(lit, "$.") && !strings.HasPrefix(lit, "{") {
				t.Fatalf("literal %q in %s (input %q)", lit, sql, in)
			}
			if strings.HasPrefix(lit, "$.") || strings.HasPrefix(lit, "{") {
				// JSON paths are built from identifier-shaped segments only.
				for _, r := range strings.Trim(lit, "${}.") {
					if !(r == '.' || r == '"' || r == ',' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
						t.Fatalf("JSON path %q carries input text", lit)
					}
				}
			}
			i += j + 1
		}
	}
}

// sqlLiterals lists the single-quoted literals of sql.
func sqlLiterals(sql string) []string {
	var out []string
	for {
		i := strings.IndexByte(sql, '\'')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(sql[i+1:], '\'')
		if j < 0 {
			return out
		}
		out = append(out, sql[i+1:i+1+j])
		sql = sql[i+j+2:]
	}
}
