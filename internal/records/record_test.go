package records

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/plinthhq/plinth/internal/schema"
)

func TestScanValueSameOnEveryEngine(t *testing.T) {
	num := &schema.Field{Name: "n", Type: schema.FieldNumber}
	flag := &schema.Field{Name: "b", Type: schema.FieldBool}
	tags := &schema.Field{Name: "t", Type: schema.FieldSelect, Values: []string{"a", "b"}, MaxSelect: 2}
	doc := &schema.Field{Name: "j", Type: schema.FieldJSON}
	text := &schema.Field{Name: "s", Type: schema.FieldText}
	for _, c := range []struct {
		name string
		f    *schema.Field
		in   any
		want any
	}{
		{"sqlite whole number", num, int64(3), 3.0},
		{"postgres numeric as text", num, []byte("2.5"), 2.5},
		{"sqlite bool", flag, int64(1), true},
		{"postgres bool", flag, false, false},
		{"json array text", tags, `["a","b"]`, []string{"a", "b"}},
		{"empty array", tags, nil, []string{}},
		{"json document", doc, `{"k":1}`, json.RawMessage(`{"k":1}`)},
		{"invalid json is null", doc, `{`, nil},
		{"null text", text, nil, ""},
	} {
		if got := scanValue(c.f, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: scanValue(%#v) = %#v, want %#v", c.name, c.in, got, c.want)
		}
	}
}

func TestParseFields(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    Projection
		invalid bool
	}{
		{"", nil, false},
		{"id,title", Projection{"id": nil, "title": nil}, false},
		{"id, expand.author.name", Projection{"id": nil, "expand": {"author": {"name": nil}}}, false},
		{"*", Projection{"*": nil}, false},
		{"title;drop", nil, true},
		{"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", nil, true},
	} {
		got, err := ParseFields(c.in)
		if (err != nil) != c.invalid {
			t.Errorf("ParseFields(%q) error %v, want invalid=%v", c.in, err, c.invalid)
			continue
		}
		if !c.invalid && !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseFields(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// Output hides what the caller may not see: hidden fields and, on auth
// records, the email of others unless emailVisibility.
func TestOutputVisibility(t *testing.T) {
	users := &schema.Collection{ID: "u1", Name: "users", Type: schema.TypeAuth, Auth: &schema.AuthOptions{}}
	schema.PrepareNew(users)
	users.Fields = append(users.Fields, &schema.Field{Name: "note", Type: schema.FieldText, Hidden: true})
	schema.ApplyDefaults(users)
	rec := &Record{Collection: users, Values: map[string]any{"id": "ana", "email": "ana@example.com", "emailVisibility": false, "note": "secret", "password": "hash", "tokenKey": "key"}}
	other := &Caller{AuthCollection: users, Auth: &Record{Collection: users, Values: map[string]any{"id": "bob"}}}
	owner := &Caller{AuthCollection: users, Auth: rec}
	for _, c := range []struct {
		name      string
		caller    *Caller
		visible   []string
		invisible []string
	}{
		{"anonymous", &Caller{}, []string{"id"}, []string{"email", "note", "password", "tokenKey"}},
		{"another user", other, []string{"id"}, []string{"email", "note", "password", "tokenKey"}},
		{"the owner", owner, []string{"id", "email"}, []string{"note", "password", "tokenKey"}},
	} {
		var out map[string]any
		if err := json.Unmarshal(Output(c.caller, rec, nil), &out); err != nil {
			t.Fatal(err)
		}
		for _, k := range c.visible {
			if _, ok := out[k]; !ok {
				t.Errorf("%s: %s missing from %v", c.name, k, out)
			}
		}
		for _, k := range c.invisible {
			if _, ok := out[k]; ok {
				t.Errorf("%s: %s shown in %v", c.name, k, out)
			}
		}
	}
}
