package records

import (
	"context"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// The record-level queries the identity package builds on: auth records
// are records, read with their secrets only here.

// FindAuth loads an auth record with its secrets (password hash, token
// key) by a unique column; nil when there is none.
func (s *Service) FindAuth(ctx context.Context, c *schema.Collection, col, val string) (*Record, error) {
	b := sqldb.NewBuilder(s.DB.Dialect)
	return s.first(ctx, s.DB.Read, b, c, true, "r."+s.DB.Dialect.Quote(col)+" = "+b.Arg(val))
}

// FindAuthInSession loads auth record id with its secrets only while
// session sid of it is open: one query checks both.
func (s *Service) FindAuthInSession(ctx context.Context, c *schema.Collection, id, sid string) (*Record, error) {
	d := s.DB.Dialect
	b := sqldb.NewBuilder(d)
	return s.first(ctx, s.DB.Read, b, c, true, "r."+d.Quote("id")+" = "+b.Arg(id)+
		" AND EXISTS (SELECT 1 FROM _sessions ss WHERE ss.id = "+b.Arg(sid)+" AND ss.collection = "+b.Arg(c.ID)+" AND ss.record = r."+d.Quote("id")+")")
}

// CreateWith is Create with column values the server sets itself (see
// create): a sign-up through another door (OAuth2) uses it.
func (s *Service) CreateWith(ctx context.Context, caller *Caller, c *schema.Collection, body, serverSet map[string]any) (*Record, error) {
	return s.create(ctx, caller, c, body, serverSet)
}

// QueryErr maps an engine error of a read to the client-facing error.
func (s *Service) QueryErr(err error) error { return s.queryErr(err) }

// System is the caller that bypasses rules, for writes the server makes
// on its own authority (email flows, sign-ups it completes).
func (s *Service) System() *Caller {
	c := s.Schema().Get(schema.SuperusersName)
	return &Caller{AuthCollection: c, Auth: &Record{Collection: c, Values: map[string]any{"id": "system"}}}
}

// StripSecrets returns r without its password hash and token key.
func StripSecrets(r *Record) *Record {
	if r == nil {
		return nil
	}
	cp := &Record{Collection: r.Collection, Values: make(map[string]any, len(r.Values)), Expand: r.Expand}
	for k, v := range r.Values {
		if k != "password" && k != "tokenKey" {
			cp.Values[k] = v
		}
	}
	return cp
}
