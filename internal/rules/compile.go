package rules

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Env is what an expression may refer to besides the record itself.
type Env struct {
	Snapshot *schema.Snapshot
	// AuthCollection and Auth describe the authenticated record (nil when
	// the request is anonymous). Auth holds API-shaped values: string,
	// float64, bool, []string for multi-valued fields, json.RawMessage.
	AuthCollection *schema.Collection
	Auth           map[string]any
	// Body is the decoded request body (@request.body), nil for none.
	Body    map[string]any
	Query   url.Values
	Headers http.Header
	Method  string
	Now     time.Time
	// Trusted is true for access rules written by superusers, false for
	// client-supplied filters and sorts, which may not touch hidden fields.
	Trusted bool
}

// CompileError is a semantic error (unknown field, bad traversal...).
type CompileError struct{ Msg string }

// Error implements error.
func (e *CompileError) Error() string { return e.Msg }

func cerr(format string, args ...any) error {
	return &CompileError{Msg: fmt.Sprintf(format, args...)}
}

// Result is a compiled boolean condition. When Const is non-nil the
// expression did not depend on any row and SQL is "1=1" or "1=0"; callers
// can then skip a query entirely.
type Result struct {
	SQL   string
	Const *bool
}

var (
	sqlTrue  = "(1=1)"
	sqlFalse = "(1=0)"
)

func constResult(v bool) Result {
	if v {
		return Result{SQL: sqlTrue, Const: &v}
	}
	return Result{SQL: sqlFalse, Const: &v}
}

// compiler holds per-expression state: the alias counter keeps every
// subquery alias unique within one statement.
type compiler struct {
	b     *sqldb.Builder
	env   *Env
	alias *int
}

// Compile turns e into a boolean SQL condition over the row alias of
// collection c. Values go into b's argument list; only schema-validated
// identifiers are written into the SQL text. A nil e compiles to true.
func Compile(b *sqldb.Builder, c *schema.Collection, rowAlias string, e Expr, env *Env, aliasCounter *int) (Result, error) {
	if e == nil {
		return constResult(true), nil
	}
	if aliasCounter == nil {
		aliasCounter = new(int)
	}
	cp := &compiler{b: b, env: env, alias: aliasCounter}
	return cp.expr(c, rowAlias, e)
}

// CompileString parses and compiles in one step.
func CompileString(b *sqldb.Builder, c *schema.Collection, rowAlias, src string, env *Env, aliasCounter *int) (Result, error) {
	e, err := Parse(src)
	if err != nil {
		return Result{}, err
	}
	return Compile(b, c, rowAlias, e, env, aliasCounter)
}

func (cp *compiler) newAlias(prefix string) string {
	*cp.alias++
	return prefix + strconv.Itoa(*cp.alias)
}

func (cp *compiler) expr(c *schema.Collection, row string, e Expr) (Result, error) {
	switch n := e.(type) {
	case *Logic:
		l, err := cp.expr(c, row, n.Left)
		if err != nil {
			return Result{}, err
		}
		r, err := cp.expr(c, row, n.Right)
		if err != nil {
			return Result{}, err
		}
		if n.And {
			switch {
			case l.Const != nil && !*l.Const, r.Const != nil && !*r.Const:
				return constResult(false), nil
			case l.Const != nil:
				return r, nil
			case r.Const != nil:
				return l, nil
			}
			return Result{SQL: "(" + l.SQL + " AND " + r.SQL + ")"}, nil
		}
		switch {
		case l.Const != nil && *l.Const, r.Const != nil && *r.Const:
			return constResult(true), nil
		case l.Const != nil:
			return r, nil
		case r.Const != nil:
			return l, nil
		}
		return Result{SQL: "(" + l.SQL + " OR " + r.SQL + ")"}, nil
	case *Compare:
		return cp.compare(c, row, n)
	}
	return Result{}, cerr("unsupported expression")
}

// kind is the comparison type of a value.
type kind int

const (
	kText kind = iota
	kNumber
	kBool
	kJSON
)

