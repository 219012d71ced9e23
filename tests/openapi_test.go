package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// openAPISchema creates the collections the OpenAPI tests describe: a
// public one with every field type and a hidden field, a superusers-only
// one, and an auth collection.
func openAPISchema(s *server) {
	s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": ""})
	s.collection(map[string]any{"name": "posts", "listRule": "", "viewRule": "",
		"createRule": `@request.auth.id != ""`,
		"fields": []any{
			map[string]any{"name": "title", "type": "text", "required": true},
			map[string]any{"name": "views", "type": "number"},
			map[string]any{"name": "count", "type": "number", "onlyInt": true},
			map[string]any{"name": "published", "type": "bool"},
			map[string]any{"name": "contact", "type": "email"},
			map[string]any{"name": "site", "type": "url"},
			map[string]any{"name": "when", "type": "date"},
			map[string]any{"name": "status", "type": "select", "values": []string{"draft", "live"}},
			map[string]any{"name": "tags", "type": "select", "values": []string{"a", "b", "c"}, "maxSelect": 3},
			map[string]any{"name": "meta", "type": "json"},
			map[string]any{"name": "author", "type": "relation", "collectionId": "users"},
			map[string]any{"name": "readers", "type": "relation", "collectionId": "users", "maxSelect": 5},
			map[string]any{"name": "cover", "type": "file"},
			map[string]any{"name": "secret", "type": "text", "hidden": true},
		}})
	s.collection(map[string]any{"name": "private", "fields": []any{map[string]any{"name": "note", "type": "text"}}})
}

// loadOpenAPI fetches the caller's document and validates it with
// kin-openapi.
func loadOpenAPI(t *testing.T, s *server, token string) *openapi3.T {
	t.Helper()
	res := s.do("GET", "/api/openapi.json", token, nil).status(200)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(res.raw)
	if err != nil {
		t.Fatalf("load document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("document does not validate: %v\n%s", err, res.raw)
	}
	return doc
}

func TestOpenAPIDocument(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		openAPISchema(s)
		_, userTok := s.user("users", "u@example.com", nil)
		type want struct {
			schemas    map[string]bool // component -> present
			paths      map[string]bool
			postFields map[string]bool // field of postsRecord -> present
		}
		cases := []struct {
			name  string
			token string
			want  want
		}{
			{"superuser", s.su, want{
				schemas:    map[string]bool{"postsRecord": true, "usersRecord": true, "privateRecord": true, "_superusersRecord": true, "Error": true},
				paths:      map[string]bool{"/api/collections": true, "/api/settings": true, "/api/webhooks": true, "/api/collections/private/records": true, "/api/realtime": true, "/api/health": true},
				postFields: map[string]bool{"title": true, "secret": true, "created": true},
			}},
			{"anonymous", "", want{
				schemas:    map[string]bool{"postsRecord": true, "usersRecord": true, "privateRecord": false, "_superusersRecord": false, "Error": true},
				paths:      map[string]bool{"/api/collections": false, "/api/settings": false, "/api/webhooks": false, "/api/collections/private/records": false, "/api/realtime": true, "/api/health": true},
				postFields: map[string]bool{"title": true, "secret": false, "created": true},
			}},
			{"user", userTok, want{
				schemas:    map[string]bool{"postsRecord": true, "usersRecord": true, "privateRecord": false, "_superusersRecord": false},
				paths:      map[string]bool{"/api/collections": false, "/api/settings": false, "/api/collections/users/auth-with-password": true, "/api/collections/users/request-password-reset": true},
				postFields: map[string]bool{"secret": false},
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				doc := loadOpenAPI(t, s, tc.token)
				for name, present := range tc.want.schemas {
					if got := doc.Components.Schemas[name] != nil; got != present {
						t.Errorf("schema %s present = %v, want %v", name, got, present)
					}
				}
				for p, present := range tc.want.paths {
					if got := doc.Paths.Value(p) != nil; got != present {
						t.Errorf("path %s present = %v, want %v", p, got, present)
					}
				}
				posts := doc.Components.Schemas["postsRecord"].Value
				for f, present := range tc.want.postFields {
					if got := posts.Properties[f] != nil; got != present {
						t.Errorf("postsRecord.%s present = %v, want %v", f, got, present)
					}
				}
				users := doc.Components.Schemas["usersRecord"].Value
				for _, secret := range []string{"password", "tokenKey"} {
					if users.Properties[secret] != nil {
						t.Errorf("usersRecord documents %s", secret)
					}
				}
				// Operations follow the rules: posts can be created by
				// others (the rule is not null) but not updated or deleted.
				item := doc.Paths.Value("/api/collections/posts/records/{id}")
				if item == nil || item.Get == nil {
					t.Fatalf("no view operation for posts")
				}
				su := tc.token == s.su
				if (item.Delete != nil) != su || (item.Patch != nil) != su {
					t.Errorf("posts delete/update documented = %v/%v, want %v", item.Delete != nil, item.Patch != nil, su)
				}
				if doc.Paths.Value("/api/collections/posts/records").Post == nil {
					t.Errorf("posts create not documented")
				}
			})
		}

		// Field types map to JSON Schema types.
		doc := loadOpenAPI(t, s, "")
		props := doc.Components.Schemas["postsRecord"].Value.Properties
		for field, typ := range map[string]string{"title": "string", "views": "number", "count": "integer",
			"published": "boolean", "contact": "string", "site": "string", "when": "string", "status": "string",
			"tags": "array", "author": "string", "readers": "array", "cover": "string"} {
			if p := props[field]; p == nil || !p.Value.Type.Is(typ) {
				t.Errorf("postsRecord.%s: want type %s, got %+v", field, typ, p)
			}
		}
		if f := props["contact"].Value.Format; f != "email" {
			t.Errorf("contact format %q", f)
		}
		if e := props["tags"].Value.Items.Value.Enum; len(e) != 3 {
			t.Errorf("tags enum %v", e)
		}
	})
}

