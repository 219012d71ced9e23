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
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Options tune the broker.
type Options struct {
	// QueueSize bounds undelivered messages per client (default 64).
	QueueSize int
	// History is how many recent events are kept for resuming (default 1024).
	History int
	// Grace keeps a disconnected client's subscriptions for a reconnect
	// with Last-Event-ID (default 60s).
	Grace time.Duration
}

// Broker owns clients and subscriptions on one node.
type Broker struct {
	recs   *records.Service
	auth   Authenticator
	schema func() *schema.Snapshot
	notify sqldb.Notifier
	log    *slog.Logger
	opts   Options
	node   string

	events  chan *event
	pubMu   sync.Mutex
	outbox  chan string
	flushed chan struct{}
	stopped chan struct{}
	stop    sync.Once
	seq     atomic.Uint64

	mu      sync.RWMutex
	clients map[string]*Client
	byColl  map[string]map[*Client]struct{} // collection id -> subscribed clients
	ring    []*event                        // recent events, oldest first

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

// actionRevoke marks a revocation among the changes sent to other nodes.
const actionRevoke = "revoke"

// Revoke re-checks, on this node and every other, the connections
// authenticated as record recordID of collection collectionID: those
// whose token no longer authenticates (logout everywhere, a session
// ended) continue as anonymous. It travels in the event stream, so every
// event committed after the revocation is filtered for the new identity.
func (b *Broker) Revoke(collectionID, recordID string) {
	if !b.enqueueEvent(&event{revoke: &revocation{collectionID, recordID}}) || b.notify == nil {
		return
	}
	payload, err := json.Marshal(wireChange{Node: b.node, Action: actionRevoke, Collection: collectionID, Values: map[string]any{"id": recordID}})
	if err != nil {
		return
	}
	select {
	case b.outbox <- string(payload):
	default:
		b.log.Warn("realtime: cross-node queue full, revocation not sent to other nodes")
	}
}

// Authenticator checks tokens: the identity service.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*schema.Collection, *records.Record, error)
}

