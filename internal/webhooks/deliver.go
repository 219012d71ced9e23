package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Delivery states.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed" // given up after RetryFor
)

// leaseName is the _leases row of the deliverer.
const (
	leaseName = "webhooks"
	// cursorKey is the _meta row holding the log position up to which
	// changes were turned into deliveries.
	cursorKey = "webhooks_cursor"
	// perRound bounds the deliveries one webhook makes per round, so
	// the lease is renewed in between.
	perRound = 100
	// parallel bounds webhooks delivered to at once.
	parallel = 8
)

// Run delivers until ctx ends. Every node runs it; only the node holding
// the lease works, so each change is sent by one node at a time.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		woken := s.clog.Changed()
		select {
		case <-ctx.Done():
			return
		case <-woken:
		case <-t.C:
		}
		if err := s.round(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("webhooks: delivery round failed", "err", err)
		}
		t.Reset(s.opts.Poll)
	}
}

// round is one pass of the lease holder: new changes become deliveries,
// due deliveries are sent.
func (s *Service) round(ctx context.Context) error {
	hooks, err := s.all(ctx, true, 0, 0)
	if err != nil || len(hooks) == 0 {
		return err // nothing to deliver: no lease, no writes
	}
	s.leaseMu.Lock()
	held, err := s.lease(ctx)
	if held {
		s.renewed = time.Now()
	}
	s.leaseMu.Unlock()
	if err != nil || !held {
		return err
	}
	if err := s.materialize(ctx, hooks); err != nil {
		return err
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, w := range hooks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.deliverDue(ctx, w)
		}()
	}
	wg.Wait()
	return nil
}

// lease takes or renews the deliverer's lease for this node.
func (s *Service) lease(ctx context.Context) (bool, error) {
	now := time.Now()
	until := schema.FormatDate(now.Add(s.opts.LeaseTTL))
	b := sqldb.NewBuilder(s.db.Dialect)
	res, err := b.Exec(ctx, s.db.Write, "UPDATE _leases SET node = "+b.Arg(s.node)+", until = "+b.Arg(until)+" WHERE name = "+b.Arg(leaseName)+
		" AND (node = "+b.Arg(s.node)+" OR until < "+b.Arg(schema.FormatDate(now))+")")
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	b = sqldb.NewBuilder(s.db.Dialect)
	_, err = b.Exec(ctx, s.db.Write, "INSERT INTO _leases (name, node, until) VALUES ("+b.Arg(leaseName)+", "+b.Arg(s.node)+", "+b.Arg(until)+")")
	if _, dup := s.db.Dialect.UniqueViolation(err); dup {
		return false, nil // another node holds it
	}
	return err == nil, err
}

// renew keeps the lease during a long round: at most every third of its
// time-to-live it is written again, so it cannot lapse between two sends.
func (s *Service) renew(ctx context.Context) (bool, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if time.Since(s.renewed) < s.opts.LeaseTTL/3 {
		return true, nil
	}
	held, err := s.lease(ctx)
	if held {
		s.renewed = time.Now()
	}
	return held, err
}

// materialize turns log entries after the cursor into pending deliveries
// for the webhooks they match, and moves the cursor, in one transaction
// per batch. Rows are unique per (webhook, change): a batch done twice
// (a lease that changed hands mid-way) creates nothing twice.
func (s *Service) materialize(ctx context.Context, hooks []*Webhook) error {
	cursor, err := s.cursor(ctx)
	if err != nil {
		return err
	}
	lowest := hooks[0].since
	for _, w := range hooks {
		lowest = min(lowest, w.since)
	}
	cursor = max(cursor, lowest)
	for {
		batch, err := s.clog.Read(ctx, cursor, 256)
		if err != nil || len(batch) == 0 {
			return err
		}
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			for _, e := range batch {
				if err := s.enqueue(ctx, tx, hooks, e); err != nil {
					return err
				}
			}
			return s.setCursor(ctx, tx, batch[len(batch)-1].Seq)
		})
		if err != nil {
			return err
		}
		cursor = batch[len(batch)-1].Seq
	}
}

