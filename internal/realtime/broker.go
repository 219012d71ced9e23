// Package realtime pushes record changes to subscribed clients over SSE
// and WebSocket. Every event is filtered through the same list/view rules
// and field visibility as the REST API, per subscriber.
//
// Design: writers hand committed changes to Publish, which never blocks
// on clients. One fan-out goroutine matches each event against the
// subscriptions; rule checks are decided in memory where the rule allows
// (rules.Eval) and cached per event by caller identity (and by the
// request values the rules involved read, if any), so ten thousand
// anonymous subscribers cost one evaluation, not ten thousand. Each client
// has a small bounded queue; a client that falls behind is disconnected
// rather than allowed to slow anyone else.
package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
)

// Options tune the broker.
type Options struct {
	// QueueSize bounds undelivered messages per client (default 64).
	QueueSize int
	// Grace keeps a disconnected client's subscriptions for a reconnect
	// with Last-Event-ID (default 60s).
	Grace time.Duration
	// Poll is how often the change log is read when nothing woke the
	// broker (default 1s): the backstop for lost wake-up hints.
	Poll time.Duration
}

// Broker owns clients and subscriptions on one node. Events come from the
// durable change log (package changes), read in commit order from the
// broker's own position; their ids are log positions, the same on every
// node, so a client can resume on any node.
type Broker struct {
	recs   *records.Service
	auth   Authenticator
	schema func() *schema.Snapshot
	log    *slog.Logger
	opts   Options
	clog   *changes.Log

	events  chan *event
	stopped chan struct{}
	stop    sync.Once
	// head is the last log position read (events up to it are queued);
	// dispatched the last one handed to subscribers.
	head       atomic.Uint64
	dispatched atomic.Uint64
	initDone   bool // Init ran (before Run)

	mu      sync.RWMutex
	clients map[string]*Client
	byColl  map[string]map[*Client]struct{} // collection id -> subscribed clients

	// Dropped counts clients disconnected for falling behind.
	Dropped atomic.Int64
}

// event is one change as distributed to subscribers.
type event struct {
	seq    uint64
	change records.Change
	// revoke, when set, is no change but a signal in the same ordered
	// stream: re-check the connections of this auth record.
	revoke *revocation
}

// revocation names an auth record whose tokens or sessions were revoked.
type revocation struct{ collectionID, recordID string }

// Revoke re-checks, on this node and every other, the connections
// authenticated as record recordID of collection collectionID: those
// whose token no longer authenticates (logout everywhere, a session
// ended) continue as anonymous. It is written to the change log, so every
// event committed after the revocation is filtered for the new identity.
func (b *Broker) Revoke(collectionID, recordID string) {
	if err := b.clog.AppendRevoke(context.Background(), collectionID, recordID); err != nil {
		// The log is unreachable: at least this node's connections are
		// re-checked now.
		b.log.Warn("realtime: revocation not written to the change log", "err", err)
		select {
		case b.events <- &event{revoke: &revocation{collectionID, recordID}}:
		case <-b.stopped:
		}
	}
}

// Authenticator checks tokens: the identity service.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*schema.Collection, *records.Record, error)
}

// New creates a broker over the change log of recs; Run must be started
// for events to flow.
func New(recs *records.Service, auth Authenticator, snap func() *schema.Snapshot, log *slog.Logger, o Options) *Broker {
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	if o.Grace <= 0 {
		o.Grace = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	return &Broker{recs: recs, auth: auth, schema: snap, log: log, opts: o, clog: recs.Changes,
		events: make(chan *event, 1024), stopped: make(chan struct{}), clients: map[string]*Client{}, byColl: map[string]map[*Client]struct{}{}}
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// EventsChannel is the notification channel that wakes other nodes.
const EventsChannel = changes.Channel

// Run reads the change log and fans out events until ctx ends.
func (b *Broker) Run(ctx context.Context) {
	go b.tail(ctx)
	sweep := time.NewTicker(b.opts.Grace / 2)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			b.Shutdown()
			return
		case ev := <-b.events:
			b.dispatch(ctx, ev)
		case <-sweep.C:
			b.sweepDetached()
		}
	}
}