// value is a resolved operand: either a Go constant or SQL. A multi value
// iterates rows produced by from/where, each exposing expr.
type value struct {
	isConst bool
	c       any // string, float64, bool, nil, or []string for a multi constant

	expr  string
	from  []string
	where []string
	multi bool
	kind  kind
}

func kindOfField(f *schema.Field) kind {
	switch f.Column() {
	case schema.ColNumber:
		return kNumber
	case schema.ColBool:
		return kBool
	case schema.ColJSON:
		return kJSON
	}
	return kText
}

func (cp *compiler) operand(c *schema.Collection, row string, o Operand) (value, error) {
	switch o.Kind {
	case KindString:
		return value{isConst: true, c: o.Str}, nil
	case KindNumber:
		return value{isConst: true, c: o.Num}, nil
	case KindBool:
		return value{isConst: true, c: o.Bool}, nil
	case KindNull:
		return value{isConst: true, c: nil}, nil
	case KindMacro:
		v, err := macro(o.Str, cp.now())
		if err != nil {
			return value{}, err
		}
		return value{isConst: true, c: v}, nil
	case KindPath:
		if o.Path[0] == "@request" {
			return cp.request(o)
		}
		if o.Path[0] == "@collection" {
			if len(o.Path) < 3 {
				return value{}, cerr("@collection needs a collection and a field")
			}
			t := cp.env.Snapshot.Get(o.Path[1])
			if t == nil {
				return value{}, cerr("unknown collection %q", o.Path[1])
			}
			a := cp.newAlias("_c")
			v := value{from: []string{cp.b.Q(t.Name) + " " + a}, multi: true}
			// A client may only see the rows the collection's list rule
			// lets it list.
			if err := cp.readable(t, a, t.ListRule, &v); err != nil {
				return value{}, err
			}
			return cp.path(t, a, o.Path[2:], o.Modifier, v)
		}
		return cp.path(c, row, o.Path, o.Modifier, value{})
	}
	return value{}, cerr("unsupported operand")
}

func (cp *compiler) now() time.Time {
	if cp.env.Now.IsZero() {
		return time.Now().UTC()
	}
	return cp.env.Now.UTC()
}

func macro(name string, now time.Time) (any, error) {
	y, m, d := now.Date()
	day := func(t time.Time) any { return schema.FormatDate(t) }
	switch name {
	case "now":
		return day(now), nil
	case "second":
		return float64(now.Second()), nil
	case "minute":
		return float64(now.Minute()), nil
	case "hour":
		return float64(now.Hour()), nil
	case "weekday":
		return float64(now.Weekday()), nil
	case "day":
		return float64(d), nil
	case "month":
		return float64(m), nil
	case "year":
		return float64(y), nil
	case "todayStart":
		return day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)), nil
	case "todayEnd":
		return day(time.Date(y, m, d, 23, 59, 59, 999e6, time.UTC)), nil
	case "monthStart":
		return day(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)), nil
	case "monthEnd":
		return day(time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Millisecond)), nil
	case "yearStart":
		return day(time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)), nil
	case "yearEnd":
		return day(time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Millisecond)), nil
	}
	return nil, cerr("unknown macro @%s", name)
}

