package sqldb

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/plinthhq/plinth/internal/schema"
)

type numbered struct{ Dialect }

func (numbered) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

type positional struct{ Dialect }

func (positional) Placeholder(int) string { return "?" }

func TestRenderNumbersInTextOrderAndDropsUnused(t *testing.T) {
	cases := []struct {
		name  string
		d     Dialect
		build func(b *Builder) string
		sql   string
		args  []any
	}{
		{"in order", numbered{}, func(b *Builder) string { return "a = " + b.Arg(1) + " AND b = " + b.Arg(2) }, "a = $1 AND b = $2", []any{1, 2}},
		{"composed out of order", numbered{}, func(b *Builder) string {
			second := "b = " + b.Arg("B")
			first := "a = " + b.Arg("A")
			return first + " AND " + second
		}, "a = $1 AND b = $2", []any{"A", "B"}},
		{"dropped fragment", positional{}, func(b *Builder) string {
			_ = "x = " + b.Arg("unused")
			return "y = " + b.Arg("used")
		}, "y = ?", []any{"used"}},
		{"reused fragment", numbered{}, func(b *Builder) string {
			w := "z = " + b.Arg(9)
			return w + " OR " + w
		}, "z = $1 OR z = $2", []any{9, 9}},
		{"no args", numbered{}, func(b *Builder) string { return "SELECT 1" }, "SELECT 1", nil},
	}
	for _, c := range cases {
		b := NewBuilder(c.d)
		sql, args := b.Render(c.build(b))
		if sql != c.sql || !reflect.DeepEqual(args, c.args) {
			t.Errorf("%s: %q %v, want %q %v", c.name, sql, args, c.sql, c.args)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{"a": `"a"`, `a"b`: `"a""b"`, "": `""`} {
		if got := QuoteIdent(in); got != want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCreateTable(t *testing.T) {
	c := &schema.Collection{Name: "posts", Fields: []*schema.Field{{Name: "t", Type: schema.FieldText}, {Name: "n", Type: schema.FieldNumber}}}
	got := CreateTable(fakeTypes{}, c)
	want := `CREATE TABLE "posts" ("id" TEXT PRIMARY KEY NOT NULL, "t" K0, "n" K1)`
	if got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
}

type fakeTypes struct{ Dialect }

func (fakeTypes) Quote(s string) string                 { return QuoteIdent(s) }
func (fakeTypes) ColumnType(k schema.ColumnKind) string { return "K" + strconv.Itoa(int(k)) }
