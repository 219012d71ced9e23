package rules

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRequestKey(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	for _, c := range []struct {
		name, expr string
		a, b       http.Header
		qa, qb     url.Values
		same       bool
	}{
		{"no request input", `title = "x" && @request.auth.id != ""`, h("X-Token", "a"), h(), nil, nil, true},
		{"header read, differs", `@request.headers.x_token = "abc"`, h("X-Token", "abc"), h(), nil, nil, false},
		{"header read, equal", `@request.headers.x_token = "abc"`, h("X-Token", "abc", "User-Agent", "1"), h("X-Token", "abc", "User-Agent", "2"), nil, nil, true},
		{"query read, differs", `@request.query.key = "k"`, nil, nil, url.Values{"key": {"k"}}, url.Values{}, false},
		{"query absent vs empty", `@request.query.key:isset = true`, nil, nil, url.Values{"key": {""}}, url.Values{}, false},
		{"other query ignored", `@request.query.key = "k"`, nil, nil, url.Values{"key": {"k"}, "x": {"1"}}, url.Values{"key": {"k"}}, true},
		{"nested in or", `a = 1 || (b = 2 && @request.headers.x_role = "admin")`, h("X-Role", "admin"), h("X-Role", "user"), nil, nil, false},
		// A value holding separator bytes cannot spell another key.
		{"values cannot forge the layout", `@request.query.a = "v" && @request.query.b = "w"`, nil, nil,
			url.Values{"a": {"v\x00q\x00b\x001w"}}, url.Values{"a": {"v"}, "b": {"w\x00q\x00b\x000"}}, false},
		{"length prefixes", `@request.query.a = "v" && @request.query.b = "w"`, nil, nil,
			url.Values{"a": {"v1:x"}}, url.Values{"a": {"v"}, "b": {"x"}}, false},
	} {
		e, err := Parse(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ka := RequestKey(e, "GET", c.qa, c.a)
		kb := RequestKey(e, "GET", c.qb, c.b)
		if (ka == kb) != c.same {
			t.Errorf("%s: keys %q and %q, want same=%v", c.name, ka, kb, c.same)
		}
	}
}