// request resolves @request.* operands to constants, except auth paths
// that traverse relations, which become SQL rooted at the auth record.
// Its length is one case per @request.* form (method, query, headers,
// body with its modifiers, auth), kept side by side so the forms the
// language accepts can be read in one place.
func (cp *compiler) request(o Operand) (value, error) {
	p := o.Path
	if len(p) < 2 {
		return value{}, cerr("incomplete @request reference")
	}
	env := cp.env
	switch p[1] {
	case "method":
		return value{isConst: true, c: strings.ToUpper(env.Method)}, nil
	case "query":
		if len(p) != 3 {
			return value{}, cerr("use @request.query.<param>")
		}
		if o.Modifier == "isset" {
			return value{isConst: true, c: env.Query.Has(p[2])}, nil
		}
		if !env.Query.Has(p[2]) {
			return value{isConst: true, c: nil}, nil
		}
		return value{isConst: true, c: env.Query.Get(p[2])}, nil
	case "headers":
		if len(p) != 3 {
			return value{}, cerr("use @request.headers.<name>")
		}
		h := env.Headers.Get(strings.ReplaceAll(p[2], "_", "-"))
		return value{isConst: true, c: h}, nil
	case "body":
		if len(p) != 3 {
			return value{}, cerr("use @request.body.<field>")
		}
		raw, ok := env.Body[p[2]]
		switch o.Modifier {
		case "isset":
			return value{isConst: true, c: ok}, nil
		case "length":
			switch x := raw.(type) {
			case []any:
				return value{isConst: true, c: float64(len(x))}, nil
			case nil:
				return value{isConst: true, c: 0.0}, nil
			}
			return value{isConst: true, c: 1.0}, nil
		case "", "each":
		case "lower":
			if s, ok := raw.(string); ok {
				return value{isConst: true, c: strings.ToLower(s)}, nil
			}
		default:
			return value{}, cerr("unsupported modifier :%s", o.Modifier)
		}
		return constFromJSON(raw), nil
	case "auth":
		if len(p) < 3 {
			return value{}, cerr("use @request.auth.<field>")
		}
		name := p[2]
		if name == "password" || name == "tokenKey" {
			return value{}, cerr("field %q cannot be referenced", name)
		}
		if env.Auth == nil {
			if len(p) == 3 && o.Modifier == "" {
				return value{isConst: true, c: nil}, nil
			}
			// Anonymous: every auth path is empty, and so is any list.
			if o.Modifier == "length" {
				return value{isConst: true, c: 0.0}, nil
			}
			return value{isConst: true, c: nil}, nil
		}
		ac := env.AuthCollection
		if len(p) == 3 {
			switch name {
			case "id", "collectionId", "collectionName":
				return value{isConst: true, c: env.Auth[name]}, nil
			}
			f := ac.Field(name)
			if f == nil {
				return value{}, cerr("unknown field %q of @request.auth", name)
			}
			if f.Type == schema.FieldPassword || f.Name == "tokenKey" {
				return value{}, cerr("field %q cannot be referenced", name)
			}
			v := constFromAPI(env.Auth[f.Name])
			if o.Modifier == "length" {
				if l, ok := v.c.([]string); ok {
					return value{isConst: true, c: float64(len(l))}, nil
				}
				return value{isConst: true, c: 0.0}, nil
			}
			return v, nil
		}
		a := cp.newAlias("_a")
		v := value{
			from:  []string{cp.b.Q(ac.Name) + " " + a},
			where: []string{a + "." + cp.b.Q("id") + " = " + cp.b.Arg(env.Auth["id"])},
		}
		return cp.path(ac, a, p[2:], o.Modifier, v)
	}
	return value{}, cerr("unknown @request property %q", p[1])
}

func constFromJSON(raw any) value {
	switch x := raw.(type) {
	case nil, string, float64, bool:
		return value{isConst: true, c: x}
	case json.Number:
		f, _ := x.Float64()
		return value{isConst: true, c: f}
	case []any:
		out := make([]string, 0, len(x))
		for _, it := range x {
			out = append(out, toString(it))
		}
		return value{isConst: true, c: out}
	case []string:
		return value{isConst: true, c: x}
	}
	b, _ := json.Marshal(raw)
	return value{isConst: true, c: string(b)}
}

func constFromAPI(v any) value {
	switch x := v.(type) {
	case json.RawMessage:
		return value{isConst: true, c: string(x)}
	}
	return constFromJSON(v)
}

