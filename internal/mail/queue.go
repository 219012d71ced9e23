package mail

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/plinthhq/plinth/internal/sqldb"
)

// Queue is a durable outbox in the database. A request that must send
// mail only inserts a job (in its own transaction where it has one), so
// its answer does not depend on whether, how fast, or how well the SMTP
// server answers; a background sender delivers jobs with retries and
// exponential backoff. Jobs survive restarts; on several nodes sharing a
// database each job is leased by one node at a time.
//
// A job is resolved each time it is tried: its kind's Resolver turns the
// job's payload into a Message (or into nothing, e.g. when an address has
// no account). Doing the lookup here, not in the request, is what makes
// requests for known and unknown addresses indistinguishable. Resolving
// again on a retry means the tokens and codes a message carries are
// signed fresh for the attempt that delivers them (not expired by the
// time the mail server recovers), and are never stored in the queue.
type Queue struct {
	db  *sqldb.DB
	log *slog.Logger
	// smtp reads the current SMTP settings at send time.
	smtp func(ctx context.Context) (SMTP, error)
	opts QueueOptions

	mu        sync.RWMutex
	resolvers map[string]Resolver
	wake      chan struct{}
	now       func() time.Time
}

// Resolver builds the message for a job of one kind; nil means there is
// nothing to send. An error is retried like a failed delivery.
type Resolver func(ctx context.Context, payload json.RawMessage) (*Message, error)

// QueueOptions tune delivery.
type QueueOptions struct {
	// MaxAttempts bounds delivery attempts of one message (default 10).
	MaxAttempts int
	// RetryBase is the first retry delay; each later one doubles, with
	// ±25% jitter, up to RetryMax (defaults 5s and 10m).
	RetryBase, RetryMax time.Duration
	// Poll is how often the queue is checked for due jobs besides the
	// wake-ups of local enqueues, so jobs queued by other nodes or left
	// by a restart go out too (default 5s).
	Poll time.Duration
	// Lease is how long a node owns a job it is sending (default 2m).
	Lease time.Duration
	// KeepFailed is how long undeliverable jobs are kept for inspection
	// (default 7 days).
	KeepFailed time.Duration
	// MaxAge gives up a job not delivered this long after it was queued
	// (default 1h): the email flows are answers to someone waiting, and a
	// login code or reset link that arrives hours later only confuses.
	MaxAge time.Duration
}

func (o *QueueOptions) defaults() {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 5 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 10 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.KeepFailed <= 0 {
		o.KeepFailed = 7 * 24 * time.Hour
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Hour
	}
}

// NewQueue returns a queue over db; smtp supplies the server settings.
func NewQueue(db *sqldb.DB, log *slog.Logger, smtp func(ctx context.Context) (SMTP, error), o QueueOptions) *Queue {
	o.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Queue{db: db, log: log, smtp: smtp, opts: o, resolvers: map[string]Resolver{}, wake: make(chan struct{}, 1), now: time.Now}
}

// Handle registers the resolver of a job kind.
func (q *Queue) Handle(kind string, r Resolver) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.resolvers[kind] = r
}

// queueTime is the stored time format: fixed width, so text order is
// time order on every engine.
const queueTime = "2006-01-02 15:04:05.000Z"

func (q *Queue) stamp(t time.Time) string { return t.UTC().Format(queueTime) }

// Enqueue stores a job of kind with payload (JSON-encoded) through x (the
// caller's transaction, or the write pool) and wakes the sender.
func (q *Queue) Enqueue(ctx context.Context, x sqldb.Querier, kind string, payload any) error {
	p, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	now := q.stamp(q.now())
	b := sqldb.NewBuilder(q.db.Dialect)
	_, err = b.Exec(ctx, x, "INSERT INTO _mailQueue (id, kind, payload, status, attempts, nextAttempt, lockedUntil, lastError, created) VALUES ("+
		b.Arg(randomHex(10))+", "+b.Arg(kind)+", "+b.Arg(string(p))+", 'pending', 0, "+b.Arg(now)+", '', '', "+b.Arg(now)+")")
	if err != nil {
		return err
	}
	q.Wake()
	return nil
}

