package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// adminURL is where test databases are created; PLINTH_TEST_PG overrides.
func adminURL() string { return TestAdminURL() }

var probe struct {
	once sync.Once
	err  error
}

// requirePG skips the test when no server answers, except under CI where
// a missing server must fail the run rather than pass it silently.
func requirePG(t *testing.T) {
	t.Helper()
	probe.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL())
		if err == nil {
			c.Close(ctx)
		}
		probe.err = err
	})
	if probe.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unavailable under CI: %v", probe.err)
		}
		t.Skipf("PostgreSQL unavailable: %v", probe.err)
	}
}

// freshDB opens a new, empty database that is dropped after the test.
func freshDB(t *testing.T, o Options) (*sqldb.DB, string) {
	t.Helper()
	requirePG(t)
	ctx := context.Background()
	u, drop, err := CreateTestDatabase(ctx, adminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("drop: %v", err)
		}
	})
	db, err := Open(ctx, u, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, u
}

func TestOpenErrorsNeverShowPassword(t *testing.T) {
	cases := []struct {
		name, url, want string
		secrets         []string
	}{
		{"unreachable port", "postgres://u:sekret123@127.0.0.1:1/x", "postgres: cannot connect to 127.0.0.1:1/x as u: ", nil},
		{"malformed host", "postgres://u:sekret123@[::1/x", "postgres: invalid database URL: ", nil},
		{"bad sslmode", "postgres://u:sekret123@127.0.0.1:5432/x?sslmode=bogus", "postgres: invalid database URL: ", nil},
		{"bad port", "postgres://u:sekret123@127.0.0.1:99999999/x", "postgres: invalid database URL: ", nil},
		{"bad escape", "postgres://u:sekret123%zz@127.0.0.1:1/x", "postgres: invalid database URL: ", nil},
		{"encoded password", "postgres://u:sek%40ret123@127.0.0.1:1/x", "cannot connect to 127.0.0.1:1/x as u", []string{"sek@ret123", "sek%40ret123"}},
		{"password in query", "postgres://u@127.0.0.1:1/x?password=sekret123", "cannot connect to 127.0.0.1:1/x as u", nil},
		{"keyword DSN", "host=127.0.0.1 port=1 user=u password=sekret123 dbname=x", "cannot connect to 127.0.0.1:1/x as u", nil},
		{"quoted keyword", "host=127.0.0.1 port=1 user=u password='sekret123 two' dbname=x", "cannot connect to 127.0.0.1:1/x as u", []string{"two"}},
		{"broken keyword DSN", "host=127.0.0.1 password=sekret123 port=abc", "postgres: invalid database URL: ", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, err := Open(context.Background(), c.url, Options{ConnectTimeout: time.Second})
			if err == nil {
				db.Close()
				t.Fatal("no error")
			}
			t.Logf("%v", err)
			for _, s := range append([]string{"sekret123"}, c.secrets...) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows %q: %v", s, err)
				}
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	cases := []struct{ msg, conn, pw string }{
		{`parse "postgres://u:p4ss@h/x": bad`, "postgres://u:p4ss@h/x", ""},
		{"dial failed for p4ss", "postgres://u@h/x", "p4ss"},
		{"cannot parse `host=h password=p4ss`", "host=h password=p4ss", ""},
		{"echo 'p4 ss'", "host=h password='p4 ss'", ""},
		{"echo p%404ss and p@4ss", "postgres://u:p%404ss@h/x", ""},
		{"echo p%2B4 and p+4", "postgres://u@h/x?sslpassword=p%2B4", ""},
	}
	for _, c := range cases {
		got := scrub(c.msg, c.conn, c.pw)
		for _, s := range []string{"p4ss", "p4 ss", "p%404ss", "p@4ss", "p%2B4", "p+4"} {
			if strings.Contains(got, s) {
				t.Errorf("scrub(%q) = %q still contains %q", c.msg, got, s)
			}
		}
	}
}

func TestReplaceDatabase(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://u@h:5432/test?sslmode=disable", "postgres://u@h:5432/new?sslmode=disable"},
		{"postgres://u@h/test", "postgres://u@h/new"},
		{"postgresql://h", "postgresql://h/new"},
		{"postgres://u:p@h1:5432,h2:5433/test", "postgres://u:p@h1:5432,h2:5433/new"},
		{"postgres://h/test?dbname=test", "postgres://h/new?dbname=new"},
		{"host=h user=u dbname=test", "host=h user=u dbname=test dbname=new"},
	}
	for _, c := range cases {
		got, err := replaceDatabase(c.in, "new")
		if err != nil || got != c.want {
			t.Errorf("replaceDatabase(%q) = %q, %v; want %q", c.in, got, err, c.want)
			continue
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "new" {
			t.Errorf("%q does not parse to database new: %v", got, err)
		}
	}
}

func TestDialectRendering(t *testing.T) {
	d := Dialect{}
	ix := schema.Index{Name: "idx_t_a", Columns: []string{"a", "b"}, Unique: true}
	cases := []struct{ got, want string }{
		{d.Placeholder(1), "$1"},
		{d.Placeholder(12), "$12"},
		{d.Quote(`we"ird`), `"we""ird"`},
		{d.ColumnType(schema.ColText), `TEXT COLLATE "C" NOT NULL DEFAULT ''`},
		{d.ColumnType(schema.ColNumber), "DOUBLE PRECISION NOT NULL DEFAULT 0"},
		{d.ColumnType(schema.ColBool), "BOOLEAN NOT NULL DEFAULT FALSE"},
		{d.ColumnType(schema.ColJSON), "JSONB DEFAULT NULL"},
		{d.ColumnType(schema.ColArray), "JSONB NOT NULL DEFAULT '[]'"},
		{d.JSONPath(`t."data"`, []string{"a", "b"}), `((t."data")::jsonb #>> '{a,b}')`},
		{d.Like("x", "$1"), `x ILIKE $1 ESCAPE '\'`},
		{d.CastText("x"), "CAST(x AS TEXT)"},
		{d.Random(), "RANDOM()"},
		{d.CreateIndex("t", ix, false), `CREATE UNIQUE INDEX "idx_t_a" ON "t" ("a", "b")`},
		{d.CreateIndex("t", schema.Index{Name: "i", Columns: []string{"a"}}, true), `CREATE INDEX "i" ON "t" ("a") WHERE "a" != ''`},
		{d.DropIndex("t", "i"), `DROP INDEX IF EXISTS "i"`},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("%d: got %s, want %s", i, c.got, c.want)
		}
	}
	if _, ok := d.UniqueViolation(nil); ok {
		t.Error("nil reported as unique violation")
	}
	if _, ok := d.UniqueViolation(errors.New("duplicate key value violates unique constraint")); ok {
		t.Error("plain error reported as unique violation")
	}
	wrapped := fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23505", ConstraintName: "idx_x"})
	if name, ok := d.UniqueViolation(wrapped); !ok || name != "idx_x" {
		t.Errorf("wrapped violation: %q %v", name, ok)
	}
}

