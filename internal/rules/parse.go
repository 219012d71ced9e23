package rules

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

var macros = map[string]bool{
	"now": true, "second": true, "minute": true, "hour": true, "weekday": true, "day": true,
	"month": true, "year": true, "todayStart": true, "todayEnd": true, "monthStart": true,
	"monthEnd": true, "yearStart": true, "yearEnd": true,
}

type parser struct {
	src   string
	pos   int
	depth int
	count int
}

// Parse parses a filter expression. Empty (or blank) input yields a nil
// expression and no error: no condition. Errors are *SyntaxError.
func Parse(input string) (Expr, error) {
	if len(input) > MaxLength {
		return nil, &SyntaxError{Pos: MaxLength, Msg: "expression too long"}
	}
	if i := strings.IndexByte(input, 0); i >= 0 {
		return nil, &SyntaxError{Pos: i, Msg: "NUL character"}
	}
	if !utf8.ValidString(input) {
		return nil, &SyntaxError{Pos: 0, Msg: "invalid UTF-8"}
	}
	p := &parser{src: input}
	p.skipSpace()
	if p.pos == len(p.src) {
		return nil, nil
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, p.errf("unexpected %s", p.near())
	}
	return e, nil
}

func (p *parser) errf(format string, args ...any) error {
	msg := format
	if len(args) > 0 {
		msg = sprintf(format, args...)
	}
	return &SyntaxError{Pos: p.pos, Msg: msg}
}

// sprintf is a tiny %s/%q formatter, keeping the package free of fmt in
// the hot path of error-free parsing.
func sprintf(format string, args ...any) string {
	var b strings.Builder
	ai := 0
	for i := 0; i < len(format); i++ {
		if format[i] == '%' && i+1 < len(format) && ai < len(args) {
			s, _ := args[ai].(string)
			if format[i+1] == 'q' {
				s = strconv.Quote(s)
			}
			b.WriteString(s)
			ai++
			i++
			continue
		}
		b.WriteByte(format[i])
	}
	return b.String()
}

// near describes the token at the current position for error messages.
func (p *parser) near() string {
	if p.pos >= len(p.src) {
		return "end of expression"
	}
	end := p.pos + 1
	for end < len(p.src) && end-p.pos < 12 && !isSpace(p.src[end]) {
		end++
	}
	return strconv.Quote(p.src[p.pos:end])
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

func (p *parser) peek(s string) bool { return strings.HasPrefix(p.src[p.pos:], s) }

func (p *parser) or() (Expr, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for {
		p.skipSpace()
		if !p.peek("||") {
			return left, nil
		}
		p.pos += 2
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = &Logic{And: false, Left: left, Right: right}
	}
}

func (p *parser) and() (Expr, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		p.skipSpace()
		if !p.peek("&&") {
			return left, nil
		}
		p.pos += 2
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = &Logic{And: true, Left: left, Right: right}
	}
}

func (p *parser) unary() (Expr, error) {
	p.skipSpace()
	if p.pos >= len(p.src) {
		return nil, p.errf("expected a comparison, found end of expression")
	}
	if p.src[p.pos] == '(' {
		p.depth++
		if p.depth > MaxDepth {
			return nil, p.errf("too deeply nested")
		}
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ')' {
			return nil, p.errf("expected ')', found %s", p.near())
		}
		p.pos++
		p.depth--
		return e, nil
	}
	return p.compare()
}

func (p *parser) compare() (Expr, error) {
	p.count++
	if p.count > MaxComparisons {
		return nil, p.errf("too many comparisons")
	}
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	opPos := p.pos
	op, anyOf, ok := p.operator()
	if !ok {
		return nil, p.errf("expected operator, found %s", p.near())
	}
	right, err := p.operand()
	if err != nil {
		return nil, err
	}
	return &Compare{Op: op, Any: anyOf, Left: left, Right: right, Pos: opPos}, nil
}

func (p *parser) operator() (Op, bool, bool) {
	anyOf := false
	start := p.pos
	if p.peek("?") {
		anyOf = true
		p.pos++
	}
	ops := []struct {
		s  string
		op Op
	}{{"@@", OpMatch}, {"!=", OpNeq}, {"!~", OpNotLike}, {">=", OpGte}, {"<=", OpLte}, {"=", OpEq}, {">", OpGt}, {"<", OpLt}, {"~", OpLike}}
	for _, o := range ops {
		if p.peek(o.s) {
			p.pos += len(o.s)
			return o.op, anyOf, true
		}
	}
	p.pos = start
	return 0, false, false
}

func isIdentStart(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || (c >= '0' && c <= '9') }

