package rules

import (
	"net/http"
	"net/url"
	"strings"
)

// RequestKey fingerprints the request values e reads: @request.method,
// @request.query.* and @request.headers.* (the auth record is not
// included; callers key on identity separately). Two requests with equal
// keys get the same answer from e for the same record and identity, so a
// decision cached under the key is never served to a request that would
// be answered differently. It is "" when e reads none of them.
func RequestKey(e Expr, method string, query url.Values, headers http.Header) string {
	var b strings.Builder
	walkOperands(e, func(o Operand) {
		if o.Kind != KindPath || len(o.Path) < 2 || o.Path[0] != "@request" {
			return
		}
		switch o.Path[1] {
		case "method":
			b.WriteString("m\x00" + strings.ToUpper(method) + "\x00")
		case "query":
			if len(o.Path) == 3 {
				k := o.Path[2]
				b.WriteString("q\x00" + k + "\x00")
				if query.Has(k) {
					b.WriteString("1" + query.Get(k) + "\x00")
				} else {
					b.WriteString("0\x00")
				}
			}
		case "headers":
			if len(o.Path) == 3 {
				b.WriteString("h\x00" + o.Path[2] + "\x00" + headers.Get(strings.ReplaceAll(o.Path[2], "_", "-")) + "\x00")
			}
		}
	})
	return b.String()
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
