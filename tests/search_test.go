package tests

import (
	"slices"
	"strings"
	"testing"
)

// TestSearchWords drives the `@@` word search over HTTP on both engines:
// every word must occur in the field, the list rule and hidden fields still
// apply, results follow updates, deletes and renames, and hostile search
// text gives results or a 400, never a 500.
func TestSearchWords(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "books", "listRule": "public = true", "fields": []any{
			map[string]any{"name": "title", "type": "text"},
			map[string]any{"name": "blurb", "type": "text"},
			map[string]any{"name": "public", "type": "bool"},
			map[string]any{"name": "secret", "type": "text", "hidden": true},
		}})
		ids := map[string]string{}
		for _, b := range []struct{ key, title, blurb, secret string }{
			{"dune", "Dune", "Spice on Arrakis", "worm"},
			{"messiah", "Dune Messiah", "Paul rules the Imperium", ""},
			{"hidden", "Dune Draft", "Arrakis notes", ""},
			{"other", "Foundation", "100% psycho_history * NEAR", ""},
		} {
			ids[b.key] = s.do("POST", "/api/collections/books/records", s.su,
				map[string]any{"title": b.title, "blurb": b.blurb, "secret": b.secret, "public": b.key != "hidden"}).status(200).str("id")
		}
		search := func(token, filter string) []string {
			t.Helper()
			got := s.do("GET", "/api/collections/books/records?perPage=50&filter="+q(filter), token, nil).status(200).ids()
			slices.Sort(got)
			return got
		}
		want := func(keys ...string) []string {
			out := []string{}
			for _, k := range keys {
				out = append(out, ids[k])
			}
			slices.Sort(out)
			return out
		}
		cases := []struct {
			name, filter string
			want         []string
		}{
			{"one word", `title @@ "dune"`, want("dune", "messiah")},
			{"all words", `title @@ "DUNE messiah"`, want("messiah")},
			{"word order free", `title @@ "messiah dune"`, want("messiah")},
			{"any field via ||", `title @@ "arrakis" || blurb @@ "arrakis"`, want("dune")},
			{"prefix", `blurb @@ "impe"`, want("messiah")},
			{"no match", `title @@ "dune zzz"`, want()},
			{"percent literal", `blurb @@ "100%"`, want("other")},
			{"underscore literal", `blurb @@ "psycho_history"`, want("other")},
			{"star and NEAR literal", `blurb @@ "* NEAR"`, want("other")},
			{"quotes", `blurb @@ '"spice"'`, want()},
			{"minus", `blurb @@ "-spice"`, want()},
			{"unicode", `title @@ "Дюна 砂丘 🐛"`, want()},
			{"with other conditions", `title @@ "dune" && blurb ~ "paul"`, want("messiah")},
		}
		for _, c := range cases {
			if got := search("", c.filter); !slices.Equal(got, c.want) {
				t.Errorf("%s: %s: got %v, want %v", c.name, c.filter, got, c.want)
			}
		}
		// The superuser is not bound by the list rule and may search hidden fields.
		if got := search(s.su, `blurb @@ "arrakis"`); !slices.Equal(got, want("dune", "hidden")) {
			t.Errorf("superuser search: got %v", got)
		}
		if got := search(s.su, `secret @@ "worm"`); !slices.Equal(got, want("dune")) {
			t.Errorf("superuser hidden search: got %v", got)
		}
		// Bad searches are the client's mistake.
		for _, f := range []string{`title @@ ""`, `title @@ "   "`, `secret @@ "worm"`, `public @@ "x"`, `"x" @@ title`,
			`title @@ blurb`, `title ?@@ "x"`, `title @@ "` + strings.Repeat("a ", 17) + `"`, `title @@ "` + strings.Repeat("x", 101) + `"`} {
			s.do("GET", "/api/collections/books/records?filter="+q(f), "", nil).status(400)
		}
		// A very long filter is rejected or answered, never a 500.
		if code, _, err := s.try("GET", "/api/collections/books/records?filter="+q(`title @@ "`+strings.Repeat("é", 3000)+`"`), "", nil); err != nil || code != 400 {
			t.Errorf("long search: %d %v", code, err)
		}
		// Updates, deletes and renames are seen at once: the search reads the live row.
		s.do("PATCH", "/api/collections/books/records/"+ids["other"], s.su, map[string]any{"title": "Dune Encyclopedia"}).status(200)
		if got := search("", `title @@ "dune"`); !slices.Equal(got, want("dune", "messiah", "other")) {
			t.Errorf("after update: got %v", got)
		}
		s.do("DELETE", "/api/collections/books/records/"+ids["dune"], s.su, nil).status(204)
		if got := search("", `title @@ "dune"`); !slices.Equal(got, want("messiah", "other")) {
			t.Errorf("after delete: got %v", got)
		}
		coll := s.do("GET", "/api/collections/books", s.su, nil).status(200)
		fields := coll.body["fields"].([]any)
		for _, f := range fields {
			if m := f.(map[string]any); m["name"] == "title" {
				m["name"] = "name"
			}
		}
		s.do("PATCH", "/api/collections/books", s.su, map[string]any{"fields": fields}).status(200)
		if got := search("", `name @@ "dune"`); !slices.Equal(got, want("messiah", "other")) {
			t.Errorf("after rename: got %v", got)
		}
	})
}