// enqueue adds the deliveries of one change.
func (s *Service) enqueue(ctx context.Context, tx *sql.Tx, hooks []*Webhook, e changes.Entry) error {
	if e.Action == changes.ActionRevoke {
		return nil
	}
	var payload []byte
	var rec *records.Record
	built := false
	for _, w := range hooks {
		if e.Seq <= w.since || !w.covers(e.CollectionID) || !slices.Contains(w.Actions, e.Action) {
			continue
		}
		if w.Filter != "" {
			if !built {
				rec, built = s.recs.FromEntry(ctx, e), true
			}
			// A collection gone since cannot be filtered: such a change
			// reaches only webhooks without a filter.
			if rec == nil || !s.matches(ctx, w, rec) {
				continue
			}
		}
		if payload == nil {
			payload = eventPayload(e)
		}
		now := schema.FormatDate(time.Now())
		b := sqldb.NewBuilder(s.db.Dialect)
		_, err := b.Exec(ctx, tx, "INSERT INTO _webhookDeliveries (id, webhook, seq, payload, status, nextAttempt, created, updated) VALUES ("+
			b.Arg(schema.NewID())+", "+b.Arg(w.ID)+", "+b.Arg(int64(e.Seq))+", "+b.Arg(string(payload))+", "+b.Arg(StatusPending)+", "+b.Arg(now)+", "+b.Arg(now)+", "+b.Arg(now)+")")
		if _, dup := s.db.Dialect.UniqueViolation(err); err != nil && !dup {
			return err
		}
	}
	return nil
}

// matches evaluates the webhook's filter on the record as the change left
// it (in memory where possible, else in SQL on the record's values).
func (s *Service) matches(ctx context.Context, w *Webhook, rec *records.Record) bool {
	e, err := rules.Parse(w.Filter)
	if err != nil {
		return false
	}
	caller := &records.Caller{}
	if ok, decided := rules.Eval(rec.Collection, e, rec.Values, s.recs.Env(caller, true, nil)); decided {
		return ok
	}
	ok, err := s.recs.Matches(ctx, caller, rec.Collection, e, true, rec)
	if err != nil {
		s.log.Warn("webhooks: filter failed", "webhook", w.ID, "err", err)
	}
	return ok && err == nil
}

// eventPayload is the body sent for a change.
func eventPayload(e changes.Entry) []byte {
	var rec map[string]any
	json.Unmarshal(e.Data, &rec)
	if rec == nil {
		rec = map[string]any{}
	}
	rec["collectionId"], rec["collectionName"] = e.CollectionID, e.Collection
	out, _ := json.Marshal(map[string]any{
		"id": strconv.FormatUint(e.Seq, 10), "action": e.Action, "collection": e.Collection, "record": rec, "created": e.Created,
	})
	return out
}

// consumed is the log position up to which every enabled webhook has its
// deliveries (the maximum when there is none): see changes.Holder.
func (s *Service) consumed(ctx context.Context) (uint64, error) {
	hooks, err := s.all(ctx, true, 0, 0)
	if err != nil || len(hooks) == 0 {
		return ^uint64(0) >> 1, err
	}
	cursor, err := s.cursor(ctx)
	if err != nil {
		return 0, err
	}
	lowest := hooks[0].since
	for _, w := range hooks {
		lowest = min(lowest, w.since)
	}
	return max(cursor, lowest), nil
}

func (s *Service) cursor(ctx context.Context) (uint64, error) {
	b := sqldb.NewBuilder(s.db.Dialect)
	var v string
	err := b.QueryRow(ctx, s.db.Read, "SELECT value FROM _meta WHERE key = "+b.Arg(cursorKey)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	n, _ := strconv.ParseUint(v, 10, 64)
	return n, err
}

func (s *Service) setCursor(ctx context.Context, tx *sql.Tx, pos uint64) error {
	b := sqldb.NewBuilder(s.db.Dialect)
	res, err := b.Exec(ctx, tx, "UPDATE _meta SET value = "+b.Arg(strconv.FormatUint(pos, 10))+" WHERE key = "+b.Arg(cursorKey))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		b = sqldb.NewBuilder(s.db.Dialect)
		_, err = b.Exec(ctx, tx, "INSERT INTO _meta (key, value) VALUES ("+b.Arg(cursorKey)+", "+b.Arg(strconv.FormatUint(pos, 10))+")")
	}
	return err
}

// pending is a delivery about to be attempted.
type pending struct {
	id       string
	seq      uint64
	payload  []byte
	attempts int
	next     time.Time
	created  time.Time
}

// deliverDue sends w's pending deliveries oldest first; it stops at one
// that is not due yet or fails (later changes wait: order per webhook).
func (s *Service) deliverDue(ctx context.Context, w *Webhook) {
	for range perRound {
		p, err := s.oldestPending(ctx, w.ID)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("webhooks: reading deliveries failed", "webhook", w.ID, "err", err)
			}
			return
		}
		if p == nil || time.Now().Before(p.next) {
			return
		}
		if held, _ := s.renew(ctx); !held {
			return // another node took over: it sends from here, in order
		}
		status, sendErr := s.send(ctx, w, p)
		if ctx.Err() != nil {
			return
		}
		if !s.record1(ctx, w, p, status, sendErr) {
			return
		}
	}
}

