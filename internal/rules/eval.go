package rules

import (
	"encoding/json"
	"strings"

	"github.com/plinthhq/plinth/internal/schema"
)

// Eval decides e for one record in memory, with the same meaning the
// compiled SQL has. Record values are API-shaped (string, float64, bool,
// []string, json.RawMessage, nil). decided is false when the answer needs
// the database — a path through a relation, @collection, a JSON path —
// and the caller must fall back to SQL. Realtime fan-out uses this so most
// rules cost no query per subscriber.
func Eval(c *schema.Collection, e Expr, rec map[string]any, env *Env) (result, decided bool) {
	if e == nil {
		return true, true
	}
	ev := &evaluator{c: c, rec: rec, cp: &compiler{env: env}}
	return ev.expr(e)
}

type evaluator struct {
	c   *schema.Collection
	rec map[string]any
	cp  *compiler // for request operands, which are constants
}

func (ev *evaluator) expr(e Expr) (bool, bool) {
	switch n := e.(type) {
	case *Logic:
		l, lok := ev.expr(n.Left)
		// Short-circuit only on a decided side, as SQL would give the
		// same answer whatever the other side is.
		if lok && l != n.And {
			return l, true
		}
		r, rok := ev.expr(n.Right)
		if rok && r != n.And {
			return r, true
		}
		if !lok || !rok {
			return false, false
		}
		return n.And, true
	case *Compare:
		return ev.compare(n)
	}
	return false, false
}