// RetryNow makes every pending job due at once and wakes the sender: the
// mail settings changed, so waiting out a backoff computed against the
// old ones only delays mail. Jobs queued on other nodes follow on their
// next poll.
func (q *Queue) RetryNow(ctx context.Context) error {
	b := sqldb.NewBuilder(q.db.Dialect)
	if _, err := b.Exec(ctx, q.db.Write, "UPDATE _mailQueue SET nextAttempt = "+b.Arg(q.stamp(q.now()))+" WHERE status = 'pending'"); err != nil {
		return err
	}
	q.Wake()
	return nil
}

// Wake asks the sender to look for due jobs now (after a commit, say).
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run sends due jobs until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	lastPrune := time.Time{}
	t := time.NewTimer(q.opts.Poll)
	defer t.Stop()
	for {
		for ctx.Err() == nil && q.sendDue(ctx) > 0 {
			// A full batch may mean more are due: go on at once.
		}
		if time.Since(lastPrune) > time.Hour {
			q.prune(ctx)
			lastPrune = time.Now()
		}
		// Sleep until the next retry falls due, a local enqueue wakes us,
		// or the poll interval passes (jobs of other nodes, leases that
		// expired).
		t.Reset(q.untilNextDue(ctx))
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-t.C:
		}
	}
}

// untilNextDue is the time until the earliest pending job may be tried
// (due and not leased to a node), at most Poll.
func (q *Queue) untilNextDue(ctx context.Context) time.Duration {
	var next sql.NullString
	if err := q.db.Read.QueryRowContext(ctx, "SELECT MIN(CASE WHEN lockedUntil > nextAttempt THEN lockedUntil ELSE nextAttempt END) FROM _mailQueue WHERE status = 'pending'").Scan(&next); err != nil || !next.Valid {
		return q.opts.Poll
	}
	at, err := time.Parse(queueTime, next.String)
	if err != nil {
		return q.opts.Poll
	}
	return min(max(time.Until(at), 10*time.Millisecond), q.opts.Poll)
}

type job struct {
	id, kind, payload, created string
	attempts                   int
}

// sendDue works through up to a batch of due jobs; it returns how many
// it handled, so Run goes on while there are more.
func (q *Queue) sendDue(ctx context.Context) int {
	now := q.stamp(q.now())
	b := sqldb.NewBuilder(q.db.Dialect)
	rows, err := b.Query(ctx, q.db.Read, "SELECT id, kind, payload, created, attempts FROM _mailQueue WHERE status = 'pending' AND nextAttempt <= "+
		b.Arg(now)+" AND lockedUntil < "+b.Arg(now)+" ORDER BY created, id LIMIT 20")
	if err != nil {
		if ctx.Err() == nil {
			q.log.Warn("mail queue: cannot read due jobs", "err", err)
		}
		return 0
	}
	var jobs []job
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.id, &j.kind, &j.payload, &j.created, &j.attempts); err != nil {
			rows.Close()
			return 0
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	handled := 0
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		if q.claim(ctx, j.id) {
			q.process(ctx, j)
			handled++
		}
	}
	return handled
}

// claim leases a job to this node: only the UPDATE that finds it free
// and due succeeds, so two nodes never send the same job at once, and a
// node that read the job before another one tried and rescheduled it
// does not retry it ahead of its backoff.
func (q *Queue) claim(ctx context.Context, id string) bool {
	now := q.stamp(q.now())
	b := sqldb.NewBuilder(q.db.Dialect)
	res, err := b.Exec(ctx, q.db.Write, "UPDATE _mailQueue SET lockedUntil = "+b.Arg(q.stamp(q.now().Add(q.opts.Lease)))+
		" WHERE id = "+b.Arg(id)+" AND status = 'pending' AND lockedUntil < "+b.Arg(now)+" AND nextAttempt <= "+b.Arg(now))
	if err != nil {
		return false
	}
	n, err := res.RowsAffected()
	return err == nil && n == 1
}

