// Package changes is the durable change log. Every committed record
// change (and every revocation of a user's tokens) is appended to the
// _changes table inside the transaction that made it, numbered in commit
// order. Realtime on every node and the webhook deliverer read the log
// from their own position: a dropped notification, a reconnecting
// listener or a restarted node delays an event, it never loses it.
//
// On PostgreSQL a NOTIFY is only a wake-up hint; every reader also polls,
// so an engine without notifications (MySQL) can use the same log by
// polling alone.
package changes

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Channel is the notification channel that wakes other nodes' readers.
const Channel = "plinth_events"

// ActionRevoke is the action of an entry that names an auth record whose
// tokens or sessions were revoked (no record change).
const ActionRevoke = "revoke"

// Entry is one committed change.
type Entry struct {
	// Seq is the entry's position in the log: global, in commit order.
	Seq          uint64
	CollectionID string
	Collection   string // the collection's name when the change was made
	Record       string // record id
	Action       string // create, update, delete or revoke
	// Data is the record's values as of this change (for a delete: as it
	// was), secrets excluded.
	Data    json.RawMessage
	Created string
}

// Log appends to and reads the change log.
type Log struct {
	db  *sqldb.DB
	log *slog.Logger

	mu  sync.Mutex
	gen chan struct{} // closed and replaced when entries are committed
	// hint is a pending notification for other nodes (capacity 1: hints
	// coalesce, readers read everything new whatever woke them).
	hint chan struct{}
	done chan struct{}
	// recent holds entries committed through this node by position, top
	// the highest; see Committed.
	recent map[uint64]Entry
	top    uint64
	// holders report the highest position they have consumed (everything
	// above it must stay), see Hold.
	holders []Holder
}

// Holder reports the highest log position a durable consumer (webhook
// delivery) has consumed; Prune keeps everything above it.
type Holder func(ctx context.Context) (uint64, error)

// Hold registers a consumer whose unconsumed entries Prune must keep.
// Call it before the log is used.
func (l *Log) Hold(h Holder) { l.holders = append(l.holders, h) }

// local returns the entries after pos committed through this node that
// follow it without a gap (pos+1, pos+2, ...), at most limit.
func (l *Log) local(pos uint64, limit int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Entry
	for len(out) < limit {
		e, ok := l.recent[pos+1]
		if !ok {
			return out
		}
		out = append(out, e)
		pos++
	}
	return out
}

// New returns the log of db.
func New(db *sqldb.DB, log *slog.Logger) *Log {
	return &Log{db: db, log: log, gen: make(chan struct{}), hint: make(chan struct{}, 1), done: make(chan struct{})}
}

// Append writes entries in tx and returns them numbered. It must be the
// transaction's last step before commit: on engines that need it, it
// serialises appends until the commit so entries become visible in the
// order of their numbers. Pass the result to Committed after the commit.
func (l *Log) Append(ctx context.Context, tx *sql.Tx, entries ...Entry) ([]Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	d := l.db.Dialect
	if q := d.SerializeAppends("_changes"); q != "" {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, err
		}
	}
	now := schema.FormatDate(time.Now())
	out := make([]Entry, len(entries))
	for i, e := range entries {
		if len(e.Data) == 0 {
			e.Data = json.RawMessage("{}")
		}
		e.Created = now
		b := sqldb.NewBuilder(d)
		q := "INSERT INTO _changes (collection, name, record, action, data, created) VALUES (" +
			b.Arg(e.CollectionID) + ", " + b.Arg(e.Collection) + ", " + b.Arg(e.Record) + ", " + b.Arg(e.Action) + ", " + b.Arg(string(e.Data)) + ", " + b.Arg(now) + ") RETURNING seq"
		var seq int64
		if err := b.QueryRow(ctx, tx, q).Scan(&seq); err != nil {
			return nil, err
		}
		e.Seq = uint64(seq)
		out[i] = e
	}
	return out, nil
}