// match mirrors compiler.match for ASCII text. Engines fold the case of
// other letters differently in LIKE, so such text is left to the database.
func (ev *evaluator) match(n *Compare) (bool, bool) {
	l, ok := ev.operand(n.Left)
	if !ok || !l.isField || l.kind != kText || n.Any {
		return false, false
	}
	r, ok := ev.operand(n.Right)
	if !ok || r.isField {
		return false, false
	}
	q, qok := r.v.(string)
	var text string
	switch v := l.v.(type) {
	case string:
		text = v
	case nil:
	default:
		return false, false
	}
	if !qok || !isASCII(q) || !isASCII(text) {
		return false, false
	}
	text = strings.ToLower(text)
	for _, w := range strings.Fields(q) {
		if !strings.Contains(text, strings.ToLower(w)) {
			return false, true
		}
	}
	return true, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// evalValue is an operand resolved in memory: a constant, or a record
// field's value with the field's comparison kind.
type evalValue struct {
	v       any
	isField bool
	kind    kind
}

// operand resolves one side of a comparison to a value in memory, or
// reports that it cannot (false: the SQL compiler must decide). One case
// per operand form, mirroring the compiler's, so the two are easy to
// compare (the differential test checks they agree).
func (ev *evaluator) operand(o Operand) (evalValue, bool) {
	if o.Kind != KindPath {
		v, err := ev.cp.operand(nil, "", o)
		if err != nil {
			return evalValue{}, false
		}
		return evalValue{v: v.c}, true
	}
	if o.Path[0] == "@request" {
		if o.Path[1] == "auth" && len(o.Path) > 3 {
			return evalValue{}, false // relation traversal from the auth record
		}
		v, err := ev.cp.request(o)
		if err != nil || !v.isConst {
			return evalValue{}, false
		}
		return evalValue{v: v.c}, true
	}
	if o.Path[0] == "@collection" || len(o.Path) != 1 {
		return evalValue{}, false
	}
	f := ev.c.Field(o.Path[0])
	if f == nil || f.Type == schema.FieldPassword || f.Name == "tokenKey" || f.Column() == schema.ColJSON {
		return evalValue{}, false
	}
	if !ev.cp.env.Trusted && (f.Hidden || (ev.c.IsAuth() && f.Name == "email")) {
		return evalValue{}, false
	}
	raw := ev.rec[f.Name]
	if f.Name == "id" {
		raw = ev.rec["id"]
	}
	switch o.Modifier {
	case "":
	case "each":
	case "length":
		l, ok := raw.([]string)
		if !ok {
			return evalValue{}, false
		}
		return evalValue{v: float64(len(l)), isField: true, kind: kNumber}, true
	case "lower":
		s, ok := raw.(string)
		if !ok {
			return evalValue{}, false
		}
		return evalValue{v: strings.ToLower(s), isField: true, kind: kText}, true
	default:
		return evalValue{}, false
	}
	if f.Multi() {
		l, _ := raw.([]string)
		if l == nil {
			l = []string{}
		}
		return evalValue{v: l, isField: true, kind: kText}, true
	}
	if m, ok := raw.(json.RawMessage); ok {
		raw = string(m)
	}
	return evalValue{v: raw, isField: true, kind: kindOfField(f)}, true
}

func (ev *evaluator) compare(n *Compare) (bool, bool) {
	if n.Op == OpMatch {
		return ev.match(n)
	}
	l, ok := ev.operand(n.Left)
	if !ok {
		return false, false
	}
	r, ok := ev.operand(n.Right)
	if !ok {
		return false, false
	}
	if !l.isField && !r.isField {
		return constCompare(n.Op, n.Any, l.v, r.v), true
	}
	if castsToText(n.Op, l, r) {
		// The SQL compares through a text cast, whose output differs by
		// engine (SQLite renders booleans as 1/0): let SQL decide.
		return false, false
	}
	one := func(a, b any) bool { return typedCompare(n.Op, l, r, a, b) }
	la, lList := l.v.([]string)
	rb, rList := r.v.([]string)
	switch {
	case lList && rList:
		// As in SQL: the pairs are the cross product, and when it is
		// empty both sides compare as empty values.
		if len(la) == 0 || len(rb) == 0 {
			if n.Any {
				return false, true
			}
			return one("", ""), true
		}
		return listCompare(n.Op, n.Any, la, func(x string) bool {
			return listCompare(n.Op, n.Any, rb, func(y string) bool { return one(x, y) })
		}), true
	case lList:
		return listCompare(n.Op, n.Any, la, func(x string) bool { return one(x, r.v) }), true
	case rList:
		return listCompare(n.Op, n.Any, rb, func(y string) bool { return one(l.v, y) }), true
	}
	return one(l.v, r.v), true
}

// castsToText reports whether the compiled SQL would compare l and r
// through a text cast of a non-text field.
func castsToText(op Op, l, r evalValue) bool {
	isNull := func(v evalValue) bool { return !v.isField && v.v == nil }
	if isNull(l) || isNull(r) {
		return false
	}
	if op == OpLike || op == OpNotLike {
		return (l.isField && l.kind != kText) || (r.isField && r.kind != kText)
	}
	switch {
	case l.isField && r.isField:
		return l.kind != r.kind
	case l.isField || r.isField:
		f, c := l, r
		if !l.isField {
			f, c = r, l
		}
		if f.kind == kText {
			return false
		}
		if list, ok := c.v.([]string); ok {
			for _, x := range list {
				if _, ok := convert(x, f.kind); !ok {
					return true
				}
			}
			return false
		}
		_, ok := convert(c.v, f.kind)
		return !ok
	}
	return false
}

// typedCompare mirrors compiler.cmp: a constant is converted to the
// field's kind; values that cannot be converted, and fields of different
// kinds, compare as text.
func typedCompare(op Op, l, r evalValue, a, b any) bool {
	fieldKind, fieldSide := l.kind, 0
	if !l.isField {
		fieldKind, fieldSide = r.kind, 1
	}
	if (fieldSide == 0 && !r.isField && b == nil) || (fieldSide == 1 && a == nil) {
		val := a
		if fieldSide == 1 {
			val = b
		}
		isNull := fieldKind == kText && (val == nil || val == "")
		switch op {
		case OpEq, OpLike:
			return isNull
		case OpNeq, OpNotLike:
			return !isNull
		}
		return false
	}
	if op == OpLike || op == OpNotLike {
		m := likeMatch(strings.ToLower(toString(a)), strings.ToLower(likePattern(toString(b))))
		return m == (op == OpLike)
	}
	if l.isField && r.isField {
		if l.kind != r.kind {
			a, b = toString(a), toString(b)
		}
		return constCompare(op, false, a, b)
	}
	constVal := b
	if fieldSide == 1 {
		constVal = a
	}
	cv, ok := convert(constVal, fieldKind)
	if !ok {
		return constCompare(op, false, toString(a), toString(b))
	}
	if fieldSide == 0 {
		b = cv
	} else {
		a = cv
	}
	if fieldKind == kText {
		return constCompare(op, false, toString(a), toString(b))
	}
	return constCompare(op, false, a, b)
}
