package rules

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// RequestKey fingerprints the request values e reads: @request.method,
// @request.query.* and @request.headers.* (the auth record is not
// included; callers key on identity separately). Two requests with equal
// keys get the same answer from e for the same record and identity, so a
// decision cached under the key is never served to a request that would
// be answered differently. It is "" when e reads none of them.
//
// Every name and value is written with its length in front: query values
// may hold any byte, so a separator alone could let one client's values
// spell another client's key. The result is self-delimiting, so keys of
// several expressions can be joined without ambiguity.
func RequestKey(e Expr, method string, query url.Values, headers http.Header) string {
	var b []byte
	part := func(tag byte, s string) {
		b = append(b, tag)
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	walkOperands(e, func(o Operand) {
		if o.Kind != KindPath || len(o.Path) < 2 || o.Path[0] != "@request" {
			return
		}
		switch o.Path[1] {
		case "method":
			part('m', strings.ToUpper(method))
		case "query":
			if len(o.Path) == 3 {
				k := o.Path[2]
				part('q', k)
				if query.Has(k) {
					part('v', query.Get(k))
				} else {
					part('-', "")
				}
			}
		case "headers":
			if len(o.Path) == 3 {
				part('h', o.Path[2])
				part('v', headers.Get(strings.ReplaceAll(o.Path[2], "_", "-")))
			}
		}
	})
	return string(b)
}

// walkOperands calls fn for every operand of e, left to right.
func walkOperands(e Expr, fn func(Operand)) {
	switch x := e.(type) {
	case *Logic:
		walkOperands(x.Left, fn)
		walkOperands(x.Right, fn)
	case *Compare:
		fn(x.Left)
		fn(x.Right)
	}
}
