package rules

import (
	"errors"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	cases := []struct{ in, want string }{
		{`a = 1`, `a = 1`},
		{`  a=1  `, `a = 1`},
		{`a=1 || b=2 && c=3`, `a = 1 || (b = 2 && c = 3)`},
		{`(a=1 || b=2) && c=3`, `(a = 1 || b = 2) && c = 3`},
		{`a=1 && (b=2 && c=3)`, `a = 1 && (b = 2 && c = 3)`},
		{`a != "x"`, `a != "x"`},
		{`a > 1 && a >= 2 && a < 3 && a <= 4`, `a > 1 && a >= 2 && a < 3 && a <= 4`},
		{`a ~ 'x' || a !~ "y"`, `a ~ "x" || a !~ "y"`},
		{`tags ?= "go"`, `tags ?= "go"`},
		{`tags ?!= "go" && n ?> 1 && n ?>= 1 && n ?< 1 && n ?<= 1 && t ?~ "a" && t ?!~ "b"`, `tags ?!= "go" && n ?> 1 && n ?>= 1 && n ?< 1 && n ?<= 1 && t ?~ "a" && t ?!~ "b"`},
		{`x = -1.5`, `x = -1.5`},
		{`x = 0.25`, `x = 0.25`},
		{`x = true && y = false && z = null`, `x = true && y = false && z = null`},
		{`author.handle = "ana"`, `author.handle = "ana"`},
		{`tags:length > 2`, `tags:length > 2`},
		{`@request.auth.id != ""`, `@request.auth.id != ""`},
		{`@request.body.title:isset = true`, `@request.body.title:isset = true`},
		{`@collection.users.id ?= author`, `@collection.users.id ?= author`},
		{`created >= @todayStart && created < @now`, `created >= @todayStart && created < @now`},
		{`s = "a\"b\\c\nd\te"`, `s = "a\"b\\c\nd\te"`},
		{`s = 'it\'s'`, `s = "it's"`},
		{`s = "\q"`, `s = "q"`},
		{`trueish = 1`, `trueish = 1`},
		{`null_count = 1`, `null_count = 1`},
		{"a\t=\n1", `a = 1`},
	}
	for _, c := range cases {
		e, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := Format(e); got != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestParseStructure(t *testing.T) {
	e, err := Parse(`a=1 || b=2 && c=3`)
	if err != nil {
		t.Fatal(err)
	}
	or, ok := e.(*Logic)
	if !ok || or.And {
		t.Fatalf("top is not ||: %#v", e)
	}
	if and, ok := or.Right.(*Logic); !ok || !and.And {
		t.Fatalf("&& does not bind tighter: %s", Format(e))
	}
	c := or.Left.(*Compare)
	if c.Pos != 1 || c.Left.Kind != KindPath || c.Right.Kind != KindNumber || c.Right.Num != 1 {
		t.Errorf("leaf %#v", c)
	}
	e, _ = Parse(`@request.auth.id = @now`)
	c = e.(*Compare)
	if strings.Join(c.Left.Path, "|") != "@request|auth|id" || c.Right.Kind != KindMacro || c.Right.Str != "now" {
		t.Errorf("request path/macro: %#v", c)
	}
	if e, err := Parse("   "); e != nil || err != nil {
		t.Errorf("blank input: %v %v", e, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in  string
		pos int
		msg string
	}{
		{`a =`, 3, "expected operand"},
		{`a`, 1, "expected operator"},
		{`= 1`, 0, "expected operand"},
		{`a = 1)`, 5, "unexpected"},
		{`(a = 1`, 6, "expected ')'"},
		{`a = "x`, 4, "unterminated string"},
		{`a = 'x\`, 4, "unterminated string"},
		{`a == 1`, 3, "expected operand"},
		{`a = 1 &&`, 8, "expected a comparison"},
		{`a = 1 & b = 2`, 6, "unexpected"},
		{`a = @foo`, 4, `unknown macro "@foo"`},
		{`a = @`, 4, "expected a name"},
		{`@request = 1`, 0, "incomplete @request"},
		{`a. = 1`, 2, "expected a field name"},
		{`a:=1`, 2, "expected a modifier"},
		{`a = 1.`, 4, "invalid number"},
		{`a = -`, 4, "invalid number"},
		{`a = 12abc`, 4, "invalid number"},
		{`a = 1e400`, 4, "invalid number"},
		{`a = $1`, 4, "expected operand"},
		{`a = 1; DROP TABLE x`, 5, "unexpected"},
		{strings.Repeat("(", MaxDepth+1) + "a=1" + strings.Repeat(")", MaxDepth+1), MaxDepth, "too deeply nested"},
		{strings.Repeat("a=1 && ", MaxComparisons) + "a=1", 0, "too many comparisons"},
		{"a.b.c.d.e.f.g.h.i = 1", 0, "path too long"},
		{strings.Repeat("x", MaxLength+1), MaxLength, "expression too long"},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q): err %v, want SyntaxError", c.in, err)
			continue
		}
		if !strings.Contains(se.Msg, c.msg) {
			t.Errorf("Parse(%q): %q, want %q", c.in, se.Msg, c.msg)
		}
		if c.pos > 0 && se.Pos != c.pos && !strings.Contains(c.msg, "too many") && !strings.Contains(c.msg, "path too long") {
			t.Errorf("Parse(%q): position %d, want %d", c.in, se.Pos, c.pos)
		}
		if se.Pos < 0 || se.Pos > len(c.in) {
			t.Errorf("Parse(%q): position %d outside input", c.in, se.Pos)
		}
	}
}