// Init reads the change log's head: the broker's start position. What
// was committed before is history, replayed only to clients that resume;
// everything after is delivered. It must run before the node takes
// requests, or a write in between would be neither.
func (b *Broker) Init(ctx context.Context) error {
	_, head, err := b.clog.Bounds(ctx)
	if err != nil {
		return err
	}
	b.head.Store(head)
	b.dispatched.Store(head)
	b.initDone = true
	return nil
}

// tail queues every log entry after the start position as an event, in
// order.
func (b *Broker) tail(ctx context.Context) {
	if !b.initDone {
		if err := b.Init(ctx); err != nil {
			b.log.Error("realtime: cannot read the change log; no events will be delivered", "err", err)
			return
		}
	}
	b.clog.Tail(ctx, b.head.Load(), b.opts.Poll, func(batch []changes.Entry) {
		for _, e := range batch {
			ev := b.toEvent(ctx, e)
			select {
			case b.events <- ev:
			case <-ctx.Done():
				return
			}
			b.head.Store(e.Seq)
		}
	})
}

// toEvent turns a log entry into an event. An entry of a collection that
// no longer exists (or was re-created under its name) carries no change,
// but keeps its place in the sequence.
func (b *Broker) toEvent(ctx context.Context, e changes.Entry) *event {
	ev := &event{seq: e.Seq}
	if e.Action == changes.ActionRevoke {
		ev.revoke = &revocation{e.CollectionID, e.Record}
	} else if rec := b.recs.FromEntry(ctx, e); rec != nil {
		ev.change = records.Change{Action: e.Action, Record: rec}
	}
	return ev
}

// dispatch delivers one event to every matching subscription.
func (b *Broker) dispatch(ctx context.Context, ev *event) {
	if ev.seq > 0 {
		b.dispatched.Store(ev.seq)
	}
	if r := ev.revoke; r != nil {
		b.revalidate(ctx, r.collectionID, r.recordID, false)
		return
	}
	if ev.change.Record == nil {
		return
	}
	coll := ev.change.Record.Collection
	b.mu.Lock()
	targets := make([]*Client, 0, len(b.byColl[coll.ID]))
	for c := range b.byColl[coll.ID] {
		targets = append(targets, c)
	}
	b.mu.Unlock()
	if coll.IsAuth() {
		b.revalidate(ctx, coll.ID, ev.change.Record.ID(), ev.change.Action == records.ActionDelete)
	}
	dc := newDeliveryCache()
	for _, c := range targets {
		b.deliver(ctx, c, ev, dc)
	}
}

// deliveryCache memoises, for one event, rule decisions and rendered
// payloads by caller identity, subscription options and the request
// values the rules involved read.
type deliveryCache struct {
	decisions map[cacheKey]bool
	rendered  map[cacheKey]*message // shared by every client with the key
	reads     map[readsKey][]rules.Expr
}

// cacheKey pairs a caller identity with a subscription; both strings are
// precomputed, so building a key allocates nothing.
type cacheKey struct{ ident, sub string }

func newDeliveryCache() *deliveryCache {
	return &deliveryCache{decisions: map[cacheKey]bool{}, rendered: map[cacheKey]*message{}, reads: map[readsKey][]rules.Expr{}}
}

func identity(caller *records.Caller) string {
	if caller == nil || caller.Auth == nil {
		return "-"
	}
	return caller.AuthCollection.ID + "/" + caller.Auth.ID()
}

func (b *Broker) deliver(ctx context.Context, c *Client, ev *event, dc *deliveryCache) {
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	b.deliverLocked(ctx, c, ev, dc)
}

// deliverLocked runs with c.deliverMu held. Events arrive in sequence
// order; one at or below lastSeq was already replayed after a resume, and
// a client replaying from the log takes nothing live until it caught up.
func (b *Broker) deliverLocked(ctx context.Context, c *Client, ev *event, dc *deliveryCache) {
	if c.replaying || ev.seq <= c.lastSeq {
		return
	}
	c.mu.Lock()
	attached := c.attached
	c.mu.Unlock()
	if !attached {
		// Nobody is reading: a resume replays from the log instead.
		return
	}
	c.lastSeq = ev.seq
	b.collect(ctx, c, ev, dc, func(m *message) bool {
		if !c.enqueue(m) {
			b.Dropped.Add(1)
			b.drop(c)
			return false
		}
		return true
	})
}

