package openapi

import (
	"encoding/json"
	"testing"

	"github.com/plinthhq/plinth/internal/schema"
)

func TestFieldSchema(t *testing.T) {
	cases := []struct {
		field schema.Field
		want  string
	}{
		{schema.Field{Type: schema.FieldText}, `{"type":"string"}`},
		{schema.Field{Type: schema.FieldNumber}, `{"type":"number"}`},
		{schema.Field{Type: schema.FieldNumber, OnlyInt: true}, `{"type":"integer"}`},
		{schema.Field{Type: schema.FieldBool}, `{"type":"boolean"}`},
		{schema.Field{Type: schema.FieldEmail}, `{"format":"email","type":"string"}`},
		{schema.Field{Type: schema.FieldURL}, `{"format":"uri","type":"string"}`},
		{schema.Field{Type: schema.FieldSelect, Values: []string{"a"}}, `{"enum":["a",""],"type":"string"}`},
		{schema.Field{Type: schema.FieldSelect, Values: []string{"a", "b"}, MaxSelect: 2}, `{"items":{"enum":["a","b"],"type":"string"},"type":"array"}`},
		{schema.Field{Type: schema.FieldJSON}, `{}`},
	}
	for _, tc := range cases {
		got, _ := json.Marshal(fieldSchema(&tc.field))
		if string(got) != tc.want {
			t.Errorf("%s: %s, want %s", tc.field.Type, got, tc.want)
		}
	}
}

func TestTypeNames(t *testing.T) {
	cases := map[string]string{"posts": "Posts", "blog_posts": "BlogPosts", "_superusers": "Superusers", "1st": "C1st"}
	for in, want := range cases {
		if got := typeName(in); got != want {
			t.Errorf("typeName(%q) = %q, want %q", in, got, want)
		}
	}
	cases2 := []struct {
		field schema.Field
		want  string
	}{
		{schema.Field{Type: schema.FieldRelation, MaxSelect: 3}, "string[]"},
		{schema.Field{Type: schema.FieldSelect, Values: []string{"x"}}, `"x" | ""`},
		{schema.Field{Type: schema.FieldSelect, Values: []string{"x", "y"}, MaxSelect: 2}, `Array<"x" | "y">`},
		{schema.Field{Type: schema.FieldJSON}, "unknown"},
		{schema.Field{Type: schema.FieldAutodate}, "string"},
	}
	for _, tc := range cases2 {
		if got := tsType(&tc.field); got != tc.want {
			t.Errorf("tsType(%+v) = %s, want %s", tc.field, got, tc.want)
		}
	}
}

// TestVisibility: a collection with null list and view rules is left out
// of a non-superuser's document, with its fields and operations.
func TestVisibility(t *testing.T) {
	empty := ""
	pub := &schema.Collection{ID: "p", Name: "pub", Type: schema.TypeBase, ViewRule: &empty,
		Fields: []*schema.Field{{Name: "s", Type: schema.FieldText, Hidden: true}}}
	priv := &schema.Collection{ID: "q", Name: "priv", Type: schema.TypeBase}
	for _, su := range []bool{false, true} {
		doc := Build([]*schema.Collection{pub, priv}, su, Options{})
		schemas := doc["components"].(obj)["schemas"].(obj)
		paths := doc["paths"].(obj)
		_, hasPriv := schemas["privRecord"]
		_, hasHidden := schemas["pubRecord"].(obj)["properties"].(obj)["s"]
		_, hasList := paths["/api/collections/pub/records"] // the list rule is null
		_, hasSettings := paths["/api/settings"]
		if hasPriv != su || hasHidden != su || hasList != su || hasSettings != su {
			t.Errorf("su=%v: priv %v, hidden %v, list %v, settings %v", su, hasPriv, hasHidden, hasList, hasSettings)
		}
	}
}