func TestOpenSessionSettings(t *testing.T) {
	db, _ := freshDB(t, Options{StatementTimeout: 300 * time.Millisecond, MaxConns: 3, MinConns: 2})
	ctx := context.Background()
	if db.Read != db.Write {
		t.Error("Read and Write should be one pool")
	}
	if st := db.Write.Stats(); st.MaxOpenConnections != 3 || st.OpenConnections != 2 {
		t.Errorf("pool stats: max %d open %d, want 3 and 2 warm", st.MaxOpenConnections, st.OpenConnections)
	}
	settings := []struct{ name, want string }{
		{"TimeZone", "UTC"},
		{"statement_timeout", "300ms"},
		{"standard_conforming_strings", "on"},
		{"application_name", "plinth"},
	}
	for _, s := range settings {
		var got string
		if err := db.Read.QueryRowContext(ctx, "SELECT current_setting($1)", s.name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != s.want {
			t.Errorf("%s = %q, want %q", s.name, got, s.want)
		}
	}
	_, err := db.Write.ExecContext(ctx, "SELECT pg_sleep(5)")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Errorf("statement timeout not enforced: %v", err)
	}
}

func TestOpenMissingDatabase(t *testing.T) {
	requirePG(t)
	u, err := replaceDatabase(adminURL(), "plinth_no_such_database")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), u, Options{})
	if err == nil || !strings.Contains(err.Error(), "/plinth_no_such_database as ") {
		t.Errorf("error %v", err)
	}
}

