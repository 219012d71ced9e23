package schema

import (
	"strings"
	"testing"
)

func f64(v float64) *float64 { return &v }

func TestNormalize(t *testing.T) {
	cases := []struct {
		name string
		f    Field
		in   any
		want any
		code string
	}{
		{"text ok", Field{Type: FieldText}, "hi", "hi", ""},
		{"text nil", Field{Type: FieldText}, nil, "", ""},
		{"text required", Field{Type: FieldText, Required: true}, "", nil, "validation_required"},
		{"text runes", Field{Type: FieldText, Max: f64(2)}, "éé", "éé", ""},
		{"text too long", Field{Type: FieldText, Max: f64(2)}, "abc", nil, "validation_max_text_constraint"},
		{"text default cap", Field{Type: FieldText}, strings.Repeat("a", 5001), nil, "validation_max_text_constraint"},
		{"text invalid utf8", Field{Type: FieldText}, "\xff", nil, "validation_invalid_text"},
		{"number", Field{Type: FieldNumber}, 1.5, 1.5, ""},
		{"number int only", Field{Type: FieldNumber, OnlyInt: true}, 1.5, nil, "validation_only_int_constraint"},
		{"number string", Field{Type: FieldNumber}, "1", nil, "validation_invalid_number"},
		{"bool", Field{Type: FieldBool}, true, true, ""},
		{"bool required", Field{Type: FieldBool, Required: true}, false, nil, "validation_required"},
		{"email", Field{Type: FieldEmail}, "a@b.co", "a@b.co", ""},
		{"email display name", Field{Type: FieldEmail}, "A <a@b.co>", nil, "validation_invalid_email"},
		{"url", Field{Type: FieldURL}, "http://x.y/z?q=1", "http://x.y/z?q=1", ""},
		{"url javascript", Field{Type: FieldURL}, "javascript:alert(1)", nil, "validation_invalid_url"},
		{"date rfc3339", Field{Type: FieldDate}, "2026-01-02T03:04:05+02:00", "2026-01-02 01:04:05.000Z", ""},
		{"date plain", Field{Type: FieldDate}, "2026-01-02", "2026-01-02 00:00:00.000Z", ""},
		{"select single", Field{Type: FieldSelect, Values: []string{"a", "b"}}, "a", "a", ""},
		{"select multi dedupe", Field{Type: FieldSelect, Values: []string{"a", "b"}, MaxSelect: 2}, []any{"a", "a", "b"}, `["a","b"]`, ""},
		{"select too many", Field{Type: FieldSelect, Values: []string{"a", "b", "c"}, MaxSelect: 2}, []any{"a", "b", "c"}, nil, "validation_too_many_values"},
		{"relation multi from string", Field{Type: FieldRelation, MaxSelect: 3}, "abc", `["abc"]`, ""},
		{"relation bad id", Field{Type: FieldRelation}, "a b", nil, "validation_invalid_relation"},
		{"json", Field{Type: FieldJSON}, map[string]any{"a": 1.0}, `{"a":1}`, ""},
		{"json null", Field{Type: FieldJSON}, nil, nil, ""},
		{"json too big", Field{Type: FieldJSON, MaxSize: 5}, "123456", nil, "validation_json_size_limit"},
	}
	for _, c := range cases {
		got, err := c.f.Normalize(c.in)
		code := ""
		if err != nil {
			code = err.(*ValueError).Code
		}
		if code != c.code || (c.code == "" && got != c.want) {
			t.Errorf("%s: got %#v, %q; want %#v, %q", c.name, got, code, c.want, c.code)
		}
	}
}

func TestValidateCollection(t *testing.T) {
	lookup := func(string) *Collection { return nil }
	cases := []struct {
		name string
		c    Collection
		key  string
	}{
		{"bad name", Collection{Name: "a-b", Type: TypeBase}, "name"},
		{"reserved prefix", Collection{Name: "_x", Type: TypeBase}, "name"},
		{"sqlite prefix", Collection{Name: "sqlite_x", Type: TypeBase}, "name"},
		{"bad type", Collection{Name: "x", Type: "table"}, "type"},
		{"view without query", Collection{Name: "x", Type: TypeView}, "viewQuery"},
		{"reserved field", Collection{Name: "x", Type: TypeBase, Fields: []*Field{{Name: "expand", Type: FieldText}}}, "fields.0"},
		{"dup field", Collection{Name: "x", Type: TypeBase, Fields: []*Field{{Name: "a", Type: FieldText}, {Name: "A", Type: FieldText}}}, "fields.1"},
		{"bad pattern", Collection{Name: "x", Type: TypeBase, Fields: []*Field{{Name: "a", Type: FieldText, Pattern: "("}}}, "fields.0"},
		{"select no values", Collection{Name: "x", Type: TypeBase, Fields: []*Field{{Name: "a", Type: FieldSelect}}}, "fields.0"},
		{"relation unknown", Collection{Name: "x", Type: TypeBase, Fields: []*Field{{Name: "a", Type: FieldRelation, CollectionID: "nope"}}}, "fields.0"},
		{"min on bool", Collection{Name: "x", Type: TypeBase, Fields: []*Field{{Name: "a", Type: FieldBool, Min: f64(1)}}}, "fields.0"},
		{"index unknown column", Collection{Name: "x", Type: TypeBase, Indexes: []Index{{Name: "i", Columns: []string{"zz"}}}}, "indexes.0"},
		{"password outside auth", Collection{Name: "x", Type: TypeBase, Fields: []*Field{{Name: "password", Type: FieldPassword}}}, "fields.0"},
	}
	for _, c := range cases {
		err := Validate(&c.c, lookup)
		fe, ok := err.(FieldErrors)
		if !ok || fe[c.key] == nil {
			t.Errorf("%s: %v, want error on %s", c.name, err, c.key)
		}
	}
	good := &Collection{Name: "users", Type: TypeAuth}
	PrepareNew(good)
	if err := Validate(good, lookup); err != nil {
		t.Errorf("prepared auth collection invalid: %v", err)
	}
	if good.Field("email") == nil || good.Field("created") == nil || good.Auth.Secret == "" || len(good.Indexes) != 1 {
		t.Errorf("auth defaults missing: %+v", good)
	}
}

func TestRandomString(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := NewID()
		if len(s) != 15 || seen[s] || strings.Trim(s, idAlphabet) != "" {
			t.Fatalf("bad id %q", s)
		}
		seen[s] = true
	}
}
