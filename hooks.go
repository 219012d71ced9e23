package plinth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/plinthhq/plinth/internal/collections"
	"github.com/plinthhq/plinth/internal/records"
)

// RecordEvent is what a before-write hook sees: the action, collection,
// caller, the record's id and original state (update, delete) and, for
// create and update, the Values about to be written, which the hook may
// change. Hooks run before the write's transaction; returning an error
// vetoes the write (an *Error keeps its status, any other error is a 400
// with its text). Rules and validation apply to the values as the hooks
// leave them. Deletes that a relation cascades do not run before hooks
// (they are part of the first delete), but their changes reach
// OnRecordChange.
type RecordEvent = records.WriteEvent

// OnRecordCreate runs fn before every create in collection (by name; "*"
// for every collection), through the API or through Records().
func (a *App) OnRecordCreate(collection string, fn func(e *RecordEvent) error) {
	a.core.Records.OnBefore(ActionCreate, collection, fn)
}

// OnRecordUpdate runs fn before every update in collection ("*": all).
func (a *App) OnRecordUpdate(collection string, fn func(e *RecordEvent) error) {
	a.core.Records.OnBefore(ActionUpdate, collection, fn)
}

// OnRecordDelete runs fn before every delete in collection ("*": all).
func (a *App) OnRecordDelete(collection string, fn func(e *RecordEvent) error) {
	a.core.Records.OnBefore(ActionDelete, collection, fn)
}

// OnRecordChange runs fn after every committed change in collection
// ("*": all), with the committed state, in commit order; realtime is a
// subscriber of the same stream. fn must not block: hand slow work to a
// goroutine or a queue.
func (a *App) OnRecordChange(collection string, fn func(Change)) {
	a.core.Records.Subscribe(func(c Change) {
		if collection == "*" || c.Record.Collection.Name == collection {
			fn(c)
		}
	})
}

// Handle adds a route to the API, next to Plinth's own: the same
// middleware runs first (recovery, limits, authentication), so
// CallerFrom tells who is calling. Patterns are net/http's, e.g.
// "GET /api/hello/{name}".
func (a *App) Handle(pattern string, h http.Handler) { a.http.Handle(pattern, h) }

// CallerFrom returns who makes the request a handler added with Handle
// serves (anonymous when no valid token came with it).
func CallerFrom(r *http.Request) *Caller { return records.CallerFrom(r) }

// Records gives server-side access to records. Pass the request's caller
// (CallerFrom) to apply the collection's rules as for that caller, or nil
// to act as the system, which bypasses rules; validation always applies.
func (a *App) Records() *RecordStore { return &RecordStore{a: a} }

// RecordStore reads and writes records from Go; see App.Records.
type RecordStore struct{ a *App }

// ListQuery selects a page of records: Page, PerPage, Sort, Filter (the
// rule language), Expand, SkipTotal.
type ListQuery = records.ListParams

// ListResult is a page of records with the paging totals.
type ListResult = records.ListResult

func (s *RecordStore) prepare(ctx context.Context, caller *Caller, collection string) (*Caller, *Collection, error) {
	c, err := records.Collection(ctx, s.a.core, collection)
	if err != nil {
		return nil, nil, err
	}
	if caller == nil {
		caller = s.a.core.Records.System()
	}
	return caller, c, nil
}

// Find reads one record; a record the caller may not see is a 404 Error.
func (s *RecordStore) Find(ctx context.Context, caller *Caller, collection, id string) (*Record, error) {
	caller, c, err := s.prepare(ctx, caller, collection)
	if err != nil {
		return nil, err
	}
	return s.a.core.Records.View(ctx, caller, c, id, "")
}

// List reads a page of records the caller may list.
func (s *RecordStore) List(ctx context.Context, caller *Caller, collection string, q ListQuery) (*ListResult, error) {
	caller, c, err := s.prepare(ctx, caller, collection)
	if err != nil {
		return nil, err
	}
	return s.a.core.Records.List(ctx, caller, c, q)
}

// Create validates and inserts a record, running the hooks.
func (s *RecordStore) Create(ctx context.Context, caller *Caller, collection string, values map[string]any) (*Record, error) {
	caller, c, err := s.prepare(ctx, caller, collection)
	if err != nil {
		return nil, err
	}
	return s.a.core.Records.Create(ctx, caller, c, values)
}

// Update changes the given fields of a record, running the hooks.
func (s *RecordStore) Update(ctx context.Context, caller *Caller, collection, id string, values map[string]any) (*Record, error) {
	caller, c, err := s.prepare(ctx, caller, collection)
	if err != nil {
		return nil, err
	}
	return s.a.core.Records.Update(ctx, caller, c, id, values)
}

// Delete removes a record (and what its relations cascade to).
func (s *RecordStore) Delete(ctx context.Context, caller *Caller, collection, id string) error {
	caller, c, err := s.prepare(ctx, caller, collection)
	if err != nil {
		return err
	}
	return s.a.core.Records.Delete(ctx, caller, c, id)
}

// CreateCollection creates a collection from its JSON definition (the
// shape POST /api/collections takes).
func (a *App) CreateCollection(ctx context.Context, definition []byte) (*Collection, error) {
	c, err := collections.DecodeCollection(definition, nil)
	if err != nil {
		return nil, err
	}
	return a.core.CreateCollection(ctx, c)
}

// Cron runs fn on a cron schedule (five fields: minute hour day-of-month
// month day-of-week, or @hourly, @daily, @weekly, @monthly), in UTC.
// With several nodes on one database each scheduled run happens on one
// node only. Registering a name again replaces the job.
func (a *App) Cron(name, spec string, fn func(ctx context.Context) error) error {
	return a.cron.Add(name, spec, fn)
}

// CronJobs lists the registered jobs (name and schedule).
func (a *App) CronJobs() []CronJob {
	var out []CronJob
	for _, j := range a.cron.Jobs() {
		out = append(out, CronJob{Name: j.Name, Spec: j.Spec})
	}
	return out
}

// CronJob is a registered job.
type CronJob struct{ Name, Spec string }

// Migration is a change to the application's data or schema written in
// Go (Config.Migrations). Each runs once, in order, when New starts; its
// name is recorded when it succeeds. On several nodes starting at once,
// the first to record the name runs it.
type Migration struct {
	// Name identifies the migration for ever: never rename one that ran.
	Name string
	// Up applies it; it may create collections (App.CreateCollection) and
	// records (App.Records). An error stops New.
	Up func(ctx context.Context, app *App) error
}

// migrate runs the program's migrations not yet applied.
func (a *App) migrate(ctx context.Context, ms []Migration) error {
	for _, m := range ms {
		name := "app/" + m.Name
		claimed, err := a.core.ClaimMigration(ctx, name)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if !claimed {
			continue
		}
		if err := m.Up(ctx, a); err != nil {
			// Not applied: release the name so the next start tries again.
			if rerr := a.core.ReleaseMigration(context.WithoutCancel(ctx), name); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}