// collect renders ev for each of c's subscriptions that may see it and
// hands the messages to out, which returns false to stop.
func (b *Broker) collect(ctx context.Context, c *Client, ev *event, dc *deliveryCache, out func(*message) bool) {
	c.mu.Lock()
	caller, ident, subs := c.caller, c.ident, c.subList
	c.mu.Unlock()
	rec := ev.change.Record
	base := caller
	for _, s := range subs {
		if s.collectionID != rec.Collection.ID || (s.RecordID != "" && s.RecordID != rec.ID()) {
			continue
		}
		caller := s.callerFor(base)
		if ev.seq <= s.since {
			continue // committed before this subscription began
		}
		key := cacheKey{ident, s.key}
		if rk := b.requestKey(caller, s, rec.Collection, dc); rk != "" {
			key.ident += "\x00" + rk
		}
		ok, seen := dc.decisions[key]
		if !seen {
			ok = b.visible(ctx, caller, s, rec)
			dc.decisions[key] = ok
		}
		if !ok {
			continue
		}
		msg, seen := dc.rendered[key]
		if !seen {
			if data := b.render(ctx, caller, s, ev); data != nil {
				msg = &message{ev.seq, s.Topic, data}
			}
			dc.rendered[key] = msg
		}
		if msg != nil && !out(msg) {
			return
		}
	}
}

// requestKey fingerprints the request values (method, query, headers)
// read by what decides and renders the event for this subscription, for
// the delivery cache: clients that share an identity but differ in what
// a rule reads must share neither decisions nor payloads.
func (b *Broker) requestKey(caller *records.Caller, s *Subscription, c *schema.Collection, dc *deliveryCache) string {
	su := caller.Superuser()
	rk := readsKey{s.key, su}
	exprs, ok := dc.reads[rk]
	if !ok {
		exprs = b.requestReaders(s, c, su)
		dc.reads[rk] = exprs
	}
	if len(exprs) == 0 {
		return ""
	}
	// Each part is self-delimiting (see rules.RequestKey), and every
	// client of this subscription has the same list of expressions.
	var key strings.Builder
	for _, e := range exprs {
		key.WriteString(rules.RequestKey(e, caller.Method, caller.Query, caller.Headers))
		key.WriteByte('|')
	}
	return key.String()
}

// readsKey names the expressions requestReaders finds for a subscription,
// which depend on it and on whether rules apply to the caller.
type readsKey struct {
	sub string
	su  bool
}

// requestReaders lists the expressions that read the request when s is
// delivered, among the collection's list or view rule, the subscription's
// filter, and the view rule of every collection its expand reaches (an
// expanded record is read under its own collection's view rule, which
// may read headers too). Superusers skip rules, but not their filter.
// Expressions that read nothing of the request are left out, so the
// common case costs no key at all.
func (b *Broker) requestReaders(s *Subscription, c *schema.Collection, su bool) []rules.Expr {
	var out []rules.Expr
	add := func(e rules.Expr) {
		if rules.RequestKey(e, "", nil, nil) != "" {
			out = append(out, e)
		}
	}
	rule := func(r *string) {
		if su || r == nil || *r == "" {
			return
		}
		if e, err := b.recs.ParseRule(*r); err == nil {
			add(e)
		}
	}
	if s.RecordID != "" {
		rule(c.ViewRule)
	} else {
		rule(c.ListRule)
	}
	if s.filter != nil {
		add(s.filter)
	}
	if s.Expand == "" {
		return out
	}
	snap := b.schema()
	for _, p := range strings.Split(s.Expand, ",") {
		from := c
		for _, seg := range strings.Split(strings.TrimSpace(p), ".") {
			f := from.Field(seg)
			if f == nil || f.Type != schema.FieldRelation {
				break
			}
			if from = snap.Get(f.CollectionID); from == nil {
				break
			}
			rule(from.ViewRule)
		}
	}
	return out
}