// AppendRevoke records that the tokens or sessions of an auth record were
// revoked, so every node re-checks that user's open connections in order
// with the changes around it.
func (l *Log) AppendRevoke(ctx context.Context, collectionID, recordID string) error {
	var entries []Entry
	err := l.db.Tx(ctx, func(tx *sql.Tx) (err error) {
		entries, err = l.Append(ctx, tx, Entry{CollectionID: collectionID, Record: recordID, Action: ActionRevoke})
		return err
	})
	if err == nil {
		l.Committed(entries...)
	}
	return err
}

// recentMax bounds the entries committed through this node kept in
// memory for its readers.
const recentMax = 1024

// Committed wakes this node's readers and asks for other nodes' to be
// woken; call it after a transaction that appended entries committed,
// with what Append returned. This node's readers take those entries from
// memory (a reader at position p takes p+1 only: anything else is read
// from the database), so a change made here costs no read to deliver.
func (l *Log) Committed(entries ...Entry) {
	l.mu.Lock()
	if l.recent == nil {
		l.recent = map[uint64]Entry{}
	}
	for _, e := range entries {
		l.recent[e.Seq] = e
		l.top = max(l.top, e.Seq)
	}
	if len(l.recent) > recentMax {
		for seq := range l.recent {
			if seq+recentMax/2 < l.top {
				delete(l.recent, seq)
			}
		}
	}
	l.mu.Unlock()
	l.wakeLocal()
	select {
	case l.hint <- struct{}{}:
	default:
	}
}

// Changed returns a channel closed at the next Committed (or remote hint).
// Take it before reading, so a commit between the read and the wait is
// not missed.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

func (l *Log) wakeLocal() {
	l.mu.Lock()
	close(l.gen)
	l.gen = make(chan struct{})
	l.mu.Unlock()
}

// Run relays wake-up hints between nodes until ctx ends (PostgreSQL:
// LISTEN/NOTIFY on Channel). A lost hint costs latency, not events: the
// readers poll too. When ctx ends a pending hint is still sent, so a
// short-lived process (a CLI command) wakes the other nodes at once.
func (l *Log) Run(ctx context.Context) {
	defer close(l.done)
	n := l.db.Notifier
	if n == nil {
		return
	}
	go n.Listen(ctx, Channel, func(string) { l.wakeLocal() })
	send := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := n.Notify(sctx, Channel, ""); err != nil {
			l.log.Debug("change log: wake-up hint to other nodes failed (they will poll)", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			select {
			case <-l.hint:
				send()
			default:
			}
			return
		case <-l.hint:
			send()
		}
	}
}

// Done is closed when Run has returned (its last hint sent).
func (l *Log) Done() <-chan struct{} { return l.done }

