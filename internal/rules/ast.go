// Package rules parses Plinth's filter language, shared by the `filter`
// query parameter and by collection access rules, and compiles it to
// parameterised SQL for a store dialect.
//
// The grammar, loosest binding first:
//
//	expr    := and ( "||" and )*
//	and     := unary ( "&&" unary )*
//	unary   := "(" expr ")" | compare
//	compare := operand op operand
//	operand := string | number | "true" | "false" | "null" | path [":" modifier] | macro
//	op      := "=" | "!=" | ">" | ">=" | "<" | "<=" | "~" | "!~"  (each optionally prefixed by "?")
//	         | "@@"  (word search: a text field on the left, a string on the right)
//
// Identifiers never reach SQL as text from the input: the compiler resolves
// each path against the collection schema and emits only schema-known names.
package rules

import "strconv"

// Op is a comparison operator. The Any variants ("?=" ...) match when at
// least one element of a multi-valued operand satisfies the comparison; the
// plain variants require every element to.
type Op int

// Comparison operators.
const (
	OpEq Op = iota
	OpNeq
	OpGt
	OpGte
	OpLt
	OpLte
	OpLike
	OpNotLike
	// OpMatch is the word search `field @@ "words"`: every whitespace-separated
	// word of the constant must occur, case-insensitively, in the text field.
	OpMatch
)

// String returns the operator as written in the language, without the "?" prefix.
func (o Op) String() string {
	switch o {
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
	case OpLike:
		return "~"
	case OpNotLike:
		return "!~"
	case OpMatch:
		return "@@"
	}
	return "?"
}

// Expr is a node of a parsed expression: *Logic or *Compare.
type Expr interface{ exprNode() }

// Logic joins two expressions with && (And true) or || (And false).
type Logic struct {
	And         bool
	Left, Right Expr
}

// Compare is a leaf comparison `Left Op Right`.
type Compare struct {
	Op          Op
	Any         bool // the "?" prefix
	Left, Right Operand
	Pos         int // byte offset of the operator in the input
}

func (*Logic) exprNode()   {}
func (*Compare) exprNode() {}

// OperandKind tells which fields of an Operand are meaningful.
type OperandKind int

// Operand kinds.
const (
	KindString OperandKind = iota // Str
	KindNumber                    // Num
	KindBool                      // Bool
	KindNull
	KindPath  // Path (and Modifier), e.g. author.handle or @request.auth.id
	KindMacro // Str holds the macro name without '@', e.g. "now", "todayStart"
)

// Operand is one side of a comparison.
type Operand struct {
	Kind OperandKind
	Str  string
	Num  float64
	Bool bool
	// Path holds the dot-separated segments of an identifier. Request
	// references keep their prefix: @request.auth.id is
	// ["@request", "auth", "id"].
	Path []string
	// Modifier is the optional ":name" suffix of a path (e.g. "length",
	// "isset", "lower", "each"), without the colon; "" when absent.
	Modifier string
	Pos      int // byte offset of the operand in the input
}

// Limits that keep a hostile expression from costing unbounded work.
const (
	MaxLength      = 4096 // bytes of input
	MaxDepth       = 32   // nesting of parentheses
	MaxComparisons = 64   // leaf comparisons in one expression
	MaxPathLength  = 8    // segments in one path
)

// SyntaxError reports where and why parsing failed.
type SyntaxError struct {
	Pos int    // byte offset in the input
	Msg string // human-readable reason
}

// Error implements error.
func (e *SyntaxError) Error() string { return e.Msg + " at position " + strconv.Itoa(e.Pos) }