// visible applies the rule a REST read of the record would face: the
// list rule for collection subscriptions, the view rule for a record
// subscription, and the subscription's own filter.
func (b *Broker) visible(ctx context.Context, caller *records.Caller, s *Subscription, rec *records.Record) bool {
	c := rec.Collection
	if caller.Superuser() {
		if s.filter == nil {
			return true
		}
	}
	rule := c.ListRule
	if s.RecordID != "" {
		rule = c.ViewRule
	}
	if rule == nil && !caller.Superuser() {
		return false
	}
	exprs := make([]rules.Expr, 0, 2)
	trusted := []bool{}
	if !caller.Superuser() && *rule != "" {
		e, err := b.recs.ParseRule(*rule)
		if err != nil {
			return false
		}
		exprs, trusted = append(exprs, e), append(trusted, true)
	}
	if s.filter != nil {
		exprs, trusted = append(exprs, s.filter), append(trusted, caller.Superuser())
	}
	for i, e := range exprs {
		env := b.recs.Env(caller, trusted[i], nil)
		ok, decided := rules.Eval(c, e, rec.Values, env)
		if !decided {
			var err error
			ok, err = b.recs.Matches(ctx, caller, c, e, trusted[i], rec)
			if err != nil {
				b.log.Warn("realtime: rule check failed", "collection", c.Name, "err", err)
				return false
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// render produces the event payload as the subscriber may see it.
func (b *Broker) render(ctx context.Context, caller *records.Caller, s *Subscription, ev *event) []byte {
	rec := ev.change.Record
	if s.Expand != "" && ev.change.Action != records.ActionDelete {
		if r, err := b.recs.Expanded(ctx, caller, rec, s.Expand); err == nil {
			rec = r
		}
	}
	out, err := json.Marshal(struct {
		Action string          `json:"action"`
		Record json.RawMessage `json:"record"`
	}{ev.change.Action, records.Output(caller, rec, s.fields)})
	if err != nil {
		return nil
	}
	return out
}

// revalidate re-evaluates connections authenticated as an auth record
// that changed or was revoked: deleted, re-keyed (password change, logout
// everywhere), unverified where the collection requires verification, or
// with its session ended means anonymous from now on; otherwise their
// rules see the new values.
func (b *Broker) revalidate(ctx context.Context, collectionID, recordID string, deleted bool) {
	b.mu.RLock()
	var affected []*Client
	for _, c := range b.clients {
		if c.is(collectionID, recordID) {
			affected = append(affected, c)
		}
	}
	b.mu.RUnlock()
	for _, c := range affected {
		b.recheck(ctx, c, deleted)
	}
}

// is reports whether c is authenticated as the given auth record.
func (c *Client) is(collectionID, recordID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caller.Auth != nil && c.caller.AuthCollection.ID == collectionID && c.caller.Auth.ID() == recordID
}

// recheck authenticates c's token again (see revalidate).
func (b *Broker) recheck(ctx context.Context, c *Client, deleted bool) {
	c.mu.Lock()
	tok, prev := c.token, c.caller
	c.mu.Unlock()
	// Only the identity is re-checked: what rules read of the request
	// (method, query, headers) stays what the client sent.
	caller := &records.Caller{Method: prev.Method, Query: prev.Query, Headers: prev.Headers}
	if !deleted && tok != "" {
		if col, rec, err := b.auth.Authenticate(ctx, tok); err == nil {
			caller.AuthCollection, caller.Auth = col, rec
		}
	}
	c.mu.Lock()
	c.caller = caller
	if caller.Auth == nil {
		c.token = ""
	}
	c.ident = identity(c.caller)
	c.mu.Unlock()
}

// Subscription is one topic a client listens to.
type Subscription struct {
	Topic    string `json:"topic"`
	Filter   string `json:"filter,omitempty"`
	Expand   string `json:"expand,omitempty"`
	Fields   string `json:"fields,omitempty"`
	RecordID string `json:"-"`

	key          string
	since        uint64 // last event sequence before the subscription began
	collectionID string
	filter       rules.Expr
	fields       records.Projection
	query        url.Values  // from the topic's options, see callerFor
	headers      http.Header // from the topic's options, see callerFor
}

// ParseSubscription validates a subscription for caller. A topic is a
// collection name ("posts" or "posts/*") or one record ("posts/ID"),
// optionally with PocketBase's "?options=" (see parseTopic).
func (b *Broker) ParseSubscription(ctx context.Context, s Subscription) (*Subscription, error) {
	tp, err := parseTopic(s.Topic)
	if err != nil {
		return nil, err
	}
	name, id := tp.collection, tp.recordID
	s.applyOptions(tp)
	// Resolve re-reads the schema on a miss: a collection created through
	// another node a moment ago is subscribable here at once.
	c, err := b.recs.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errTopic(s.Topic, "unknown collection")
	}
	if id != "" && !schema.ValidRecordID(id) {
		return nil, errTopic(s.Topic, "invalid record id")
	}
	out := s
	out.RecordID, out.collectionID = id, c.ID
	if s.Filter != "" {
		e, err := rules.Parse(s.Filter)
		if err != nil {
			return nil, errTopic(s.Topic, "invalid filter: "+err.Error())
		}
		out.filter = e
	}
	if _, err := records.ParseFields(s.Fields); err != nil {
		return nil, errTopic(s.Topic, "invalid fields")
	}
	out.fields, _ = records.ParseFields(s.Fields)
	out.key = s.Topic + "\x00" + s.Filter + "\x00" + s.Expand + "\x00" + s.Fields
	return &out, nil
}

// SubscriptionError is a client mistake in a subscription request.
type SubscriptionError struct{ Msg string }

// Error implements error.
func (e *SubscriptionError) Error() string { return e.Msg }

func errTopic(topic, msg string) error { return &SubscriptionError{topic + ": " + msg} }

// Client is one realtime connection (or a recently disconnected one
// awaiting resume).
type Client struct {
	ID    string
	queue chan *message
	gone  chan struct{} // closed when the broker drops the client
	once  sync.Once
	// kick asks the connection's writer to replay from the log.
	kick chan struct{}

	mu         sync.Mutex
	caller     *records.Caller
	ident      string // identity(caller), kept in step with it
	token      string
	subs       map[string]*Subscription
	subList    []*Subscription // subs as a slice, replaced (never mutated) on change
	attached   bool
	detachedAt time.Time
	// superseded is closed when a resume takes the client over from a
	// connection the server has not yet seen die.
	superseded chan struct{}
	// resumeAt, when set, is the log position a client that reconnected
	// to a node not knowing it resumes from once it subscribes again.
	resumeAt uint64
	// sent is the position of the last event written to the connection.
	sent atomic.Uint64

	// deliverMu orders live delivery against a replay.
	deliverMu sync.Mutex
	lastSeq   uint64
	replaying bool
}

type message struct {
	seq   uint64
	topic string
	data  []byte
}

// enqueue never blocks: a full queue means the client is too slow.
func (c *Client) enqueue(m *message) bool {
	select {
	case c.queue <- m:
		return true
	default:
		return false
	}
}

// Connect registers a new client.
func (b *Broker) Connect(caller *records.Caller, token string) *Client {
	if caller == nil {
		caller = &records.Caller{}
	}
	c := &Client{ID: randomID(20), queue: make(chan *message, b.opts.QueueSize), gone: make(chan struct{}), kick: make(chan struct{}, 1),
		caller: caller, ident: identity(caller), token: token, subs: map[string]*Subscription{}, attached: true, superseded: make(chan struct{})}
	b.mu.Lock()
	b.clients[c.ID] = c
	b.mu.Unlock()
	return c
}

// ErrReset means a client's resume position is not in the change log any
// more (pruned, or from another database): it must reload what it shows.
var ErrReset = errors.New("resume position out of the change log's retention")

// checkPosition reports whether the log still holds every entry after pos.
func (b *Broker) checkPosition(ctx context.Context, pos uint64) error {
	floor, head, err := b.clog.Bounds(ctx)
	if err != nil {
		return err
	}
	if pos < floor || pos > head {
		return ErrReset
	}
	return nil
}

// ConnectResuming registers a new client for a connection that carries a
// resume position but whose client this node does not know (it was
// connected to another node, or this one restarted): once the client
// subscribes again, every event after pos that its subscriptions may see
// is replayed from the log before live events. ErrReset means pos is out
// of retention; the client is connected without replay.
func (b *Broker) ConnectResuming(ctx context.Context, caller *records.Caller, token string, pos uint64) (*Client, error) {
	err := b.checkPosition(ctx, pos)
	c := b.Connect(caller, token)
	if err == nil {
		c.mu.Lock()
		c.resumeAt = pos
		c.mu.Unlock()
	}
	return c, err
}

// Resume re-attaches a known client and has its connection replay, from
// the log, the events after lastSeq (0: after the last one written to
// it). ok is false when the client is unknown or belongs to someone
// else; ErrReset when lastSeq is out of retention (nothing is replayed).
func (b *Broker) Resume(ctx context.Context, id string, lastSeq uint64, caller *records.Caller) (*Client, bool, error) {
	b.mu.Lock()
	c := b.clients[id]
	if c == nil {
		b.mu.Unlock()
		return nil, false, nil
	}
	c.mu.Lock()
	// The client id is an unguessable secret only ever sent down this
	// client's own stream, so it is enough to resume (browsers cannot
	// send headers on reconnect); a different signed-in identity is not.
	if caller != nil && caller.Auth != nil && identity(c.caller) != identity(caller) {
		c.mu.Unlock()
		b.mu.Unlock()
		return nil, false, nil
	}
	// A reconnect often arrives before the old connection is noticed
	// dead: the new one takes over.
	close(c.superseded)
	c.superseded = make(chan struct{})
	c.attached = true
	c.mu.Unlock()
	b.mu.Unlock()
	if lastSeq == 0 {
		lastSeq = c.sent.Load()
	}
	err := b.checkPosition(ctx, lastSeq)
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	// Drop what the old connection left undelivered: the log replays it.
	for len(c.queue) > 0 {
		<-c.queue
	}
	if err != nil {
		// Continue from now: the client is told to reload.
		c.lastSeq = max(c.lastSeq, b.dispatched.Load())
		return c, true, err
	}
	c.lastSeq = lastSeq
	c.replaying = true
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return c, true, nil
}

// replayBatch is how many log entries a replay reads at a time.
const replayBatch = 256

// errSuperseded ends a replay whose connection was taken over.
var errSuperseded = errors.New("connection superseded")

// replay streams to the connection, through send, every event after the
// client's position that its subscriptions may see, reading the log in
// batches; when it has caught up with live delivery the client goes live.
// It runs on the connection's own goroutine, so a long replay occupies
// that connection only, and is never squeezed through the live queue.
func (b *Broker) replay(ctx context.Context, c *Client, mine chan struct{}, send func(*message) error) error {
	for {
		c.deliverMu.Lock()
		from, on := c.lastSeq, c.replaying
		c.deliverMu.Unlock()
		if !on {
			return nil
		}
		batch, err := b.clog.Read(ctx, from, replayBatch)
		if err != nil {
			return err
		}
		for _, e := range batch {
			select {
			case <-mine:
				return errSuperseded
			default:
			}
			if err := b.replayOne(ctx, c, b.toEvent(ctx, e), send); err != nil {
				return err
			}
			c.deliverMu.Lock()
			c.lastSeq = e.Seq
			c.deliverMu.Unlock()
		}
		if len(batch) == replayBatch {
			continue
		}
		// Caught up with what the log holds: go live if live delivery is
		// not ahead (every event up to dispatched is in the log, so the
		// next read gets it otherwise). From here deliverLocked skips the
		// events this replay already covered.
		c.deliverMu.Lock()
		if c.lastSeq >= b.dispatched.Load() {
			c.replaying = false
			c.deliverMu.Unlock()
			return nil
		}
		c.deliverMu.Unlock()
	}
}

// replayOne delivers one replayed event to c, applying revocations and
// changes to c's own auth record on the way as live delivery does.
func (b *Broker) replayOne(ctx context.Context, c *Client, ev *event, send func(*message) error) error {
	if r := ev.revoke; r != nil {
		if c.is(r.collectionID, r.recordID) {
			b.recheck(ctx, c, false)
		}
		return nil
	}
	if ev.change.Record == nil {
		return nil
	}
	rec := ev.change.Record
	if rec.Collection.IsAuth() && c.is(rec.Collection.ID, rec.ID()) {
		b.recheck(ctx, c, ev.change.Action == records.ActionDelete)
	}
	var err error
	b.collect(ctx, c, ev, newDeliveryCache(), func(m *message) bool {
		err = send(m)
		return err == nil
	})
	return err
}

// attachment returns the channel closed when this connection is superseded.
func (c *Client) attachment() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.superseded
}

// Subscribe replaces the client's subscriptions and, when given, its
// identity. A client that has an identity cannot be taken over by another.
func (b *Broker) Subscribe(c *Client, subs []*Subscription, caller *records.Caller, token string) error {
	// New subscriptions start after every change committed so far, also
	// those this node has not read yet.
	now := b.head.Load()
	hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if _, head, err := b.clog.Bounds(hctx); err == nil {
		now = max(now, head)
	}
	cancel()
	c.mu.Lock()
	if caller != nil && caller.Auth != nil && c.caller.Auth != nil && identity(caller) != identity(c.caller) {
		c.mu.Unlock()
		return errIdentity
	}
	if caller != nil {
		// Browsers cannot set headers on an EventSource, so what rules read
		// of the request (@request.headers.*, @request.query.*) comes from
		// the subscription request. Without a token the identity stays;
		// events are reads, so rules see GET.
		next := *caller
		next.Method = http.MethodGet
		if caller.Auth != nil {
			c.ident, c.token = identity(caller), token
		} else {
			next.AuthCollection, next.Auth = c.caller.AuthCollection, c.caller.Auth
		}
		c.caller = &next
	}
	old := c.subs
	resume := c.resumeAt
	if resume > 0 && len(subs) > 0 {
		// The first subscriptions after reconnecting to this node start
		// where the client left off on the other one.
		now, c.resumeAt = resume, 0
	}
	c.subs = make(map[string]*Subscription, len(subs))
	list := make([]*Subscription, 0, len(subs))
	for _, s := range subs {
		if _, dup := c.subs[s.key]; dup {
			continue
		}
		// A kept subscription keeps its start; a new one starts now.
		if prev, ok := old[s.key]; ok {
			s.since = prev.since
		} else {
			s.since = now
		}
		list = append(list, s)
		c.subs[s.key] = s
	}
	c.subList = list
	c.mu.Unlock()
	if resume > 0 && len(subs) > 0 {
		c.deliverMu.Lock()
		c.lastSeq, c.replaying = resume, true
		c.deliverMu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	b.mu.Lock()
	for _, s := range old {
		if m := b.byColl[s.collectionID]; m != nil {
			delete(m, c)
		}
	}
	for _, s := range subs {
		m := b.byColl[s.collectionID]
		if m == nil {
			m = map[*Client]struct{}{}
			b.byColl[s.collectionID] = m
		}
		m[c] = struct{}{}
	}
	b.mu.Unlock()
	return nil
}

type identityError struct{}

// Error implements error.
func (identityError) Error() string { return "the client is authenticated as someone else" }

var errIdentity error = identityError{}

// Get returns a client by id.
func (b *Broker) Get(id string) *Client {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.clients[id]
}

// Detach marks a client disconnected; its subscriptions wait Grace for a
// resume before the sweep removes them. A connection that was superseded
// by a resume leaves the client alone.
func (b *Broker) Detach(c *Client, superseded chan struct{}) {
	c.mu.Lock()
	if c.superseded != superseded {
		c.mu.Unlock()
		return
	}
	c.attached = false
	c.detachedAt = time.Now()
	c.mu.Unlock()
	// Undelivered messages are dropped: a resume replays from history.
	for {
		select {
		case <-c.queue:
		default:
			return
		}
	}
}

// drop disconnects a client for good.
func (b *Broker) drop(c *Client) {
	b.mu.Lock()
	delete(b.clients, c.ID)
	for _, m := range b.byColl {
		delete(m, c)
	}
	b.mu.Unlock()
	c.once.Do(func() { close(c.gone) })
}

func (b *Broker) sweepDetached() {
	b.mu.RLock()
	var stale []*Client
	for _, c := range b.clients {
		c.mu.Lock()
		if !c.attached && time.Since(c.detachedAt) > b.opts.Grace {
			stale = append(stale, c)
		}
		c.mu.Unlock()
	}
	b.mu.RUnlock()
	for _, c := range stale {
		b.drop(c)
	}
}

// Shutdown disconnects every client, so streaming handlers return and a
// graceful server shutdown does not wait on them; later publishes are
// discarded.
func (b *Broker) Shutdown() {
	b.stop.Do(func() { close(b.stopped) })
	b.closeAll()
}

func (b *Broker) closeAll() {
	b.mu.RLock()
	all := make([]*Client, 0, len(b.clients))
	for _, c := range b.clients {
		all = append(all, c)
	}
	b.mu.RUnlock()
	for _, c := range all {
		b.drop(c)
	}
}

// Stats reports connected clients, for metrics and tests.
func (b *Broker) Stats() (clients int) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.clients)
}