// path resolves a field path starting at collection c (row alias a). The
// incoming v carries FROM items already needed (for @collection and auth
// traversals). Single relations add a correlated row, multi-valued ones
// make the value iterate. One walk over the segments: each step depends
// on the alias and FROM items the previous one produced.
func (cp *compiler) path(c *schema.Collection, a string, segs []string, mod string, v value) (value, error) {
	for i, seg := range segs {
		f := c.Field(seg)
		if f == nil {
			return value{}, cerr("unknown field %q in collection %q", seg, c.Name)
		}
		if f.Type == schema.FieldPassword || f.Name == "tokenKey" {
			return value{}, cerr("field %q cannot be referenced", seg)
		}
		if !cp.env.Trusted && (f.Hidden || (c.IsAuth() && f.Name == "email")) {
			return value{}, cerr("field %q cannot be filtered", seg)
		}
		col := a + "." + cp.b.Q(f.Name)
		last := i == len(segs)-1
		if last {
			switch {
			case mod == "length":
				if !f.Multi() {
					return value{}, cerr(":length applies to multi-valued fields")
				}
				v.expr, v.kind = cp.b.D.JSONArrayLength(col), kNumber
			case f.Multi():
				je := cp.newAlias("_j")
				v.from = append(v.from, cp.b.D.JSONEach(col, je))
				v.expr, v.kind, v.multi = je+".value", kText, true
			default:
				v.expr, v.kind = col, kindOfField(f)
			}
			if mod == "lower" {
				if v.kind != kText {
					return value{}, cerr(":lower applies to text values")
				}
				v.expr = "LOWER(" + v.expr + ")"
			} else if mod != "" && mod != "length" && mod != "each" {
				return value{}, cerr("unsupported modifier :%s", mod)
			}
			break
		}
		if f.Type == schema.FieldJSON {
			rest := segs[i+1:]
			v.expr, v.kind = cp.b.D.JSONPath(col, rest), kJSON
			if mod != "" {
				return value{}, cerr("modifiers do not apply to JSON paths")
			}
			break
		}
		if f.Type != schema.FieldRelation {
			return value{}, cerr("field %q is not a relation and cannot be traversed", seg)
		}
		t := cp.env.Snapshot.Get(f.CollectionID)
		if t == nil {
			return value{}, cerr("relation %q points at a missing collection", seg)
		}
		r := cp.newAlias("_r")
		if f.Multi() {
			je := cp.newAlias("_j")
			v.from = append(v.from, cp.b.D.JSONEach(col, je), cp.b.Q(t.Name)+" "+r)
			v.where = append(v.where, r+"."+cp.b.Q("id")+" = "+je+".value")
			v.multi = true
		} else {
			v.from = append(v.from, cp.b.Q(t.Name)+" "+r)
			v.where = append(v.where, r+"."+cp.b.Q("id")+" = "+col)
		}
		// Following a relation must not reveal what the caller could not
		// view directly: the target's view rule joins the condition.
		if err := cp.readable(t, r, t.ViewRule, &v); err != nil {
			return value{}, err
		}
		c, a = t, r
	}
	if !v.multi && len(v.from) > 0 {
		// A chain of single relations: one correlated scalar subquery.
		// A missing target reads as the field's zero value, like an empty
		// field would.
		sub := "(SELECT " + v.expr + " FROM " + strings.Join(v.from, ", ") + whereSQL(v.where) + " LIMIT 1)"
		v.expr = coalesceZero(sub, v.kind)
		v.from, v.where = nil, nil
	}
	return v, nil
}

// readable adds rule (of collection t, row alias a) to v's conditions for
// client filters; rules written by superusers (Trusted) see everything.
// A superusers-only target cannot be filtered through at all.
func (cp *compiler) readable(t *schema.Collection, a string, rule *string, v *value) error {
	if cp.env.Trusted {
		return nil
	}
	if rule == nil {
		return cerr("collection %q cannot be filtered through", t.Name)
	}
	if *rule == "" {
		return nil
	}
	e, err := Parse(*rule)
	if err != nil {
		return cerr("the rules of %q are invalid", t.Name)
	}
	env := *cp.env
	env.Trusted = true
	sub := &compiler{b: cp.b, env: &env, alias: cp.alias}
	res, err := sub.expr(t, a, e)
	if err != nil {
		return err
	}
	switch {
	case res.Const == nil:
		v.where = append(v.where, res.SQL)
	case !*res.Const:
		v.where = append(v.where, sqlFalse)
	}
	return nil
}

func coalesceZero(expr string, k kind) string {
	switch k {
	case kText:
		return "COALESCE(" + expr + ", '')"
	case kNumber:
		return "COALESCE(" + expr + ", 0)"
	case kBool:
		return "COALESCE(" + expr + ", FALSE)"
	}
	return expr
}