// testCollection has one field of every storage class.
func testCollection() *schema.Collection {
	return &schema.Collection{Name: "items", Type: "base", Fields: []*schema.Field{
		{Name: "title", Type: schema.FieldText},
		{Name: "n", Type: schema.FieldNumber},
		{Name: "ok", Type: schema.FieldBool},
		{Name: "data", Type: schema.FieldJSON},
		{Name: "tags", Type: schema.FieldSelect, MaxSelect: 5, Values: []string{"a", "b", "c"}},
	}}
}

func TestDialectOnServer(t *testing.T) {
	db, _ := freshDB(t, Options{})
	d := Dialect{}
	ctx := context.Background()
	c := testCollection()
	wantKinds := []schema.ColumnKind{schema.ColText, schema.ColNumber, schema.ColBool, schema.ColJSON, schema.ColArray}
	for i, f := range c.Fields {
		if f.Column() != wantKinds[i] {
			t.Fatalf("field %s has kind %v", f.Name, f.Column())
		}
	}
	if _, err := db.Write.ExecContext(ctx, sqldb.CreateTable(d, c)); err != nil {
		t.Fatal(err)
	}

	// Defaults: a row with only an id has every NOT NULL default.
	if _, err := db.Write.ExecContext(ctx, `INSERT INTO items (id) VALUES ('zero')`); err != nil {
		t.Fatal(err)
	}

	type row struct {
		id, title string
		n         float64
		ok        bool
		data      any // JSON text; nil for SQL NULL
		tags      string
	}
	rows := []row{
		{"r1", "Hello World", 1.5, true, `{"a":{"b":"x","n":5},"s":"7"}`, `["a","b"]`},
		{"r2", "100% pure", -2, false, `{"a":{"b":"y","n":"abc"}}`, `["c"]`},
		{"r3", "under_score", 3, true, `[1,2,3]`, `[]`},
		{"r4", "HELLO there", 4, false, nil, `["b"]`},
		{"r5", "Ünïcode", 1e300, false, `"just a string"`, `["a"]`},
	}
	for _, r := range rows {
		// Compose the value fragments back to front, through two builders
		// sharing one argument list: Render must still number the
		// placeholders in text order and order the arguments to match.
		b := sqldb.NewBuilder(d)
		b2 := &sqldb.Builder{D: d, Args: b.Args}
		tags := b2.Arg(r.tags)
		data := b.Arg(r.data)
		ok := b2.Arg(r.ok)
		n := b.Arg(r.n)
		title := b2.Arg(r.title)
		id := b.Arg(r.id)
		q := "INSERT INTO items (id, title, n, ok, data, tags) VALUES (" + strings.Join([]string{id, title, n, ok, data, tags}, ", ") + ")"
		sqlText, args := b.Render(q)
		if want := "VALUES ($1, $2, $3, $4, $5, $6)"; !strings.Contains(sqlText, want) {
			t.Fatalf("rendered %q, want %q", sqlText, want)
		}
		if want := []any{r.id, r.title, r.n, r.ok, r.data, r.tags}; !reflect.DeepEqual(args, want) {
			t.Fatalf("args %v, want %v", args, want)
		}
		if _, err := b.Exec(ctx, db.Write, q); err != nil {
			t.Fatal(err)
		}
	}

	// ids runs a query rendered through a Builder and returns the first
	// column of every row.
	ids := func(t *testing.T, b *sqldb.Builder, q string) []string {
		t.Helper()
		rs, err := b.Query(ctx, db.Read, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rs.Close()
		var out []string
		for rs.Next() {
			var s sql.NullString
			if err := rs.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s.String)
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("JSONEach", func(t *testing.T) {
		cases := []struct {
			name  string
			query func(b *sqldb.Builder) string
			want  string
		}{
			{"correlated EXISTS", func(b *sqldb.Builder) string {
				return "SELECT i.id FROM items i WHERE EXISTS (SELECT 1 FROM " + d.JSONEach(`i."tags"`, "je") +
					" WHERE je.value = " + b.Arg("b") + ") ORDER BY i.id"
			}, "r1,r4"},
			{"after other FROM items", func(b *sqldb.Builder) string {
				return "SELECT i.id || ':' || je.value FROM items i, " + d.JSONEach(`i."tags"`, "je") + " ORDER BY 1"
			}, "r1:a,r1:b,r2:c,r4:b,r5:a"},
			{"relation-style join", func(b *sqldb.Builder) string {
				return "SELECT DISTINCT i.id FROM items i WHERE EXISTS (SELECT 1 FROM " + d.JSONEach(`i."tags"`, "je") +
					", items r WHERE r.id = 'r' || CASE je.value WHEN 'a' THEN '3' ELSE 'x' END) ORDER BY 1"
			}, "r1,r5"},
			{"non-array JSON reads as empty", func(b *sqldb.Builder) string {
				return "SELECT i.id || ':' || je.value FROM items i, " + d.JSONEach(`i."data"`, "je") + " ORDER BY 1"
			}, "r3:1,r3:2,r3:3"},
			{"param list", func(b *sqldb.Builder) string {
				return "SELECT i.id FROM items i WHERE EXISTS (SELECT 1 FROM " + d.JSONEachParam(b.Arg(schema.EncodeList([]string{"r2", "r4", "nope"})), "jp") +
					" WHERE jp.value = i.id) ORDER BY i.id"
			}, "r2,r4"},
			{"param non-array", func(b *sqldb.Builder) string {
				return "SELECT jp.value FROM " + d.JSONEachParam(b.Arg(`{"a":1}`), "jp")
			}, ""},
			{"param and column", func(b *sqldb.Builder) string {
				return "SELECT i.id FROM items i, " + d.JSONEachParam(b.Arg(`["c","a"]`), "jp") + " WHERE EXISTS (SELECT 1 FROM " +
					d.JSONEach(`i."tags"`, "je") + " WHERE je.value = jp.value) AND i.n > " + b.Arg(1.0) + " ORDER BY 1"
			}, "r1,r5"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := sqldb.NewBuilder(d)
				q := c.query(b)
				if got := strings.Join(ids(t, b, q), ","); got != c.want {
					t.Errorf("got %q, want %q", got, c.want)
				}
			})
		}
	})

	t.Run("JSONArrayLength", func(t *testing.T) {
		b := sqldb.NewBuilder(d)
		got := ids(t, b, "SELECT i.id || '=' || "+d.JSONArrayLength(`i."tags"`)+" || '/' || "+d.JSONArrayLength(`i."data"`)+" FROM items i ORDER BY i.id")
		want := "r1=2/0,r2=1/0,r3=0/3,r4=1/0,r5=1/0,zero=0/0"
		if strings.Join(got, ",") != want {
			t.Errorf("got %v, want %s", got, want)
		}
	})

	t.Run("JSONPath", func(t *testing.T) {
		cases := []struct {
			id   string
			path []string
			want sql.NullString
		}{
			{"r1", []string{"a", "b"}, sql.NullString{String: "x", Valid: true}},
			{"r1", []string{"a", "n"}, sql.NullString{String: "5", Valid: true}},
			{"r1", []string{"a"}, sql.NullString{String: `{"b": "x", "n": 5}`, Valid: true}},
			{"r1", []string{"missing", "b"}, sql.NullString{}},
			{"r3", []string{"a"}, sql.NullString{}},
			{"r4", []string{"a"}, sql.NullString{}},
			{"r5", []string{"a"}, sql.NullString{}},
		}
		for _, c := range cases {
			var got sql.NullString
			err := db.Read.QueryRowContext(ctx, "SELECT "+d.JSONPath(`i."data"`, c.path)+" FROM items i WHERE i.id = $1", c.id).Scan(&got)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%s %v: got %+v, want %+v", c.id, c.path, got, c.want)
			}
		}
	})

	t.Run("NumberFromText", func(t *testing.T) {
		b := sqldb.NewBuilder(d)
		q := "SELECT i.id FROM items i WHERE " + d.NumberFromText(d.JSONPath(`i."data"`, []string{"a", "n"})) + " > " + b.Arg(4.5) +
			" OR " + d.NumberFromText(d.JSONPath(`i."data"`, []string{"s"})) + " = " + b.Arg(7.0) + " ORDER BY 1"
		if got := strings.Join(ids(t, b, q), ","); got != "r1" {
			t.Errorf("got %q", got)
		}
		for _, s := range []string{"abc", "", "1e999", "1e-999", "NaN", "Infinity", "1.2.3", strings.Repeat("9", 400)} {
			var got sql.NullFloat64
			if err := db.Read.QueryRowContext(ctx, "SELECT "+d.NumberFromText("CAST($1 AS TEXT)"), s).Scan(&got); err != nil {
				t.Errorf("%q: %v", s, err)
			} else if got.Valid {
				t.Errorf("%q: got %v, want NULL", s, got.Float64)
			}
		}
		for s, want := range map[string]float64{"42": 42, " -1.5 ": -1.5, "2e3": 2000, ".5": 0.5, "+3.": 3} {
			var got sql.NullFloat64
			if err := db.Read.QueryRowContext(ctx, "SELECT "+d.NumberFromText("CAST($1 AS TEXT)"), s).Scan(&got); err != nil || !got.Valid || got.Float64 != want {
				t.Errorf("%q: got %+v %v, want %v", s, got, err, want)
			}
		}
	})

	t.Run("Like", func(t *testing.T) {
		cases := []struct{ pattern, want string }{
			{"%hello%", "r1,r4"},
			{"%WORLD", "r1"},
			{`%100\%%`, "r2"},
			{`%0\% p%`, "r2"},
			{`%r\_s%`, "r3"},
			{"%r_s%", "r3"},
			{`%\_%`, "r3"},
			{"%ünï%", ""}, // case folding is ASCII-only under COLLATE "C", as in SQLite
			{"%Ünï%", "r5"},
		}
		for _, c := range cases {
			b := sqldb.NewBuilder(d)
			q := "SELECT i.id FROM items i WHERE " + d.Like(`i."title"`, b.Arg(c.pattern)) + " ORDER BY 1"
			if got := strings.Join(ids(t, b, q), ","); got != c.want {
				t.Errorf("%q: got %q, want %q", c.pattern, got, c.want)
			}
		}
	})

	t.Run("CastAndOrder", func(t *testing.T) {
		b := sqldb.NewBuilder(d)
		q := "SELECT v.t FROM (SELECT " + d.Cast(b.Arg("b"), schema.ColText) + " AS t, " + d.Cast(b.Arg(2.0), schema.ColNumber) + " AS n, " +
			d.Cast(b.Arg(true), schema.ColBool) + " AS ok, " + d.Cast(b.Arg(`{"k":1}`), schema.ColJSON) + " AS data, " +
			d.Cast(b.Arg(`["a"]`), schema.ColArray) + " AS tags) v, items i WHERE i.title < v.t AND i.n < v.n AND i.ok = v.ok AND " +
			d.JSONArrayLength("v.tags") + " = 1 ORDER BY " + d.Random()
		// Bytewise order: "Hello World" < "b" but "under_score" > "b".
		if got := strings.Join(ids(t, b, q), ","); got != "b" {
			t.Errorf("got %q", got)
		}
		got := ids(t, sqldb.NewBuilder(d), `SELECT title FROM items WHERE id <> 'zero' ORDER BY title`)
		if want := "100% pure,HELLO there,Hello World,under_score,Ünïcode"; strings.Join(got, ",") != want {
			t.Errorf("order %v, want %s", got, want)
		}
	})

	t.Run("UniqueViolation", func(t *testing.T) {
		exec := func(q string, args ...any) error {
			_, err := db.Write.ExecContext(ctx, q, args...)
			return err
		}
		ix := schema.Index{Name: "idx_items_title", Columns: []string{"title"}, Unique: true}
		if err := exec(d.CreateIndex("items", ix, true)); err != nil {
			t.Fatal(err)
		}
		// The partial index lets many rows leave the field empty.
		if err := exec(`INSERT INTO items (id) VALUES ('zero2')`); err != nil {
			t.Fatalf("second empty title: %v", err)
		}
		cases := []struct {
			name, insert string
			want         string
			ok           bool
		}{
			{"unique index", `INSERT INTO items (id, title) VALUES ('dup', 'Hello World')`, "idx_items_title", true},
			{"primary key", `INSERT INTO items (id, title) VALUES ('r1', 'fresh')`, "items_pkey", true},
			{"not null", `INSERT INTO items (id, title) VALUES ('nn', NULL)`, "", false},
		}
		for _, c := range cases {
			err := exec(c.insert)
			if err == nil {
				t.Fatalf("%s: no error", c.name)
			}
			if got, ok := d.UniqueViolation(err); got != c.want || ok != c.ok {
				t.Errorf("%s: UniqueViolation = %q, %v; want %q, %v (%v)", c.name, got, ok, c.want, c.ok, err)
			}
		}
		if err := exec(d.DropIndex("items", ix.Name)); err != nil {
			t.Fatal(err)
		}
		if err := exec(d.DropIndex("items", ix.Name)); err != nil {
			t.Errorf("dropping a missing index: %v", err)
		}
		if err := exec(`INSERT INTO items (id, title) VALUES ('dup', 'Hello World')`); err != nil {
			t.Errorf("insert after drop: %v", err)
		}
	})

	t.Run("ViewColumns", func(t *testing.T) {
		q := `SELECT id, title, n, ok, data, tags, COUNT(*) OVER () AS cnt, n::int AS i4, 1.5 AS lit,
			CAST('x' AS VARCHAR(3)) AS vc, (data->'a') AS sub, ok AND TRUE AS both, title::json AS js
			FROM items -- trailing comment`
		cols, err := d.ViewColumns(ctx, db.Read, q)
		if err != nil {
			t.Fatal(err)
		}
		want := []sqldb.ViewColumn{
			{Name: "id", Kind: schema.ColText}, {Name: "title", Kind: schema.ColText},
			{Name: "n", Kind: schema.ColNumber}, {Name: "ok", Kind: schema.ColBool},
			{Name: "data", Kind: schema.ColJSON}, {Name: "tags", Kind: schema.ColJSON},
			{Name: "cnt", Kind: schema.ColNumber}, {Name: "i4", Kind: schema.ColNumber},
			{Name: "lit", Kind: schema.ColNumber}, {Name: "vc", Kind: schema.ColText},
			{Name: "sub", Kind: schema.ColJSON}, {Name: "both", Kind: schema.ColBool},
			{Name: "js", Kind: schema.ColJSON},
		}
		if !reflect.DeepEqual(cols, want) {
			t.Errorf("got %+v\nwant %+v", cols, want)
		}
		if _, err := d.ViewColumns(ctx, db.Read, "SELECT nope FROM items"); err == nil {
			t.Error("bad view query accepted")
		}
	})

	// Record how each column type arrives through database/sql with the
	// pgx stdlib driver when scanned into any: record code depends on it.
	t.Run("ScanIntoAny", func(t *testing.T) {
		var text, num, ok, data, tags, nullJSON, count, sum, numeric, i4 any
		err := db.Read.QueryRowContext(ctx, `SELECT title, n, ok, data, tags,
			(SELECT data FROM items WHERE id = 'r4'), (SELECT COUNT(*) FROM items WHERE id LIKE 'r%'),
			(SELECT SUM(n) FROM items WHERE id IN ('r1', 'r2', 'r3', 'r4')), 1.5::numeric, 7::int4 FROM items WHERE id = 'r1'`).
			Scan(&text, &num, &ok, &data, &tags, &nullJSON, &count, &sum, &numeric, &i4)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			got  any
			want any
		}{
			{"TEXT", text, "Hello World"},
			{"DOUBLE PRECISION", num, 1.5},
			{"BOOLEAN", ok, true},
			{"JSONB object", data, []byte(`{"a": {"b": "x", "n": 5}, "s": "7"}`)},
			{"JSONB array", tags, []byte(`["a", "b"]`)},
			{"JSONB NULL", nullJSON, nil},
			{"COUNT(*) int8", count, int64(5)},
			{"SUM(double)", sum, 6.5},
			{"NUMERIC", numeric, "1.5"},
			{"INT4", i4, int64(7)},
		}
		for _, c := range cases {
			t.Logf("%-16s scans into any as %T %v", c.name, c.got, c.got)
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: got %T %#v, want %T %#v", c.name, c.got, c.got, c.want, c.want)
			}
		}
	})
}

