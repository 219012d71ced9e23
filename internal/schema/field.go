package schema

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Field types.
const (
	FieldText     = "text"
	FieldNumber   = "number"
	FieldBool     = "bool"
	FieldEmail    = "email"
	FieldURL      = "url"
	FieldDate     = "date"
	FieldSelect   = "select"
	FieldJSON     = "json"
	FieldRelation = "relation"
	FieldAutodate = "autodate"
	FieldPassword = "password"
	FieldFile     = "file"
)

// Field is one typed attribute of a collection. Options irrelevant to the
// field's type must be left at their zero value.
type Field struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	// Hidden fields are returned to superusers only.
	Hidden bool `json:"hidden,omitempty"`
	// System fields are managed by Plinth and cannot be removed or renamed.
	System bool `json:"system,omitempty"`

	// text: rune length bounds; number: value bounds.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// text: a regular expression the value must match (RE2 syntax).
	Pattern string `json:"pattern,omitempty"`
	// number: reject values with a fractional part.
	OnlyInt bool `json:"onlyInt,omitempty"`
	// select: allowed values.
	Values []string `json:"values,omitempty"`
	// select, relation: maximum number of values; 0 or 1 means single-valued.
	MaxSelect int `json:"maxSelect,omitempty"`
	// json: maximum encoded size in bytes (default DefaultJSONMaxSize);
	// file: maximum size of each file (default DefaultFileMaxSize).
	MaxSize int64 `json:"maxSize,omitempty"`
	// file: allowed content types, checked against the sniffed content
	// (empty: any); thumbnail sizes that may be requested ("100x100",
	// "0x300", "200x200f"); whether reading needs a file token.
	MimeTypes []string `json:"mimeTypes,omitempty"`
	Thumbs    []string `json:"thumbs,omitempty"`
	Protected bool     `json:"protected,omitempty"`
	// relation: target collection id, and whether deleting a target
	// deletes the records pointing at it.
	CollectionID  string `json:"collectionId,omitempty"`
	CascadeDelete bool   `json:"cascadeDelete,omitempty"`
	// autodate: set on create and/or on every update.
	OnCreate bool `json:"onCreate,omitempty"`
	OnUpdate bool `json:"onUpdate,omitempty"`

	re *regexp.Regexp
}

// DefaultJSONMaxSize bounds json field values when no maxSize is set.
const DefaultJSONMaxSize = 1 << 20

// DefaultFileMaxSize bounds each uploaded file when no maxSize is set.
const DefaultFileMaxSize = 5 << 20

// FileMaxSize is the effective per-file limit of a file field.
func (f *Field) FileMaxSize() int64 {
	if f.MaxSize > 0 {
		return f.MaxSize
	}
	return DefaultFileMaxSize
}

// ColumnKind is the storage class a field needs; dialects map it to SQL types.
type ColumnKind int

// Column kinds.
const (
	ColText   ColumnKind = iota // NOT NULL DEFAULT ''
	ColNumber                   // NOT NULL DEFAULT 0
	ColBool                     // NOT NULL DEFAULT false
	ColJSON                     // nullable JSON document
	ColArray                    // NOT NULL JSON array of strings, DEFAULT '[]'
)

// Multi reports whether the field holds a list of values.
func (f *Field) Multi() bool {
	t := typeOf(f.Type)
	return t != nil && t.Listable() && f.MaxSelect > 1
}

// Column returns the storage class of the field.
func (f *Field) Column() ColumnKind {
	if f.Multi() {
		return ColArray
	}
	if t := typeOf(f.Type); t != nil {
		return t.Column()
	}
	return ColText
}

// ValueError is a validation failure of one field value, reported to
// clients as data[field] = {code, message}.
type ValueError struct {
	Code    string
	Message string
}

// Error implements error.
func (e *ValueError) Error() string { return e.Message }

