package records

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/schema"
)

// WriteEvent is what a before-write hook sees. Hooks run before the
// write's transaction begins, in registration order; one that returns an
// error vetoes the write (an *apierr.Error keeps its status, any other
// error is a 400 with its text). For create and update, Values are the
// values about to be written and may be changed: validation and the
// collection's rules then apply to the changed values.
type WriteEvent struct {
	Context    context.Context
	Action     string // ActionCreate, ActionUpdate or ActionDelete
	Collection *schema.Collection
	// Caller is who writes (System() for the server's own writes).
	Caller *Caller
	// ID is the record written (update, delete).
	ID string
	// Values are the fields to write (create, update).
	Values map[string]any
	// Original is the stored record (update, delete), read without rules;
	// nil when there is none.
	Original *Record
}

// BeforeHook runs before a write; see WriteEvent.
type BeforeHook func(e *WriteEvent) error

// hooks are the write path's extension points; the zero value has none.
type hooks struct {
	mu     sync.RWMutex
	before map[string][]BeforeHook // by action + "/" + collection name ("*": every collection)
	after  []func(Change)
}

// OnBefore registers fn to run before every action ("create", "update",
// "delete") on collection (by name; "*" for every collection).
func (s *Service) OnBefore(action, collection string, fn BeforeHook) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	if s.hooks.before == nil {
		s.hooks.before = map[string][]BeforeHook{}
	}
	k := action + "/" + collection
	s.hooks.before[k] = append(s.hooks.before[k], fn)
}

// Subscribe registers fn to receive every committed change, after the
// commit, cascades included, in commit order of this node. It must not
// block: realtime, webhooks and after-commit hooks are subscribers.
func (s *Service) Subscribe(fn func(Change)) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.after = append(s.hooks.after, fn)
}

// runBefore runs the before hooks of action on c; it reads the original
// record only when a hook is there to see it.
func (s *Service) runBefore(ctx context.Context, action string, caller *Caller, c *schema.Collection, id string, values map[string]any) error {
	s.hooks.mu.RLock()
	fns := append(append([]BeforeHook(nil), s.hooks.before[action+"/"+c.Name]...), s.hooks.before[action+"/*"]...)
	s.hooks.mu.RUnlock()
	if len(fns) == 0 {
		return nil
	}
	e := &WriteEvent{Context: ctx, Action: action, Collection: c, Caller: caller, ID: id, Values: values}
	if id != "" {
		orig, err := s.Lookup(ctx, c, id)
		if err != nil {
			return err
		}
		e.Original = orig
	}
	for _, fn := range fns {
		if err := fn(e); err != nil {
			if ae, ok := err.(*apierr.Error); ok {
				return ae
			}
			return apierr.BadRequest(err.Error())
		}
	}
	return nil
}

// logChanges appends changes to the durable change log inside tx, as the
// transaction's last step, and returns the numbered entries for
// committed.
func (s *Service) logChanges(ctx context.Context, tx *sql.Tx, list []Change) ([]changes.Entry, error) {
	if s.Changes == nil {
		return nil, nil
	}
	entries := make([]changes.Entry, 0, len(list))
	for _, ch := range list {
		data, err := json.Marshal(ch.Record.Values)
		if err != nil {
			return nil, err
		}
		c := ch.Record.Collection
		entries = append(entries, changes.Entry{CollectionID: c.ID, Collection: c.Name, Record: ch.Record.ID(), Action: ch.Action, Data: data})
	}
	return s.Changes.Append(ctx, tx, entries...)
}

// emit hands committed changes to the subscribers.
func (s *Service) emit(changes []Change) {
	s.hooks.mu.RLock()
	subs := s.hooks.after
	s.hooks.mu.RUnlock()
	for _, c := range changes {
		for _, fn := range subs {
			fn(c)
		}
	}
}