func TestNotifyListen(t *testing.T) {
	db, _ := freshDB(t, Options{})
	ctx := context.Background()
	n := db.Notifier.(*notifier)
	n.heartbeat = 100 * time.Millisecond // exercise the ping path often

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan string, 64)
	done := make(chan error, 1)
	go func() { done <- n.Listen(lctx, "plinth_test", func(p string) { got <- p }) }()

	// await publishes payload until it arrives: the listener connects
	// (and reconnects) asynchronously, and NOTIFY is not queued for a
	// listener that is not yet there.
	await := func(payload string) {
		t.Helper()
		deadline := time.NewTimer(20 * time.Second)
		defer deadline.Stop()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case p := <-got:
				if p == payload {
					return
				}
			case <-tick.C:
				if err := db.Notifier.Notify(ctx, "plinth_test", payload); err != nil {
					t.Fatal(err)
				}
			case <-deadline.C:
				t.Fatalf("notification %q not received", payload)
			}
		}
	}
	listenerPID := func() int {
		t.Helper()
		var pid int
		err := db.Read.QueryRowContext(ctx, `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'plinth-listener'`).Scan(&pid)
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}

	await("hello, wörld")
	pid := listenerPID()

	// Several heartbeats pass; the same connection must still deliver.
	time.Sleep(500 * time.Millisecond)
	if err := db.Notifier.Notify(ctx, "plinth_test", "after heartbeats"); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != "after heartbeats" {
			t.Errorf("payload %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after heartbeats")
	}
	if p2 := listenerPID(); p2 != pid {
		t.Errorf("listener reconnected during heartbeats: pid %d -> %d", pid, p2)
	}

	// Kill the listening connection: it must reconnect and LISTEN again.
	if _, err := db.Write.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	await("after reconnect")
	if p2 := listenerPID(); p2 == pid {
		t.Errorf("listener pid unchanged after termination")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Listen returned %v after ctx end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return after ctx end")
	}

	for _, ch := range []string{"Bad-Channel", "", "x;drop", strings.Repeat("a", 64)} {
		if err := db.Notifier.Listen(ctx, ch, func(string) {}); err == nil {
			t.Errorf("Listen accepted channel %q", ch)
		}
		if err := db.Notifier.Notify(ctx, ch, "x"); err == nil {
			t.Errorf("Notify accepted channel %q", ch)
		}
	}
}

