package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
)

func testBroker() *Broker {
	posts := &schema.Collection{ID: "p1", Name: "posts", Type: schema.TypeBase, Fields: []*schema.Field{{Name: "title", Type: schema.FieldText}}}
	snap := schema.NewSnapshot(1, []*schema.Collection{posts})
	recs := &records.Service{Schema: func() *schema.Snapshot { return snap }}
	return New(recs, nil, recs.Schema, slog.Default(), Options{})
}

func TestParseSubscriptions(t *testing.T) {
	b := testBroker()
	for _, c := range []struct {
		name, raw string
		ok        bool
	}{
		{"collection", `["posts"]`, true},
		{"record", `["posts/abc123"]`, true},
		{"with options", `[{"topic":"posts","filter":"title ~ 'x'","fields":"id,title"}]`, true},
		{"unknown collection", `["nope"]`, false},
		{"bad record id", `["posts/../x"]`, false},
		{"bad filter", `[{"topic":"posts","filter":"title ~"}]`, false},
		{"bad fields", `[{"topic":"posts","fields":"a;b"}]`, false},
		{"not a topic", `[42]`, false},
	} {
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(c.raw), &raw); err != nil {
			t.Fatal(err)
		}
		subs, err := b.ParseSubscriptions(context.Background(), raw)
		var se *SubscriptionError
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && !errors.As(err, &se):
			t.Errorf("%s: got %v, want a SubscriptionError", c.name, err)
		case c.ok && len(subs) != 1:
			t.Errorf("%s: %d subscriptions", c.name, len(subs))
		}
	}
	many := make([]json.RawMessage, 101)
	for i := range many {
		many[i] = json.RawMessage(`"posts"`)
	}
	if _, err := b.ParseSubscriptions(context.Background(), many); err == nil {
		t.Error("101 subscriptions accepted")
	}
}

// A client's queue is bounded and never blocks the writer: a full queue
// reports failure so the broker can drop the slow client.
func TestClientQueueNeverBlocks(t *testing.T) {
	b := testBroker()
	c := b.Connect(nil, "")
	n := 0
	for c.enqueue(&message{seq: uint64(n)}) {
		n++
		if n > 10000 {
			t.Fatal("queue unbounded")
		}
	}
	if n != 64 {
		t.Errorf("queue took %d messages, want the default 64", n)
	}
}