func whereSQL(w []string) string {
	if len(w) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w, " AND ")
}

// SortExpr resolves a sort key (a field path, never multi-valued) to SQL.
func SortExpr(b *sqldb.Builder, c *schema.Collection, row string, path []string, env *Env, aliasCounter *int) (string, error) {
	cp := &compiler{b: b, env: env, alias: aliasCounter}
	v, err := cp.path(c, row, path, "", value{})
	if err != nil {
		return "", err
	}
	if v.multi {
		return "", cerr("cannot sort by multi-valued field %q", strings.Join(path, "."))
	}
	return v.expr, nil
}

func (cp *compiler) compare(c *schema.Collection, row string, n *Compare) (Result, error) {
	l, err := cp.operand(c, row, n.Left)
	if err != nil {
		return Result{}, err
	}
	r, err := cp.operand(c, row, n.Right)
	if err != nil {
		return Result{}, err
	}
	if n.Op == OpMatch {
		return cp.match(l, r, n)
	}
	if l.isConst && r.isConst {
		return constResult(constCompare(n.Op, n.Any, l.c, r.c)), nil
	}
	// A multi-valued constant (a list in the body or on the auth record)
	// iterates like a multi-valued column.
	for _, v := range []*value{&l, &r} {
		if list, ok := v.c.([]string); ok && v.isConst {
			je := cp.newAlias("_j")
			*v = value{from: []string{cp.b.D.JSONEachParam(cp.b.Arg(schema.EncodeList(list)), je)},
				expr: je + ".value", multi: true, kind: kText}
		}
	}
	if !l.multi && !r.multi {
		return Result{SQL: cp.cmp(n.Op, l, r)}, nil
	}
	from := append(append([]string{}, l.from...), r.from...)
	where := append(append([]string{}, l.where...), r.where...)
	cond := cp.cmp(n.Op, l, r)
	src := " FROM " + strings.Join(from, ", ")
	if n.Any {
		return Result{SQL: "EXISTS (SELECT 1" + src + whereSQL(append(where, cond)) + ")"}, nil
	}
	// Every element must match; an empty list compares as an empty value,
	// so `tags = ""` matches no tags and `tags != "a"` matches them too.
	el, er := l, r
	if el.multi {
		el = value{isConst: true, c: ""}
	}
	if er.multi {
		er = value{isConst: true, c: ""}
	}
	var empty string
	if el.isConst && er.isConst {
		empty = sqlFalse
		if constCompare(n.Op, false, el.c, er.c) {
			empty = sqlTrue
		}
	} else {
		empty = "COALESCE(" + cp.cmp(n.Op, el, er) + ", FALSE)"
	}
	return Result{SQL: "(CASE WHEN EXISTS (SELECT 1" + src + whereSQL(where) + ") THEN NOT EXISTS (SELECT 1" + src +
		whereSQL(append(where, "NOT COALESCE("+cond+", FALSE)")) + ") ELSE " + empty + " END)"}, nil
}

// Bounds on a word search, so one request's work stays small.
const (
	maxSearchWords   = 16
	maxSearchWordLen = 100
)

// match renders `field @@ "words"`: each word, bound as an escaped LIKE
// pattern, must occur in the field. The words never reach SQL text, and
// search syntax (quotes, *, -, NEAR) has no meaning: it is matched
// literally.
func (cp *compiler) match(l, r value, n *Compare) (Result, error) {
	if n.Any || l.isConst || l.multi || l.kind != kText {
		return Result{}, cerr("@@ needs a single text field on its left, at offset %d", n.Pos)
	}
	q, ok := r.c.(string)
	if !r.isConst || !ok {
		return Result{}, cerr("@@ needs a quoted search text on its right, at offset %d", n.Pos)
	}
	words := strings.Fields(q)
	if len(words) == 0 {
		return Result{}, cerr("the search text after @@ is empty")
	}
	if len(words) > maxSearchWords {
		return Result{}, cerr("the search text after @@ has more than %d words", maxSearchWords)
	}
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	parts := make([]string, len(words))
	for i, w := range words {
		if utf8.RuneCountInString(w) > maxSearchWordLen {
			return Result{}, cerr("a word in the search text after @@ is longer than %d characters", maxSearchWordLen)
		}
		parts[i] = cp.like(OpLike, l.expr, cp.b.Arg("%"+esc.Replace(w)+"%"), true)
	}
	return Result{SQL: "(" + strings.Join(parts, " AND ") + ")"}, nil
}