// TestListenUnreachable checks a listener whose server is gone keeps
// retrying quietly and still stops when its context ends.
func TestListenUnreachable(t *testing.T) {
	cfg, err := pgx.ParseConfig("postgres://u@127.0.0.1:1/x?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	n := &notifier{cfg: cfg, heartbeat: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Listen(ctx, "plinth_test", func(string) {}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Listen returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return after ctx end")
	}
}

func TestCreateTestDatabase(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	u, drop, err := CreateTestDatabase(ctx, adminURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(u)
	if err != nil || !strings.HasPrefix(cfg.Database, "plinth_test_") {
		t.Fatalf("URL %q: %v", u, err)
	}
	u2, drop2, err := CreateTestDatabase(ctx, adminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer drop2()
	if u2 == u {
		t.Fatal("two test databases share a URL")
	}
	// Leave a session open: drop must still succeed.
	db, err := Open(ctx, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := drop(); err != nil {
		t.Fatal(err)
	}
	if err := drop(); err != nil {
		t.Errorf("second drop: %v", err)
	}
	admin, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cfg.Database).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after drop", cfg.Database)
	}
	if _, _, err := CreateTestDatabase(ctx, "postgres://u:sekret123@[::1/x"); err == nil || strings.Contains(err.Error(), "sekret123") {
		t.Errorf("bad admin URL: %v", err)
	}
}
