package records

import (
	"context"
	"encoding/json"

	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// ParseRule parses (and caches) a rule expression.
func (s *Service) ParseRule(rule string) (rules.Expr, error) { return s.parseRule(rule) }

// Env builds the filter environment for caller; trusted is true for
// rules and false for client-supplied filters.
func (s *Service) Env(caller *Caller, trusted bool, body map[string]any) *rules.Env {
	return s.env(caller, trusted, body)
}

// Matches evaluates e for caller against rec's values in SQL, as a
// derived row: it works for records already deleted and for rules that
// follow relations into other tables.
func (s *Service) Matches(ctx context.Context, caller *Caller, c *schema.Collection, e rules.Expr, trusted bool, rec *Record) (bool, error) {
	b := sqldb.NewBuilder(s.DB.Dialect)
	res, err := rules.Compile(b, c, "r", e, s.env(caller, trusted, nil), nil)
	if err != nil {
		return false, err
	}
	if res.Const != nil {
		return *res.Const, nil
	}
	row := s.derivedRow(b, c, func(name string) any {
		switch x := rec.Values[name].(type) {
		case []string:
			return schema.EncodeList(x)
		case json.RawMessage:
			return string(x)
		default:
			return x
		}
	})
	return s.exists(ctx, s.DB.Read, b, "SELECT 1 FROM "+row+" r WHERE "+res.SQL)
}

// Lookup reads one record by id, bypassing rules (for internal use).
func (s *Service) Lookup(ctx context.Context, c *schema.Collection, id string) (*Record, error) {
	return s.fetchOne(ctx, s.DB.Read, nil, c, id, nil, true, nil)
}

// Expanded returns a copy of rec with the expand paths resolved for caller.
func (s *Service) Expanded(ctx context.Context, caller *Caller, rec *Record, expand string) (*Record, error) {
	cp := &Record{Collection: rec.Collection, Values: rec.Values}
	if err := s.expand(ctx, caller, rec.Collection, []*Record{cp}, expand); err != nil {
		return nil, err
	}
	return cp, nil
}

// FromEntry rebuilds the record of a change log entry as that change left
// it; nil when its collection no longer exists (or was re-created under
// its name) or the entry holds no record (a revocation).
func (s *Service) FromEntry(ctx context.Context, e changes.Entry) *Record {
	if e.Action == changes.ActionRevoke {
		return nil
	}
	// Resolve re-reads the schema on a miss: a collection created through
	// another node a moment ago is known here at once.
	c, err := s.Collection(ctx, e.Collection)
	if err != nil || c == nil || c.ID != e.CollectionID {
		return nil
	}
	var vals map[string]any
	if json.Unmarshal(e.Data, &vals) != nil {
		return nil
	}
	return FromWire(c, vals)
}

// FromWire rebuilds a record from JSON-decoded values (another node's
// event), restoring each field's API type.
func FromWire(c *schema.Collection, vals map[string]any) *Record {
	r := &Record{Collection: c, Values: make(map[string]any, len(vals))}
	for _, f := range append([]*schema.Field{schema.IDField}, c.Fields...) {
		v, ok := vals[f.Name]
		if !ok {
			continue
		}
		switch f.Column() {
		case schema.ColArray:
			list := []string{}
			if xs, ok := v.([]any); ok {
				for _, x := range xs {
					if s, ok := x.(string); ok {
						list = append(list, s)
					}
				}
			}
			v = list
		case schema.ColJSON:
			if v != nil {
				b, _ := json.Marshal(v)
				v = json.RawMessage(b)
			}
		default:
			v = scanValue(f, v)
		}
		r.Values[f.Name] = v
	}
	return r
}