// cmp renders one scalar comparison. Constants are converted to the other
// side's type, so every engine compares like with like and PostgreSQL
// never sees an untyped parameter against a typed column.
func (cp *compiler) cmp(op Op, l, r value) string {
	if l.isConst && !r.isConst {
		// Normalise to column-on-the-left; flip the operator.
		l, r = r, l
		op = flip(op)
		if op == OpLike || op == OpNotLike {
			// `"abc" ~ title` means title is contained in "abc": keep the
			// original orientation for LIKE by swapping back.
			l, r = r, l
			op = flip(op)
			return cp.like(op, cp.sqlOf(l, r.kind), r.expr, false)
		}
	}
	if r.isConst && r.c == nil {
		return cp.nullCmp(op, l)
	}
	switch op {
	case OpLike, OpNotLike:
		if r.isConst {
			return cp.like(op, cp.text(l), cp.b.Arg(likePattern(toString(r.c))), true)
		}
		return cp.like(op, cp.text(l), cp.text(r), false)
	}
	var ls, rs string
	switch {
	case r.isConst:
		ls = l.expr
		if cv, ok := convert(r.c, l.kind); ok {
			if l.kind == kJSON {
				// JSON paths extract text on some engines; compare
				// numerically when the constant is a number.
				if _, isNum := cv.(float64); isNum {
					ls = cp.b.D.NumberFromText(l.expr)
				}
			}
			rs = cp.b.Arg(cv)
		} else {
			ls, rs = cp.b.D.CastText(l.expr), cp.b.Arg(toString(r.c))
		}
	case l.kind != r.kind:
		ls, rs = cp.b.D.CastText(l.expr), cp.b.D.CastText(r.expr)
	default:
		ls, rs = l.expr, r.expr
	}
	return "(" + ls + " " + sqlOp(op) + " " + rs + ")"
}

func (cp *compiler) sqlOf(v value, k kind) string {
	if v.isConst {
		return cp.b.Arg(toString(v.c))
	}
	return cp.text(v)
}

func (cp *compiler) text(v value) string {
	if v.kind == kText {
		return v.expr
	}
	return cp.b.D.CastText(v.expr)
}

func (cp *compiler) like(op Op, expr, pattern string, patternIsParam bool) string {
	if !patternIsParam {
		pattern = "('%' || " + pattern + " || '%')"
	}
	s := cp.b.D.Like(expr, pattern)
	if op == OpNotLike {
		return "(NOT " + s + ")"
	}
	return "(" + s + ")"
}

func (cp *compiler) nullCmp(op Op, l value) string {
	var isNull string
	switch l.kind {
	case kText:
		isNull = "(" + l.expr + " = '' OR " + l.expr + " IS NULL)"
	case kJSON:
		isNull = "(" + l.expr + " IS NULL OR " + cp.b.D.CastText(l.expr) + " IN ('null', '', '\"\"'))"
	default:
		isNull = "(" + l.expr + " IS NULL)"
	}
	switch op {
	case OpEq, OpLike:
		return isNull
	case OpNeq, OpNotLike:
		return "(NOT " + isNull + ")"
	}
	// Ordering against null is never true.
	return sqlFalse
}