func (s *Service) oldestPending(ctx context.Context, webhook string) (*pending, error) {
	b := sqldb.NewBuilder(s.db.Dialect)
	var p pending
	var seq int64
	var payload, next, created string
	err := b.QueryRow(ctx, s.db.Read, "SELECT id, seq, payload, attempts, nextAttempt, created FROM _webhookDeliveries WHERE status = "+b.Arg(StatusPending)+
		" AND webhook = "+b.Arg(webhook)+" ORDER BY seq LIMIT 1").Scan(&p.id, &seq, &payload, &p.attempts, &next, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p.seq, p.payload = uint64(seq), []byte(payload)
	p.next, _ = schema.ParseDate(next)
	p.created, _ = schema.ParseDate(created)
	return &p, nil
}

// record1 stores an attempt's outcome; it reports whether the next
// delivery may follow now.
func (s *Service) record1(ctx context.Context, w *Webhook, p *pending, status int, sendErr error) bool {
	now := time.Now()
	state, next, lastErr := StatusDelivered, now, ""
	if sendErr != nil {
		lastErr = sendErr.Error()
		if len(lastErr) > 500 {
			lastErr = lastErr[:500]
		}
		state, next = StatusPending, now.Add(s.backoff(p.attempts+1))
		if now.Sub(p.created) > s.opts.RetryFor {
			state = StatusFailed
			s.log.Warn("webhooks: delivery given up", "webhook", w.ID, "change", p.seq, "attempts", p.attempts+1, "err", sendErr)
		}
	}
	b := sqldb.NewBuilder(s.db.Dialect)
	_, err := b.Exec(context.WithoutCancel(ctx), s.db.Write, "UPDATE _webhookDeliveries SET status = "+b.Arg(state)+", attempts = attempts + 1, nextAttempt = "+b.Arg(schema.FormatDate(next))+
		", lastStatus = "+b.Arg(status)+", lastError = "+b.Arg(lastErr)+", updated = "+b.Arg(schema.FormatDate(now))+" WHERE id = "+b.Arg(p.id))
	if err != nil {
		s.log.Warn("webhooks: recording a delivery failed", "webhook", w.ID, "err", err)
		return false
	}
	return state != StatusPending
}

// backoff is the wait before attempt n+1: RetryBase doubled per failure,
// at most an hour, with ±25% jitter so receivers coming back are not hit
// by every webhook at once.
func (s *Service) backoff(failures int) time.Duration {
	d := s.opts.RetryBase << min(failures-1, 20)
	if d <= 0 || d > time.Hour {
		d = time.Hour
	}
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" keyed with the webhook's secret>".
const SignatureHeader = "Plinth-Signature"

// Sign returns the signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// send makes one attempt; a 2xx answer is success.
func (s *Service) send(ctx context.Context, w *Webhook, p *pending) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, w.URL, bytes.NewReader(p.payload))
	if err != nil {
		return 0, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Plinth-Webhooks/1")
	h.Set("Plinth-Webhook-Id", w.ID)
	h.Set("Plinth-Event-Id", strconv.FormatUint(p.seq, 10)) // the idempotency key
	h.Set("Plinth-Delivery-Attempt", strconv.Itoa(p.attempts+1))
	h.Set(SignatureHeader, Sign(w.Secret, time.Now(), p.payload))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %d: %s", resp.StatusCode, bytes.TrimSpace(snippet))
	}
	return resp.StatusCode, nil
}

var errBlocked = errors.New("the address is private, loopback or link-local: refused (the server option --webhooks-allow-private allows it)")

// newHTTPClient returns the client deliveries are sent with: no proxy
// from the environment, no redirects (a 3xx is a failure), and, unless
// allowed, no connection to loopback, private, link-local or otherwise
// internal addresses, checked on the address actually dialled (after DNS,
// so a name cannot rebind around it).
func newHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: timeout, Control: func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || blocked(ap.Addr()) {
			return errBlocked
		}
		return nil
	}}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var (
	cgnat    = netip.MustParsePrefix("100.64.0.0/10")
	thisNet  = netip.MustParsePrefix("0.0.0.0/8")
	benchNet = netip.MustParsePrefix("198.18.0.0/15")
)

// blocked reports addresses a webhook may not reach by default.
func blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsUnspecified() || cgnat.Contains(ip) || thisNet.Contains(ip) || benchNet.Contains(ip)
}
