// Package records implements record CRUD over a store dialect: queries
// built from the schema, access rules compiled into them, validation,
// relation expansion and the JSON shape clients see.
package records

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/schema"
)

// Record is one row of a collection with API-shaped values: string,
// float64, bool, []string (multi-valued), json.RawMessage or nil (json).
type Record struct {
	Collection *schema.Collection
	Values     map[string]any
	// Expand holds expanded relations: *Record or []*Record by field name.
	Expand map[string]any
}

// ID returns the record id.
func (r *Record) ID() string { s, _ := r.Values["id"].(string); return s }

// String returns a text value ("" when absent).
func (r *Record) String(name string) string { s, _ := r.Values[name].(string); return s }

// Caller is who makes a request and what the request carries, as access
// rules see it (@request.*).
type Caller struct {
	AuthCollection *schema.Collection
	Auth           *Record
	Method         string
	Query          url.Values
	Headers        http.Header
	// Uploaded lists the file names stored by this request; a file field
	// may only be set to these or to names the record already has.
	Uploaded map[string]bool
	// manager is set while the manage rule of an auth collection holds.
	manager bool
}

// Superuser reports whether the caller bypasses rules.
func (c *Caller) Superuser() bool {
	return c != nil && c.Auth != nil && c.AuthCollection.Name == schema.SuperusersName
}

func (c *Caller) isOwner(r *Record) bool {
	return c != nil && c.Auth != nil && c.AuthCollection.ID == r.Collection.ID && c.Auth.ID() == r.ID()
}

// setExpand records an expanded relation (*Record or []*Record).
func (r *Record) setExpand(name string, v any) {
	if r.Expand == nil {
		r.Expand = map[string]any{}
	}
	r.Expand[name] = v
}

// expandKeys lists the expanded names in output order: the record's
// relation fields in schema order, then back-relations by name.
func (r *Record) expandKeys() []string {
	keys := make([]string, 0, len(r.Expand))
	seen := make(map[string]bool, len(r.Expand))
	for _, f := range r.Collection.Fields {
		if _, ok := r.Expand[f.Name]; ok {
			keys = append(keys, f.Name)
			seen[f.Name] = true
		}
	}
	var rest []string
	for k := range r.Expand {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// scanValue turns a driver value into the API shape of field f. Engines
// disagree on representations (SQLite returns 0/1 for booleans and int64
// for whole NUMERICs, PostgreSQL typed values), so normalising here keeps
// the output identical on every engine. One switch over storage classes
// and driver types, so every representation is handled in one place.
func scanValue(f *schema.Field, v any) any {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	switch f.Column() {
	case schema.ColNumber:
		switch x := v.(type) {
		case int64:
			return float64(x)
		case float64:
			return x
		case float32:
			return float64(x)
		case int32:
			return float64(x)
		case string:
			n, _ := strconv.ParseFloat(x, 64)
			return n
		}
		return 0.0
	case schema.ColBool:
		switch x := v.(type) {
		case bool:
			return x
		case int64:
			return x != 0
		case string:
			return x == "1" || strings.EqualFold(x, "true")
		}
		return false
	case schema.ColArray:
		l := schema.DecodeList(v)
		if l == nil {
			l = []string{}
		}
		return l
	case schema.ColJSON:
		switch x := v.(type) {
		case nil:
			return nil
		case string:
			if x == "" || !json.Valid([]byte(x)) {
				return nil
			}
			return json.RawMessage(x)
		default:
			b, err := json.Marshal(x)
			if err != nil {
				return nil
			}
			return json.RawMessage(b)
		}
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// Projection selects output keys: nil means everything; "*" at a level
// means every field there; "expand" nests per relation.
type Projection map[string]Projection

// ParseFields parses the `fields` query parameter ("id,title,expand.author.name").
func ParseFields(s string) (Projection, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	root := Projection{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		segs := strings.Split(part, ".")
		if len(segs) > 16 {
			return nil, errBadParam("fields", "Too deeply nested.")
		}
		cur := root
		for _, seg := range segs {
			if seg != "*" && !schema.ValidIdentifier(seg) {
				return nil, errBadParam("fields", "Invalid field name "+strconv.Quote(seg)+".")
			}
			next, ok := cur[seg]
			if !ok || next == nil {
				next = Projection{}
				cur[seg] = next
			}
			cur = next
		}
	}
	// Leaves are stored as empty maps; nil them so "include all below".
	var fix func(p Projection)
	fix = func(p Projection) {
		for k, v := range p {
			if len(v) == 0 {
				p[k] = nil
			} else {
				fix(v)
			}
		}
	}
	fix(root)
	return root, nil
}

func (p Projection) has(key string) (Projection, bool) {
	if p == nil {
		return nil, true
	}
	if sub, ok := p[key]; ok {
		return sub, true
	}
	if _, ok := p["*"]; ok {
		return nil, true
	}
	return nil, false
}

// Output renders a record as the caller may see it: hidden fields and the
// password hash never, email only to its owner or superusers unless the
// record made it visible. Keys keep schema order.
func Output(caller *Caller, r *Record, proj Projection) json.RawMessage {
	var buf bytes.Buffer
	writeRecord(&buf, caller, r, proj)
	return buf.Bytes()
}

// writeRecord renders r as JSON for caller into buf without reflection
// (the hot path of every list): one pass over the fields in order, with
// the visibility rules (hidden fields, emails, secrets) and the
// projection applied inline.
func writeRecord(buf *bytes.Buffer, caller *Caller, r *Record, proj Projection) {
	su := caller.Superuser()
	buf.WriteByte('{')
	first := true
	kv := func(k string, v any) {
		if _, ok := proj.has(k); !ok {
			return
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		vb, err := json.Marshal(v)
		if err != nil {
			vb = []byte("null")
		}
		buf.Write(vb)
	}
	kv("collectionId", r.Collection.ID)
	kv("collectionName", r.Collection.Name)
	kv("id", r.ID())
	for _, f := range r.Collection.Fields {
		if f.Type == schema.FieldPassword || f.Name == "tokenKey" {
			continue
		}
		if f.Hidden && !su {
			continue
		}
		if r.Collection.IsAuth() && f.Name == "email" && !su && !caller.isOwner(r) {
			if vis, _ := r.Values["emailVisibility"].(bool); !vis {
				continue
			}
		}
		v, ok := r.Values[f.Name]
		if !ok {
			continue
		}
		kv(f.Name, v)
	}
	if r.Expand != nil {
		eproj, ok := proj.has("expand")
		if ok {
			if !first {
				buf.WriteByte(',')
			}
			first = false
			buf.WriteString(`"expand":{`)
			efirst := true
			for _, name := range r.expandKeys() {
				ex := r.Expand[name]
				sub, ok := eproj.has(name)
				if !ok {
					continue
				}
				if !efirst {
					buf.WriteByte(',')
				}
				efirst = false
				kb, _ := json.Marshal(name)
				buf.Write(kb)
				buf.WriteByte(':')
				switch x := ex.(type) {
				case *Record:
					writeRecord(buf, caller, x, sub)
				case []*Record:
					buf.WriteByte('[')
					for i, er := range x {
						if i > 0 {
							buf.WriteByte(',')
						}
						writeRecord(buf, caller, er, sub)
					}
					buf.WriteByte(']')
				}
			}
			buf.WriteByte('}')
		}
	}
	buf.WriteByte('}')
}