// New creates a broker; Run must be started for events to flow.
func New(recs *records.Service, auth Authenticator, snap func() *schema.Snapshot, n sqldb.Notifier, log *slog.Logger, o Options) *Broker {
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	if o.History <= 0 {
		o.History = 1024
	}
	if o.Grace <= 0 {
		o.Grace = time.Minute
	}
	return &Broker{recs: recs, auth: auth, schema: snap, notify: n, log: log, opts: o, node: randomID(8),
		flushed: make(chan struct{}), events: make(chan *event, 8192), outbox: make(chan string, 8192), stopped: make(chan struct{}), clients: map[string]*Client{}, byColl: map[string]map[*Client]struct{}{}}
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// EventsChannel is the notification channel carrying changes between nodes.
const EventsChannel = "plinth_events"

// wireChange is a change as sent to other nodes.
type wireChange struct {
	Node       string         `json:"node"`
	Action     string         `json:"action"`
	Collection string         `json:"collection"`
	Values     map[string]any `json:"values"`
}

// maxNotify keeps payloads under PostgreSQL's 8000-byte NOTIFY limit;
// larger records are announced by id and read back by the receivers.
const maxNotify = 7000

// Publish queues a committed change for fan-out here and on other nodes.
// It is called by writers after commit and does not wait for clients.
func (b *Broker) Publish(ch records.Change) {
	if !b.enqueueEvent(&event{change: ch}) {
		return
	}
	if b.notify == nil {
		return
	}
	w := wireChange{Node: b.node, Action: ch.Action, Collection: ch.Record.Collection.ID, Values: ch.Record.Values}
	payload, err := json.Marshal(w)
	if err != nil {
		return
	}
	if len(payload) > maxNotify {
		w.Values = map[string]any{"id": ch.Record.ID()}
		payload, _ = json.Marshal(struct {
			wireChange
			Ref bool `json:"ref"`
		}{w, true})
	}
	// One sender keeps other nodes' events in commit order.
	select {
	case b.outbox <- string(payload):
	default:
		b.log.Warn("realtime: cross-node queue full, event not sent to other nodes")
	}
}

// enqueueEvent numbers an event and queues it for fan-out. Numbering and
// queueing happen together under pubMu, so the queue is in sequence
// order and a subscription can tell events committed before it started.
func (b *Broker) enqueueEvent(ev *event) bool {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	ev.seq = b.seq.Add(1)
	select {
	case b.events <- ev:
		return true
	case <-b.stopped:
		return false
	}
}

// sendLoop publishes queued events to other nodes in order.
// When ctx ends it still sends what is queued (for up to 5 seconds), so
// a node that stops, or a CLI command that changed data, announces its
// last changes before the database closes; Flushed reports when done.
func (b *Broker) sendLoop(ctx context.Context) {
	defer close(b.flushed)
	// A send already started finishes even when ctx ends meanwhile: the
	// change it announces is committed.
	send := func(ctx context.Context, p string) {
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := b.notify.Notify(nctx, EventsChannel, p); err != nil {
			b.log.Warn("realtime: cross-node publish failed", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			for {
				select {
				case p := <-b.outbox:
					send(drain, p)
				default:
					return
				}
			}
		case p := <-b.outbox:
			send(ctx, p)
		}
	}
}

// Flushed is closed once events queued for other nodes have been sent
// after Run's context ended (at once on a single node).
func (b *Broker) Flushed() <-chan struct{} { return b.flushed }

// Run fans out events until ctx ends, and listens for other nodes'.
func (b *Broker) Run(ctx context.Context) {
	if b.notify != nil {
		go b.notify.Listen(ctx, EventsChannel, func(p string) { b.remote(ctx, p) })
		go b.sendLoop(ctx)
	} else {
		close(b.flushed)
	}
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

// remote turns another node's change back into a record and queues it.
func (b *Broker) remote(ctx context.Context, payload string) {
	var w struct {
		wireChange
		Ref bool `json:"ref"`
	}
	if json.Unmarshal([]byte(payload), &w) != nil || w.Node == b.node {
		return
	}
	if w.Action == actionRevoke {
		id, _ := w.Values["id"].(string)
		b.enqueueEvent(&event{revoke: &revocation{w.Collection, id}})
		return
	}
	c := b.schema().Get(w.Collection)
	if c == nil {
		return
	}
	var rec *records.Record
	if w.Ref {
		id, _ := w.Values["id"].(string)
		r, err := b.recs.Lookup(ctx, c, id)
		if err != nil || r == nil {
			rec = &records.Record{Collection: c, Values: map[string]any{"id": id}}
		} else {
			rec = r
		}
	} else {
		rec = records.FromWire(c, w.Values)
	}
	b.enqueueEvent(&event{change: records.Change{Action: w.Action, Record: rec}})
}

// dispatch delivers one event to every matching subscription.
func (b *Broker) dispatch(ctx context.Context, ev *event) {
	if r := ev.revoke; r != nil {
		b.revalidate(ctx, r.collectionID, r.recordID, false)
		return
	}
	coll := ev.change.Record.Collection
	b.mu.Lock()
	b.ring = append(b.ring, ev)
	if len(b.ring) > b.opts.History {
		b.ring = b.ring[len(b.ring)-b.opts.History:]
	}
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
// order; one at or below lastSeq was already replayed after a resume.
func (b *Broker) deliverLocked(ctx context.Context, c *Client, ev *event, dc *deliveryCache) {
	if ev.seq <= c.lastSeq {
		return
	}
	c.mu.Lock()
	caller, ident, subs, attached := c.caller, c.ident, c.subList, c.attached
	c.mu.Unlock()
	if !attached {
		// Nobody is reading: a resume replays from history instead.
		return
	}
	c.lastSeq = ev.seq
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
		if msg != nil && !c.enqueue(msg) {
			b.Dropped.Add(1)
			b.drop(c)
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
// everywhere) or with its session ended means anonymous from now on;
// otherwise their rules see the new values.
func (b *Broker) revalidate(ctx context.Context, collectionID, recordID string, deleted bool) {
	b.mu.RLock()
	var affected []*Client
	for _, c := range b.clients {
		c.mu.Lock()
		if c.caller.Auth != nil && c.caller.AuthCollection.ID == collectionID && c.caller.Auth.ID() == recordID {
			affected = append(affected, c)
		}
		c.mu.Unlock()
	}
	b.mu.RUnlock()
	for _, c := range affected {
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

	// deliverMu orders live delivery against a resume's replay.
	deliverMu sync.Mutex
	lastSeq   uint64
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
	c := &Client{ID: randomID(20), queue: make(chan *message, b.opts.QueueSize), gone: make(chan struct{}),
		caller: caller, ident: identity(caller), token: token, subs: map[string]*Subscription{}, attached: true, superseded: make(chan struct{})}
	b.mu.Lock()
	b.clients[c.ID] = c
	b.mu.Unlock()
	return c
}

// Resume re-attaches a client and queues the events it missed after
// lastSeq (when they are still in history). ok is false when the client
// is unknown or belongs to someone else.
func (b *Broker) Resume(ctx context.Context, id string, lastSeq uint64, caller *records.Caller) (*Client, bool) {
	b.mu.Lock()
	c := b.clients[id]
	if c == nil {
		b.mu.Unlock()
		return nil, false
	}
	c.mu.Lock()
	// The client id is an unguessable secret only ever sent down this
	// client's own stream, so it is enough to resume (browsers cannot
	// send headers on reconnect); a different signed-in identity is not.
	if caller != nil && caller.Auth != nil && identity(c.caller) != identity(caller) {
		c.mu.Unlock()
		b.mu.Unlock()
		return nil, false
	}
	// A reconnect often arrives before the old connection is noticed
	// dead: the new one takes over.
	close(c.superseded)
	c.superseded = make(chan struct{})
	c.attached = true
	c.mu.Unlock()
	b.mu.Unlock()
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	// Drop what the old connection left undelivered: history replays it.
	for len(c.queue) > 0 {
		<-c.queue
	}
	b.mu.RLock()
	var missed []*event
	for _, ev := range b.ring {
		if ev.seq > lastSeq {
			missed = append(missed, ev)
		}
	}
	b.mu.RUnlock()
	c.lastSeq = lastSeq
	for _, ev := range missed {
		// The cache is per event: decisions and payloads differ by event.
		b.deliverLocked(ctx, c, ev, newDeliveryCache())
	}
	return c, true
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
	now := b.seq.Load()
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
