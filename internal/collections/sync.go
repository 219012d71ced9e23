package collections

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// SchemaChannel is the notification channel announcing schema versions.
const SchemaChannel = "plinth_schema"

// StartSchemaSync keeps this node's snapshot in step with schema changes
// made through other nodes sharing the database. Notifications make the
// change visible at once; a slow poll of the version row covers a
// notification lost while the listening connection was being re-made.
// Engines without a Notifier (embedded SQLite) are single-node and need
// neither. It returns when ctx ends.
func (a *Service) StartSchemaSync(ctx context.Context, poll time.Duration) {
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
func (a *Service) announceSchema(ctx context.Context) {
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
func (a *Service) Collection(ctx context.Context, idOrName string) (*schema.Collection, error) {
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
func (a *Service) StartJanitor(ctx context.Context, every time.Duration) {
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

func (a *Service) sweep(ctx context.Context) {
	now := schema.FormatDate(time.Now())
	for _, table := range []string{"_otps", "_mfas"} {
		b := sqldb.NewBuilder(a.DB.Dialect)
		if _, err := b.Exec(ctx, a.DB.Write, "DELETE FROM "+table+" WHERE expires < "+b.Arg(now)); err != nil && ctx.Err() == nil {
			a.Log.Warn("janitor: sweep failed", "table", table, "err", err)
		}
	}
}

// SweepFiles deletes what a crash can leave in file storage: temporaries
// of unfinished uploads, and files (with their thumbnails) that no
// committed record references — uploads of requests that never
// committed, files of records removed while a node was down. Only keys
// last modified before olderThan ago are considered: a file younger than
// that may belong to a request still in flight, whose record is not
// committed yet. A file a committed record references is never touched.
// It returns how many keys it removed.
func (a *Service) SweepFiles(ctx context.Context, olderThan time.Duration) (int, error) {
	st := a.Records.Files
	if st == nil {
		return 0, nil
	}
	// A collection created on another node must be known here, or its
	// files would look orphaned.
	if err := a.Reload(ctx); err != nil {
		return 0, err
	}
	snap := a.Schema()
	cutoff := time.Now().Add(-olderThan)
	refs := map[string]map[string]bool{} // "collection/record" -> referenced names
	var stale []string
	err := st.List(ctx, "", func(key string, mod time.Time) error {
		if !mod.Before(cutoff) {
			return nil
		}
		if files.IsTemp(key) {
			stale = append(stale, key)
			return nil
		}
		parts := strings.Split(key, "/")
		var name string
		switch {
		case len(parts) == 3:
			name = parts[2]
		case len(parts) == 4 && strings.HasPrefix(parts[2], "thumbs_"):
			name = strings.TrimPrefix(parts[2], "thumbs_")
		default:
			return nil // not a key Plinth makes: leave it alone
		}
		folder := parts[0] + "/" + parts[1]
		names, seen := refs[folder]
		if !seen {
			var err error
			if names, err = a.referencedFiles(ctx, snap, parts[0], parts[1]); err != nil {
				return err
			}
			refs[folder] = names
		}
		if !names[name] {
			stale = append(stale, key)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, key := range stale {
		if err := st.Delete(ctx, key); err != nil {
			a.Log.Warn("file sweep: cannot delete", "key", key, "err", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		a.Log.Info("file sweep: removed orphaned files", "count", removed)
	}
	return removed, nil
}

// referencedFiles lists the file names record recordID of collection
// collectionID holds in its file fields (none when either is gone).
func (a *Service) referencedFiles(ctx context.Context, snap *schema.Snapshot, collectionID, recordID string) (map[string]bool, error) {
	names := map[string]bool{}
	c := snap.Get(collectionID)
	if c == nil || c.IsView() || !schema.ValidRecordID(recordID) {
		return names, nil
	}
	rec, err := a.Records.Lookup(ctx, c, recordID)
	if err != nil || rec == nil {
		return names, err
	}
	for _, f := range c.Fields {
		if f.Type == schema.FieldFile {
			for _, n := range records.ValueList(rec.Values[f.Name]) {
				names[n] = true
			}
		}
	}
	return names, nil
}

// StartFileSweeper runs SweepFiles at start and then every interval.
func (a *Service) StartFileSweeper(ctx context.Context, every, olderThan time.Duration) {
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if _, err := a.SweepFiles(ctx, olderThan); err != nil && ctx.Err() == nil {
				a.Log.Warn("file sweep failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