// likePattern makes a contains-pattern: a value without wildcards matches
// anywhere, with its own % and _ taken literally; a value with % is used
// as the caller's own pattern.
func likePattern(s string) string {
	if strings.Contains(s, "%") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

func sqlOp(op Op) string {
	switch op {
	case OpEq:
		return "="
	case OpNeq:
		return "!="
	case OpGt:
		return ">"
	case OpGte:
		return ">="
	case OpLt:
		return "<"
	case OpLte:
		return "<="
	}
	return "="
}

func flip(op Op) Op {
	switch op {
	case OpGt:
		return OpLt
	case OpGte:
		return OpLte
	case OpLt:
		return OpGt
	case OpLte:
		return OpGte
	}
	return op
}

// convert coerces a constant to a column kind; ok is false when it has no
// faithful representation there (then both sides compare as text).
func convert(v any, k kind) (any, bool) {
	switch k {
	case kText:
		return toString(v), true
	case kJSON:
		if _, ok := v.(float64); ok {
			return v, true
		}
		return toString(v), true
	case kNumber:
		switch x := v.(type) {
		case float64:
			return x, true
		case bool:
			if x {
				return 1.0, true
			}
			return 0.0, true
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			return f, err == nil
		}
	case kBool:
		switch x := v.(type) {
		case bool:
			return x, true
		case float64:
			return x != 0, true
		case string:
			b, err := strconv.ParseBool(x)
			return b, err == nil
		}
	}
	return nil, false
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []string:
		return schema.EncodeList(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// constCompare evaluates a comparison of two constants in Go, with the same
// meaning the SQL would have: null equals the empty value, numbers compare
// numerically, lists use any/all semantics.
func constCompare(op Op, anyOf bool, a, b any) bool {
	if la, ok := a.([]string); ok {
		return listCompare(op, anyOf, la, func(x string) bool { return constCompare(op, false, x, b) })
	}
	if lb, ok := b.([]string); ok {
		return listCompare(op, anyOf, lb, func(x string) bool { return constCompare(op, false, a, x) })
	}
	switch op {
	case OpLike, OpNotLike:
		m := likeMatch(strings.ToLower(toString(a)), strings.ToLower(likePattern(toString(b))))
		return m == (op == OpLike)
	}
	if a == nil || b == nil {
		z := isZero(a) && isZero(b)
		switch op {
		case OpEq:
			return z
		case OpNeq:
			return !z
		}
		return false
	}
	var c int
	fa, aNum := a.(float64)
	fb, bNum := b.(float64)
	switch {
	case aNum && bNum:
		c = cmp3(fa, fb)
	case aNum || bNum:
		x, ok1 := convert(a, kNumber)
		y, ok2 := convert(b, kNumber)
		if ok1 && ok2 {
			c = cmp3(x.(float64), y.(float64))
		} else {
			c = strings.Compare(toString(a), toString(b))
		}
	default:
		c = strings.Compare(toString(a), toString(b))
	}
	switch op {
	case OpEq:
		return c == 0
	case OpNeq:
		return c != 0
	case OpGt:
		return c > 0
	case OpGte:
		return c >= 0
	case OpLt:
		return c < 0
	case OpLte:
		return c <= 0
	}
	return false
}

func listCompare(op Op, anyOf bool, list []string, f func(string) bool) bool {
	if len(list) == 0 {
		if anyOf {
			return false
		}
		return f("")
	}
	for _, x := range list {
		if f(x) == anyOf {
			return anyOf
		}
	}
	return !anyOf
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case float64:
		return x == 0
	case bool:
		return !x
	}
	return false
}

func cmp3(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// likeMatch implements SQL LIKE with % and _ wildcards and \ escapes. It
// backtracks only to the last %, so hostile patterns cost O(len(s)*len(p)).
func likeMatch(s, p string) bool {
	type tok struct {
		c    byte
		kind byte // 'l' literal, '_' any one, '%' any run
	}
	var toks []tok
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i++
			toks = append(toks, tok{p[i], 'l'})
		case p[i] == '%' || p[i] == '_':
			toks = append(toks, tok{0, p[i]})
		default:
			toks = append(toks, tok{p[i], 'l'})
		}
	}
	si, ti := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case ti < len(toks) && toks[ti].kind == '%':
			star, mark = ti, si
			ti++
		case ti < len(toks) && (toks[ti].kind == '_' || toks[ti].c == s[si]):
			si++
			ti++
		case star >= 0:
			mark++
			si, ti = mark, star+1
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].kind == '%' {
		ti++
	}
	return ti == len(toks)
}
