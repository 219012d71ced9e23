package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/web"
)

// Heartbeat is how often an idle connection gets a keep-alive, so proxies
// and clients can tell a quiet stream from a dead one.
var Heartbeat = 25 * time.Second

// writeTimeout bounds one write to a client; a client that does not read
// is disconnected instead of holding a goroutine forever.
const writeTimeout = 10 * time.Second

// ServeSSE streams events to a client. Event ids are change log
// positions, the same on every node. A reconnect resumes:
//   - with ?clientId= of a client this node knows (or a Last-Event-ID that
//     is such a client id), its subscriptions continue and the events it
//     missed are replayed;
//   - with only a position (Last-Event-ID, or ?lastEventId= for clients
//     that open a new stream), on any node: the client gets a new id,
//     subscribes again, and its new subscriptions replay from there.
//
// A position the log no longer holds gets a plinth_reset event: reload.
// PocketBase's SDKs get PB_CONNECT too; its id: line is the client id, so
// a browser reconnecting before any event sends that id back.
func (b *Broker) ServeSSE(w http.ResponseWriter, r *http.Request, caller *records.Caller, token string) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c, resetErr := b.attach(r, caller, token)
	mine := c.attachment()
	w.WriteHeader(http.StatusOK)
	write := func(p []byte) error {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(p); err != nil {
			return err
		}
		return rc.Flush()
	}
	connect, _ := json.Marshal(map[string]string{"clientId": c.ID})
	// plinth_connect for Plinth's clients, then PB_CONNECT as PocketBase's
	// SDKs expect it: they take the client id from its id: line.
	hello := "event: plinth_connect\ndata: " + string(connect) + "\n\n" +
		"id: " + c.ID + "\nevent: PB_CONNECT\ndata: " + string(connect) + "\n\n"
	if write([]byte(hello)) != nil {
		b.Detach(c, mine)
		return
	}
	if resetErr != nil && write(resetEvent(b.dispatched.Load(), resetErr)) != nil {
		b.Detach(c, mine)
		return
	}
	tick := time.NewTicker(Heartbeat)
	defer tick.Stop()
	buf := make([]byte, 0, 512)
	one := func(m *message) error {
		buf = appendSSE(buf[:0], m)
		if err := write(buf); err != nil {
			return err
		}
		c.sent.Store(m.seq)
		return nil
	}
	for {
		select {
		case <-r.Context().Done():
			b.Detach(c, mine)
			return
		case <-c.gone:
			return
		case <-mine:
			return
		case <-c.kick:
			if err := b.replay(r.Context(), c, mine, one); err != nil {
				b.Detach(c, mine)
				return
			}
		case <-tick.C:
			if write([]byte(":\n\n")) != nil {
				b.Detach(c, mine)
				return
			}
		case m := <-c.queue:
			buf = buf[:0]
			var last uint64
			for {
				buf = appendSSE(buf, m)
				last = m.seq
				// Coalesce whatever else is queued into one flush.
				select {
				case m = <-c.queue:
					continue
				default:
				}
				break
			}
			if write(buf) != nil {
				b.Detach(c, mine)
				return
			}
			c.sent.Store(last)
		}
		if cap(buf) > 64<<10 {
			buf = make([]byte, 0, 512) // don't keep a burst's buffer per idle client
		}
	}
}

// attach finds or creates the client of a new SSE connection (see
// ServeSSE); a non-nil error means the client must be told to reset.
func (b *Broker) attach(r *http.Request, caller *records.Caller, token string) (*Client, error) {
	q := r.URL.Query()
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("lastEventId")
	}
	pos, err := strconv.ParseUint(last, 10, 64)
	id := q.Get("clientId")
	if err != nil {
		// Not a position: clients whose connect event carried the client
		// id as its event id send that back.
		if id == "" && last != "" && len(last) <= 64 {
			id = last
		}
		pos = 0
	}
	if id != "" {
		if c, ok, err := b.Resume(r.Context(), id, pos, caller); ok {
			return c, err
		}
	}
	if pos > 0 {
		return b.ConnectResuming(r.Context(), caller, token, pos)
	}
	return b.Connect(caller, token), nil
}

// appendSSE appends one event in text/event-stream framing.
func appendSSE(buf []byte, m *message) []byte {
	buf = append(buf, "id: "...)
	buf = strconv.AppendUint(buf, m.seq, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, m.topic...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, m.data...)
	return append(buf, "\n\n"...)
}

// resetEvent tells a client its resume position is lost: it should
// reload what it shows. Its id is the current position, so the next
// reconnect resumes from here.
func resetEvent(head uint64, err error) []byte {
	reason := "The events since your last one are no longer kept; reload."
	if !errors.Is(err, ErrReset) {
		reason = "Missed events could not be read; reload."
	}
	data, _ := json.Marshal(map[string]any{"reason": reason})
	return []byte("id: " + strconv.FormatUint(head, 10) + "\nevent: plinth_reset\ndata: " + string(data) + "\n\n")
}

// SubscribeRequest is the body of POST /api/realtime.
type SubscribeRequest struct {
	ClientID      string            `json:"clientId"`
	Subscriptions []json.RawMessage `json:"subscriptions"`
}