func (q *Queue) process(ctx context.Context, j job) {
	if created, err := time.Parse(queueTime, j.created); err == nil && q.now().Sub(created) > q.opts.MaxAge {
		q.fail(ctx, j, errors.New("not delivered within the maximum age of a queued email"), true)
		return
	}
	q.mu.RLock()
	resolve := q.resolvers[j.kind]
	q.mu.RUnlock()
	if resolve == nil {
		q.fail(ctx, j, errors.New("no handler for mail job kind "+j.kind), true)
		return
	}
	m, err := resolve(ctx, json.RawMessage(j.payload))
	if err != nil {
		q.fail(ctx, j, err, false)
		return
	}
	if m == nil {
		q.finish(ctx, j.id)
		return
	}
	cfg, err := q.smtp(ctx)
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = Send(sctx, cfg, *m)
		cancel()
	}
	if err != nil {
		q.fail(ctx, j, err, false)
		return
	}
	q.finish(ctx, j.id)
}

// finish removes a delivered (or moot) job.
func (q *Queue) finish(ctx context.Context, id string) {
	b := sqldb.NewBuilder(q.db.Dialect)
	if _, err := b.Exec(ctx, q.db.Write, "DELETE FROM _mailQueue WHERE id = "+b.Arg(id)); err != nil && ctx.Err() == nil {
		q.log.Warn("mail queue: cannot remove a sent job (it may be sent again)", "id", id, "err", err)
	}
}

// fail schedules a retry with backoff, or gives up after MaxAttempts (or
// at once when permanent). The error is logged; the message never is.
func (q *Queue) fail(ctx context.Context, j job, cause error, permanent bool) {
	if ctx.Err() != nil {
		// Shutting down: release the lease so another node, or the next
		// start, takes the job at once.
		b := sqldb.NewBuilder(q.db.Dialect)
		b.Exec(context.Background(), q.db.Write, "UPDATE _mailQueue SET lockedUntil = '' WHERE id = "+b.Arg(j.id))
		return
	}
	attempts := j.attempts + 1
	status := "pending"
	if permanent || attempts >= q.opts.MaxAttempts {
		status = "failed"
		q.log.Error("mail queue: giving up on a message", "id", j.id, "kind", j.kind, "attempts", attempts, "err", cause)
	} else {
		q.log.Warn("mail queue: delivery failed, will retry", "id", j.id, "kind", j.kind, "attempt", attempts, "err", cause)
	}
	next := q.now().Add(q.backoff(attempts))
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	b := sqldb.NewBuilder(q.db.Dialect)
	if _, err := b.Exec(ctx, q.db.Write, "UPDATE _mailQueue SET status = "+b.Arg(status)+", attempts = "+b.Arg(attempts)+
		", nextAttempt = "+b.Arg(q.stamp(next))+", lockedUntil = '', lastError = "+b.Arg(msg)+" WHERE id = "+b.Arg(j.id)); err != nil {
		q.log.Warn("mail queue: cannot record a failed attempt", "id", j.id, "err", err)
	}
}

// backoff is RetryBase·2^(attempt-1), capped at RetryMax, ±25% jitter so
// many failed jobs do not retry in lockstep.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.opts.RetryBase
	for i := 1; i < attempt && d < q.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, q.opts.RetryMax)
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}

// prune drops undeliverable jobs older than KeepFailed.
func (q *Queue) prune(ctx context.Context) {
	b := sqldb.NewBuilder(q.db.Dialect)
	if _, err := b.Exec(ctx, q.db.Write, "DELETE FROM _mailQueue WHERE status = 'failed' AND created < "+
		b.Arg(q.stamp(q.now().Add(-q.opts.KeepFailed)))); err != nil && ctx.Err() == nil {
		q.log.Warn("mail queue: prune failed", "err", err)
	}
}

// Pending counts jobs not yet delivered (for metrics and tests).
func (q *Queue) Pending(ctx context.Context) (int, error) {
	var n int
	err := q.db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM _mailQueue WHERE status = 'pending'").Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}