func verr(code, format string, args ...any) *ValueError {
	return &ValueError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrRequired is returned for a blank value of a required field.
var ErrRequired = &ValueError{Code: "validation_required", Message: "Cannot be blank."}

// DateLayout is how dates are stored and returned: UTC, millisecond
// precision, and lexically sortable so comparisons work in SQL as text.
const DateLayout = "2006-01-02 15:04:05.000Z"

// FormatDate renders t in DateLayout.
func FormatDate(t time.Time) string { return t.UTC().Format(DateLayout) }

var dateLayouts = []string{DateLayout, time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// ParseDate accepts the stored layout, RFC 3339 and a plain date.
func ParseDate(s string) (time.Time, bool) {
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Regexp returns the compiled pattern of a text field (nil when none).
func (f *Field) Regexp() *regexp.Regexp {
	if f.Pattern != "" && f.re == nil {
		f.re = regexp.MustCompile(f.Pattern) // validated on collection save
	}
	return f.re
}

// Normalize validates a client-supplied JSON value (as decoded by
// encoding/json with UseNumber off: string, float64, bool, nil, []any,
// map[string]any) and returns the value to store, by the field's type.
// Relation targets are checked by the records layer, which can see the
// database; passwords are returned as given for the caller to hash.
func (f *Field) Normalize(v any) (any, error) {
	t := typeOf(f.Type)
	if t == nil {
		return nil, verr("validation_unknown_type", "Unknown field type.")
	}
	return t.Normalize(f, v)
}

// normalizeList handles single- and multi-valued select and relation
// fields. Multi values are stored as a JSON array text, single as a string.
func (f *Field) normalizeList(v any, check func(string) error) (any, error) {
	var items []string
	switch x := v.(type) {
	case nil:
	case string:
		if x != "" {
			items = []string{x}
		}
	case []any:
		for _, it := range x {
			s, ok := it.(string)
			if !ok {
				return nil, verr("validation_invalid_value", "Values must be strings.")
			}
			if s != "" {
				items = append(items, s)
			}
		}
	case []string:
		for _, s := range x {
			if s != "" {
				items = append(items, s)
			}
		}
	default:
		return nil, verr("validation_invalid_value", "Must be a string or a list of strings.")
	}
	items = dedupe(items)
	if len(items) == 0 && f.Required {
		return nil, ErrRequired
	}
	for _, s := range items {
		if err := check(s); err != nil {
			return nil, err
		}
	}
	if !f.Multi() {
		if len(items) > 1 {
			return nil, verr("validation_too_many_values", "Only one value is allowed.")
		}
		if len(items) == 0 {
			return "", nil
		}
		return items[0], nil
	}
	if len(items) > f.MaxSelect {
		return nil, verr("validation_too_many_values", "At most %d values are allowed.", f.MaxSelect)
	}
	return EncodeList(items), nil
}

// EncodeList renders a multi-valued field for storage.
func EncodeList(items []string) string {
	if items == nil {
		items = []string{}
	}
	b, _ := json.Marshal(items)
	return string(b)
}

// DecodeList parses a stored multi-valued field; malformed text yields nil.
func DecodeList(v any) []string {
	var s []byte
	switch x := v.(type) {
	case string:
		s = []byte(x)
	case []byte:
		s = x
	default:
		return nil
	}
	var out []string
	if json.Unmarshal(s, &out) != nil {
		return nil
	}
	return out
}

func dedupe(in []string) []string {
	if len(in) < 2 {
		return in
	}
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func asString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		if !ValidText(x) {
			return "", errInvalidText()
		}
		return x, nil
	}
	return "", verr("validation_invalid_string", "Must be a string.")
}

// ValidText reports whether s can be stored as text on every engine:
// valid UTF-8 without NUL characters (PostgreSQL refuses both, SQLite
// would store them; refusing them everywhere keeps the engines alike).
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func errInvalidText() *ValueError {
	return verr("validation_invalid_text", "Must be valid UTF-8 text without NUL characters.")
}

// validFileName mirrors files.ValidName (schema cannot import files).
func validFileName(s string) bool {
	if s == "" || len(s) > 128 || strings.HasPrefix(s, ".") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