// ParseSubscriptions accepts topics as strings ("posts", "posts/ID") or
// objects with filter, expand and fields.
func (b *Broker) ParseSubscriptions(ctx context.Context, raw []json.RawMessage) ([]*Subscription, error) {
	if len(raw) > 100 {
		return nil, &SubscriptionError{"at most 100 subscriptions per client"}
	}
	out := make([]*Subscription, 0, len(raw))
	for _, r := range raw {
		var s Subscription
		var topic string
		if json.Unmarshal(r, &topic) == nil {
			s.Topic = topic
		} else if err := json.Unmarshal(r, &s); err != nil {
			return nil, &SubscriptionError{"a subscription is a topic string or {topic, filter, expand, fields}"}
		}
		p, err := b.ParseSubscription(ctx, s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// wsIn is a message from a WebSocket client.
type wsIn struct {
	Type          string            `json:"type"` // "subscribe" or "auth"
	Token         string            `json:"token"`
	Subscriptions []json.RawMessage `json:"subscriptions"`
}

// ServeWS carries the same events over a WebSocket. The client sends
// {"type":"subscribe","subscriptions":[...]} (optionally with "token" to
// authenticate) and receives {"type":"event","id","topic","action","record"}.
// The reader and the writer of one connection share its state; they are
// kept in one function so their lifetimes are visibly tied together.
func (b *Broker) ServeWS(w http.ResponseWriter, r *http.Request, caller *records.Caller, token string, auth func(ctx context.Context, token string) (*records.Caller, error)) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	conn.SetReadLimit(64 << 10)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var c *Client
	var resetErr error
	if pos, err := strconv.ParseUint(r.URL.Query().Get("lastEventId"), 10, 64); err == nil && pos > 0 {
		// Resume on any node: the subscriptions sent next replay from pos.
		c, resetErr = b.ConnectResuming(ctx, caller, token, pos)
	} else {
		c = b.Connect(caller, token)
	}
	defer b.drop(c)
	send := func(v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		wctx, wcancel := context.WithTimeout(ctx, writeTimeout)
		defer wcancel()
		return conn.Write(wctx, websocket.MessageText, data)
	}
	if send(map[string]string{"type": "connect", "clientId": c.ID}) != nil {
		return
	}
	if resetErr != nil && send(map[string]any{"type": "reset", "id": b.dispatched.Load()}) != nil {
		return
	}
	event := func(m *message) error {
		return send(struct {
			Type  string          `json:"type"`
			ID    uint64          `json:"id"`
			Topic string          `json:"topic"`
			Data  json.RawMessage `json:"data"`
		}{"event", m.seq, m.topic, m.data})
	}
	go func() {
		defer cancel()
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var in wsIn
			if json.Unmarshal(data, &in) != nil {
				send(map[string]string{"type": "error", "message": "invalid message"})
				continue
			}
			var who *records.Caller
			if in.Token != "" {
				if who, err = auth(ctx, in.Token); err != nil {
					send(map[string]string{"type": "error", "message": "invalid token"})
					continue
				}
			}
			if in.Type == "auth" {
				if err := b.Subscribe(c, c.currentSubs(), who, in.Token); err != nil {
					send(map[string]string{"type": "error", "message": err.Error()})
				}
				continue
			}
			subs, err := b.ParseSubscriptions(ctx, in.Subscriptions)
			if err == nil {
				err = b.Subscribe(c, subs, who, in.Token)
			}
			if err != nil {
				send(map[string]string{"type": "error", "message": err.Error()})
				continue
			}
			send(map[string]any{"type": "subscribed", "subscriptions": len(subs)})
		}
	}()
	tick := time.NewTicker(Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusNormalClosure, "")
			return
		case <-c.gone:
			conn.Close(websocket.StatusPolicyViolation, "too slow")
			return
		case <-tick.C:
			pctx, pcancel := context.WithTimeout(ctx, writeTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				return
			}
		case <-c.kick:
			if b.replay(ctx, c, nil, event) != nil {
				return
			}
		case m := <-c.queue:
			if event(m) != nil {
				return
			}
		}
	}
}

func (c *Client) currentSubs() []*Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subList
}

// HandleSSE answers GET /api/realtime: an event stream for the caller.
func (b *Broker) HandleSSE(w http.ResponseWriter, r *http.Request) error {
	b.ServeSSE(w, r, records.CallerFrom(r), web.Bearer(r))
	return nil
}

// HandleSubscribe answers POST /api/realtime: it sets a client's
// subscriptions; the request's Authorization becomes the identity events
// are filtered for, and its headers and query what rules see of it.
func (b *Broker) HandleSubscribe(w http.ResponseWriter, r *http.Request) error {
	raw, err := web.ReadJSON(r)
	if err != nil {
		return err
	}
	var req SubscribeRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return apierr.BadRequest("Invalid JSON body.")
	}
	c := b.Get(req.ClientID)
	if c == nil {
		return apierr.NotFound("Missing or invalid client id.").With("clientId", "validation_invalid_client", "Unknown realtime client.")
	}
	subs, err := b.ParseSubscriptions(r.Context(), req.Subscriptions)
	var se *SubscriptionError
	if errors.As(err, &se) {
		return apierr.BadRequest("Invalid subscriptions.").With("subscriptions", "validation_invalid_subscription", err.Error())
	}
	if err != nil {
		return err
	}
	if err := b.Subscribe(c, subs, records.CallerFrom(r), web.Bearer(r)); err != nil {
		return apierr.Forbidden(err.Error())
	}
	return web.NoContent(w)
}

// HandleWS answers GET /api/realtime/ws: the same events over WebSocket.
func (b *Broker) HandleWS(w http.ResponseWriter, r *http.Request) error {
	up := records.CallerFrom(r)
	b.ServeWS(w, r, up, web.Bearer(r), func(ctx context.Context, tok string) (*records.Caller, error) {
		col, rec, err := b.auth.Authenticate(ctx, tok)
		if err != nil {
			return nil, err
		}
		// A token sent in a message changes who the client is, not its
		// request: rules still see the upgrade request's query and headers.
		next := &records.Caller{AuthCollection: col, Auth: rec}
		if up != nil {
			next.Method, next.Query, next.Headers = up.Method, up.Query, up.Headers
		}
		return next, nil
	})
	return nil
}
