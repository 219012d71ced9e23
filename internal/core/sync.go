package core

import (
	"context"
	"strconv"
	"time"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/store"
)

// SchemaChannel is the notification channel announcing schema versions.
const SchemaChannel = "plinth_schema"

// StartSchemaSync keeps this node's snapshot in step with schema changes
// made through other nodes sharing the database. Notifications make the
// change visible at once; a slow poll of the version row covers a
// notification lost while the listening connection was being re-made.
// Engines without a Notifier (embedded SQLite) are single-node and need
// neither. It returns when ctx ends.
func (a *App) StartSchemaSync(ctx context.Context, poll time.Duration) {
	n := a.DB.Notifier
	if n == nil {
		return
	}
	if poll <= 0 {
		poll = 10 * time.Second
	}
	go func() {
		err := n.Listen(ctx, SchemaChannel, func(payload string) {
			v, err := strconv.ParseInt(payload, 10, 64)
			if err == nil && a.Schema().Version >= v {
				return
			}
			if err := a.Reload(ctx); err != nil && ctx.Err() == nil {
				a.Log.Warn("schema reload after notification failed", "err", err)
			}
		})
		if err != nil && ctx.Err() == nil {
			a.Log.Error("schema listener stopped", "err", err)
		}
	}()
	go func() {
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := a.Reload(ctx); err != nil && ctx.Err() == nil {
					a.Log.Warn("schema poll failed", "err", err)
				}
			}
		}
	}()
}

// announceSchema tells other nodes a new schema version is committed.
func (a *App) announceSchema(ctx context.Context) {
	if a.DB.Notifier == nil {
		return
	}
	v := strconv.FormatInt(a.Schema().Version, 10)
	if err := a.DB.Notifier.Notify(ctx, SchemaChannel, v); err != nil {
		// Other nodes still converge through their poll.
		a.Log.Warn("schema notification failed", "err", err)
	}
}

// Collection resolves a collection by id or name; on a miss it re-checks
// the stored schema version once, so a collection just created through
// another node is found without waiting for the notification.
func (a *App) Collection(ctx context.Context, idOrName string) (*schema.Collection, error) {
	if c := a.Schema().Get(idOrName); c != nil {
		return c, nil
	}
	if a.DB.Notifier == nil {
		return nil, nil
	}
	if err := a.Reload(ctx); err != nil {
		return nil, err
	}
	return a.Schema().Get(idOrName), nil
}

// StartJanitor deletes expired one-time codes and unfinished MFA logins
// every interval until ctx ends. Any node may run it: the deletes are
// idempotent.
func (a *App) StartJanitor(ctx context.Context, every time.Duration) {
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.sweep(ctx)
			}
		}
	}()
}

func (a *App) sweep(ctx context.Context) {
	now := schema.FormatDate(time.Now())
	for _, table := range []string{"_otps", "_mfas"} {
		b := store.NewBuilder(a.DB.Dialect)
		if _, err := b.Exec(ctx, a.DB.Write, "DELETE FROM "+table+" WHERE expires < "+b.Arg(now)); err != nil && ctx.Err() == nil {
			a.Log.Warn("janitor: sweep failed", "table", table, "err", err)
		}
	}
}