// TestOpenAPIResponsesValidate checks real answers of the list and view
// endpoints against the documented schemas, for a superuser (who sees the
// hidden field) and for an anonymous caller.
func TestOpenAPIResponsesValidate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		openAPISchema(s)
		uid, _ := s.user("users", "writer@example.com", nil)
		rec := s.do("POST", "/api/collections/posts/records", s.su, map[string]any{
			"title": "hello", "views": 1.5, "count": 3, "published": true, "contact": "a@example.com",
			"site": "https://example.com/x", "when": "2024-01-02 03:04:05.000Z", "status": "live",
			"tags": []string{"a", "c"}, "meta": map[string]any{"k": []int{1}}, "author": uid,
			"readers": []string{uid}, "secret": "s3",
		}).status(200)
		s.do("POST", "/api/collections/posts/records", s.su, map[string]any{"title": "sparse"}).status(200)
		for _, tc := range []struct{ name, token string }{{"superuser", s.su}, {"anonymous", ""}} {
			t.Run(tc.name, func(t *testing.T) {
				doc := loadOpenAPI(t, s, tc.token)
				for _, c := range []struct{ path, route string }{
					{"/api/collections/posts/records", "/api/collections/posts/records"},
					{"/api/collections/posts/records/" + rec.str("id"), "/api/collections/posts/records/{id}"},
					{"/api/collections/users/records", "/api/collections/users/records"},
				} {
					validateAgainst(t, s, doc, tc.token, c.path, c.route)
				}
			})
		}
		// Request bodies are checked against the documented input schema.
		doc := loadOpenAPI(t, s, s.su)
		for _, tc := range []struct {
			name string
			body string
			ok   bool
		}{
			{"valid", `{"title": "t", "views": 2, "tags": ["a"], "status": "draft", "meta": {"x": 1}}`, true},
			{"missing required title", `{"views": 2}`, false},
			{"number as string", `{"title": "t", "views": "2"}`, false},
			{"value outside the select", `{"title": "t", "status": "archived"}`, false},
		} {
			t.Run("request "+tc.name, func(t *testing.T) {
				item := doc.Paths.Value("/api/collections/posts/records")
				req, _ := http.NewRequest("POST", "http://localhost/api/collections/posts/records", strings.NewReader(tc.body))
				req.Header.Set("Content-Type", "application/json")
				err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
					Request: req, Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
					Route: &routers.Route{Spec: doc, Path: "/api/collections/posts/records", PathItem: item, Method: "POST", Operation: item.Post},
				})
				if (err == nil) != tc.ok {
					t.Errorf("validation error %v, want ok=%v", err, tc.ok)
				}
				// The server agrees with the document.
				code := s.do("POST", "/api/collections/posts/records", s.su, tc.body).code
				if (code == 200) != tc.ok {
					t.Errorf("server answered %d, want ok=%v", code, tc.ok)
				}
			})
		}

		// A response that breaks the schema is caught: the check can fail.
		doc = loadOpenAPI(t, s, "")
		err := checkResponse(doc, "/api/collections/posts/records", http.StatusOK,
			[]byte(`{"page":1,"perPage":30,"totalItems":1,"totalPages":1,"items":[{"id":"x","collectionId":"`+
				doc.Components.Schemas["postsRecord"].Value.Properties["collectionId"].Value.Const.(string)+
				`","collectionName":"posts","views":"many"}]}`))
		if err == nil {
			t.Fatalf("a wrongly typed field validated")
		}
	})
}

// validateAgainst fetches path and validates the answer against the
// GET operation documented at route.
func validateAgainst(t *testing.T, s *server, doc *openapi3.T, token, path, route string) {
	t.Helper()
	res := s.do("GET", path, token, nil).status(200)
	if err := checkResponse(doc, route, res.code, res.raw); err != nil {
		t.Errorf("GET %s does not match the document: %v\n%s", path, err, res.raw)
	}
}

func checkResponse(doc *openapi3.T, route string, status int, body []byte) error {
	item := doc.Paths.Value(route)
	if item == nil || item.Get == nil {
		return io.ErrUnexpectedEOF
	}
	req, _ := http.NewRequest("GET", "http://localhost"+route, nil)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: doc, Path: route, PathItem: item, Method: "GET", Operation: item.Get},
		},
		Status:  status,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}
