package records

import (
	"context"
	"database/sql"

	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// A batch runs several record writes in one transaction: each write is
// the same Create/Update/Delete a single request makes (its own rules,
// hooks and checks), but they share the transaction, and what happens
// after a commit (change events to realtime and hooks, removing replaced
// files) waits until the whole batch commits, so a rolled-back batch
// announces nothing and deletes nothing.
type batchState struct {
	tx      *sql.Tx
	changes []Change
	logged  []changes.Entry
	after   []func()
}

type batchKey struct{}

func batchFrom(ctx context.Context) *batchState {
	st, _ := ctx.Value(batchKey{}).(*batchState)
	return st
}

// InBatch runs fn with a context whose record writes share one
// transaction; fn's error (or a failed commit) rolls every write back.
// After the commit, the writes' changes are announced in order.
func (s *Service) InBatch(ctx context.Context, fn func(ctx context.Context) error) error {
	st := &batchState{}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		st.tx = tx
		return fn(context.WithValue(ctx, batchKey{}, st))
	})
	if err != nil {
		return err
	}
	if s.Changes != nil {
		s.Changes.Committed(st.logged...)
	}
	s.emit(st.changes)
	for _, f := range st.after {
		f()
	}
	return nil
}

// inTx runs fn in the batch's transaction when ctx carries one, else in
// a transaction of its own.
func (s *Service) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if st := batchFrom(ctx); st != nil {
		return fn(st.tx)
	}
	return s.DB.Tx(ctx, fn)
}

// committed announces a write's changes (waking the change log's
// readers with the entries it appended, then in-process subscribers) and
// cleans up after it, at once or, inside a batch, once the batch has
// committed.
func (s *Service) committed(ctx context.Context, list []Change, old *Record, logged []changes.Entry) {
	if st := batchFrom(ctx); st != nil {
		st.changes = append(st.changes, list...)
		st.logged = append(st.logged, logged...)
		ctx = context.WithoutCancel(ctx)
		st.after = append(st.after, func() { s.afterCommit(ctx, list, old) })
		return
	}
	if s.Changes != nil {
		s.Changes.Committed(logged...)
	}
	s.emit(list)
	s.afterCommit(ctx, list, old)
}

// existsForUpsert reports whether record id of c exists (rules aside: the
// update or create that follows applies them), inside the batch.
func (s *Service) existsForUpsert(ctx context.Context, c *schema.Collection, id string) (bool, error) {
	if !schema.ValidRecordID(id) {
		return false, nil
	}
	var q sqldb.Querier = s.DB.Read
	if st := batchFrom(ctx); st != nil {
		q = st.tx
	}
	r, err := s.fetchOne(ctx, q, nil, c, id, nil, true, nil)
	return r != nil, err
}