func (p *parser) operand() (Operand, error) {
	p.skipSpace()
	start := p.pos
	if p.pos >= len(p.src) {
		return Operand{}, p.errf("expected operand, found end of expression")
	}
	c := p.src[p.pos]
	switch {
	case c == '"' || c == '\'':
		s, err := p.str(c)
		if err != nil {
			return Operand{}, err
		}
		return Operand{Kind: KindString, Str: s, Pos: start}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == '@':
		p.pos++
		name := p.ident()
		if name == "" {
			p.pos = start
			return Operand{}, p.errf("expected a name after '@'")
		}
		if name == "request" || name == "collection" {
			if p.pos >= len(p.src) || p.src[p.pos] != '.' {
				p.pos = start
				return Operand{}, p.errf("incomplete @%s reference", name)
			}
			return p.path(start, []string{"@" + name})
		}
		if !macros[name] {
			p.pos = start
			return Operand{}, p.errf("unknown macro %q", "@"+name)
		}
		return Operand{Kind: KindMacro, Str: name, Pos: start}, nil
	case isIdentStart(c):
		save := p.pos
		word := p.ident()
		if p.pos >= len(p.src) || (p.src[p.pos] != '.' && p.src[p.pos] != ':') {
			switch word {
			case "true", "false":
				return Operand{Kind: KindBool, Bool: word == "true", Pos: start}, nil
			case "null":
				return Operand{Kind: KindNull, Pos: start}, nil
			}
		}
		p.pos = save
		return p.path(start, nil)
	}
	return Operand{}, p.errf("expected operand, found %s", p.near())
}

func (p *parser) ident() string {
	start := p.pos
	if p.pos < len(p.src) && isIdentStart(p.src[p.pos]) {
		p.pos++
		for p.pos < len(p.src) && isIdentChar(p.src[p.pos]) {
			p.pos++
		}
	}
	return p.src[start:p.pos]
}

// path reads dot-separated segments (after any already in segs) and an
// optional :modifier.
func (p *parser) path(start int, segs []string) (Operand, error) {
	if len(segs) > 0 {
		p.pos++ // the dot after @request / @collection
	}
	for {
		seg := p.ident()
		if seg == "" {
			return Operand{}, p.errf("expected a field name, found %s", p.near())
		}
		segs = append(segs, seg)
		if len(segs) > MaxPathLength {
			return Operand{}, p.errf("path too long")
		}
		if p.pos < len(p.src) && p.src[p.pos] == '.' {
			p.pos++
			continue
		}
		break
	}
	op := Operand{Kind: KindPath, Path: segs, Pos: start}
	if p.pos < len(p.src) && p.src[p.pos] == ':' {
		p.pos++
		ms := p.pos
		for p.pos < len(p.src) && p.src[p.pos] >= 'a' && p.src[p.pos] <= 'z' {
			p.pos++
		}
		if p.pos == ms {
			return Operand{}, p.errf("expected a modifier name after ':'")
		}
		op.Modifier = p.src[ms:p.pos]
	}
	return op, nil
}

func (p *parser) number() (Operand, error) {
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	digits := 0
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
		digits++
	}
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		p.pos++
		frac := 0
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
			frac++
		}
		if frac == 0 {
			p.pos = start
			return Operand{}, p.errf("invalid number %s", p.near())
		}
		digits += frac
	}
	if digits == 0 || (p.pos < len(p.src) && isIdentChar(p.src[p.pos])) {
		p.pos = start
		return Operand{}, p.errf("invalid number %s", p.near())
	}
	n, err := strconv.ParseFloat(p.src[start:p.pos], 64)
	if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
		p.pos = start
		return Operand{}, p.errf("invalid number %s", p.near())
	}
	return Operand{Kind: KindNumber, Num: n, Pos: start}, nil
}

func (p *parser) str(quote byte) (string, error) {
	start := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == quote:
			p.pos++
			return b.String(), nil
		case c == '\\':
			if p.pos+1 >= len(p.src) {
				p.pos = start
				return "", p.errf("unterminated string")
			}
			p.pos++
			switch e := p.src[p.pos]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
		p.pos++
	}
	p.pos = start
	return "", p.errf("unterminated string")
}

// String renders the operand in canonical syntax.
func (o Operand) String() string {
	switch o.Kind {
	case KindString:
		return quoteString(o.Str)
	case KindNumber:
		return strconv.FormatFloat(o.Num, 'f', -1, 64)
	case KindBool:
		return strconv.FormatBool(o.Bool)
	case KindNull:
		return "null"
	case KindMacro:
		return "@" + o.Str
	}
	s := strings.Join(o.Path, ".")
	if o.Modifier != "" {
		s += ":" + o.Modifier
	}
	return s
}

func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Format renders e in canonical syntax such that Parse(Format(e)) is
// structurally equal to e. Parentheses appear only where the tree needs
// them (an operator change, or a right operand of the same operator), so
// the output is never nested deeper than a source that parses to e.
func Format(e Expr) string { return format(e, nil, false) }

func format(e Expr, parent *Logic, right bool) string {
	switch n := e.(type) {
	case *Logic:
		op := " || "
		if n.And {
			op = " && "
		}
		s := format(n.Left, n, false) + op + format(n.Right, n, true)
		if parent != nil && (parent.And != n.And || right) {
			return "(" + s + ")"
		}
		return s
	case *Compare:
		op := n.Op.String()
		if n.Any {
			op = "?" + op
		}
		return n.Left.String() + " " + op + " " + n.Right.String()
	}
	return ""
}