// Read returns up to limit entries after position after, in order.
func (l *Log) Read(ctx context.Context, after uint64, limit int) ([]Entry, error) {
	b := sqldb.NewBuilder(l.db.Dialect)
	rows, err := b.Query(ctx, l.db.Read, "SELECT seq, collection, name, record, action, data, created FROM _changes WHERE seq > "+
		b.Arg(int64(after))+" ORDER BY seq LIMIT "+strconv.Itoa(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var seq int64
		var data string
		if err := rows.Scan(&seq, &e.CollectionID, &e.Collection, &e.Record, &e.Action, &data, &e.Created); err != nil {
			return nil, err
		}
		e.Seq, e.Data = uint64(seq), json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Bounds reports the log's extent: floor is the highest position pruned
// (a reader at or above it has lost nothing), head the highest position
// written. A reader at position p can resume exactly when floor <= p <= head.
func (l *Log) Bounds(ctx context.Context) (floor, head uint64, err error) {
	var maxSeq sql.NullInt64
	if err := l.db.Read.QueryRowContext(ctx, "SELECT MAX(seq) FROM _changes").Scan(&maxSeq); err != nil {
		return 0, 0, err
	}
	b := sqldb.NewBuilder(l.db.Dialect)
	var pruned string
	err = b.QueryRow(ctx, l.db.Read, "SELECT value FROM _meta WHERE key = "+b.Arg(prunedKey)).Scan(&pruned)
	if err != nil && err != sql.ErrNoRows {
		return 0, 0, err
	}
	floor, _ = strconv.ParseUint(pruned, 10, 64)
	head = max(uint64(max(maxSeq.Int64, 0)), floor)
	return floor, head, nil
}

// prunedKey names the _meta row holding the highest pruned position.
const prunedKey = "changes_pruned"

// Prune deletes entries older than maxAge and all but the newest
// maxCount (a zero limit is no limit), never one above a position a
// Holder still needs, and returns how many it removed. Realtime readers
// that were further behind get a reset, not a silent gap.
func (l *Log) Prune(ctx context.Context, maxAge time.Duration, maxCount int) (int64, error) {
	var removed int64
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		var cut int64
		if maxAge > 0 {
			b := sqldb.NewBuilder(l.db.Dialect)
			var s sql.NullInt64
			if err := b.QueryRow(ctx, tx, "SELECT MAX(seq) FROM _changes WHERE created < "+b.Arg(schema.FormatDate(time.Now().Add(-maxAge)))).Scan(&s); err != nil {
				return err
			}
			cut = max(cut, s.Int64)
		}
		if maxCount > 0 {
			var s sql.NullInt64
			if err := tx.QueryRowContext(ctx, "SELECT MAX(seq) FROM _changes").Scan(&s); err != nil {
				return err
			}
			cut = max(cut, s.Int64-int64(maxCount))
		}
		for _, h := range l.holders {
			need, err := h(ctx)
			if err != nil {
				return err
			}
			cut = min(cut, int64(need))
		}
		if cut <= 0 {
			return nil
		}
		b := sqldb.NewBuilder(l.db.Dialect)
		res, err := b.Exec(ctx, tx, "DELETE FROM _changes WHERE seq <= "+b.Arg(cut))
		if err != nil {
			return err
		}
		removed, _ = res.RowsAffected()
		b = sqldb.NewBuilder(l.db.Dialect)
		res, err = b.Exec(ctx, tx, "UPDATE _meta SET value = "+b.Arg(strconv.FormatInt(cut, 10))+" WHERE key = "+b.Arg(prunedKey))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			b = sqldb.NewBuilder(l.db.Dialect)
			_, err = b.Exec(ctx, tx, "INSERT INTO _meta (key, value) VALUES ("+b.Arg(prunedKey)+", "+b.Arg(strconv.FormatInt(cut, 10))+")")
		}
		return err
	})
	return removed, err
}

// Tail calls fn with every batch of entries after position from, in
// order, until ctx ends. It reads when woken by a commit on this node or
// a hint from another, and at least every poll; a read error is logged
// and retried. fn may block: the log waits for it.
func (l *Log) Tail(ctx context.Context, from uint64, poll time.Duration, fn func([]Entry)) {
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	pos := from
	failing := false
	for {
		woken := l.Changed()
		if batch := l.local(pos, tailBatch); len(batch) > 0 {
			fn(batch)
			pos = batch[len(batch)-1].Seq
			continue
		}
		batch, err := l.Read(ctx, pos, tailBatch)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				l.log.Warn("change log: read failed, retrying", "err", err)
			}
			failing = true
		default:
			failing = false
			if len(batch) > 0 {
				fn(batch)
				pos = batch[len(batch)-1].Seq
				if len(batch) == tailBatch {
					continue
				}
			}
		}
		t.Reset(poll)
		select {
		case <-ctx.Done():
			return
		case <-woken:
		case <-t.C:
		}
	}
}

// tailBatch is how many entries one read takes.
const tailBatch = 256
