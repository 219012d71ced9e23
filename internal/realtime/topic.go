package realtime

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/plinthhq/plinth/internal/records"
)

// maxTopicLen bounds one topic string, options included.
const maxTopicLen = 8 << 10

// topicParts is a topic string taken apart. Besides Plinth's own "posts"
// and "posts/ID", it accepts PocketBase's forms: "posts/*" for the whole
// collection, and a "?options=" suffix carrying JSON
// {"query": {...}, "headers": {...}} (what the SDKs send for a
// subscription's expand, filter, fields and custom request values). The
// event name stays the topic string exactly as subscribed, which is what
// the SDKs listen for.
type topicParts struct {
	collection, recordID string
	query                url.Values
	headers              http.Header
}

// topicOptions is the JSON in a topic's "options" query parameter.
type topicOptions struct {
	Query   map[string]any `json:"query"`
	Headers map[string]any `json:"headers"`
}

func parseTopic(topic string) (*topicParts, error) {
	if len(topic) > maxTopicLen {
		return nil, errTopic(topic[:32]+"…", "topic too long")
	}
	path, rawQuery, hasQuery := strings.Cut(topic, "?")
	name, id, _ := strings.Cut(path, "/")
	if id == "*" {
		id = ""
	}
	p := &topicParts{collection: name, recordID: id}
	if !hasQuery {
		return p, nil
	}
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errTopic(topic, "invalid topic query")
	}
	raw := vals.Get("options")
	if raw == "" {
		return p, nil
	}
	var o topicOptions
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return nil, errTopic(topic, `options must be JSON {"query": {...}, "headers": {...}}`)
	}
	if len(o.Query) > 0 {
		p.query = url.Values{}
		for k, v := range o.Query {
			if s, ok := optionText(v); ok {
				p.query.Set(k, s)
			}
		}
	}
	if len(o.Headers) > 0 {
		p.headers = http.Header{}
		for k, v := range o.Headers {
			// Who the client is comes from the subscribe request's own
			// Authorization, never from options inside a topic.
			// Rules name headers as x_token for X-Token, so either spelling
			// works here.
			name := strings.ReplaceAll(k, "_", "-")
			if s, ok := optionText(v); ok && !strings.EqualFold(name, "Authorization") {
				p.headers.Set(name, s)
			}
		}
	}
	return p, nil
}

// optionText is an option value as request text (SDKs send numbers and
// booleans as JSON values); nulls are dropped.
func optionText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case float64, bool:
		return fmt.Sprint(x), true
	default:
		j, err := json.Marshal(x)
		return string(j), err == nil
	}
}

// applyOptions takes the subscription's filter, expand and fields from
// the topic's options query when the subscription does not set them,
// and keeps the other query values and headers for rules to read.
func (s *Subscription) applyOptions(p *topicParts) {
	if p.query != nil {
		for key, dst := range map[string]*string{"filter": &s.Filter, "expand": &s.Expand, "fields": &s.Fields} {
			if *dst == "" {
				*dst = p.query.Get(key)
			}
		}
	}
	s.query, s.headers = p.query, p.headers
}

// callerFor is the caller as this subscription's rules see it: the
// subscribe request, with the topic options' query values and headers
// (if any) in place of the request's own of the same name.
func (s *Subscription) callerFor(c *records.Caller) *records.Caller {
	if (s.query == nil && s.headers == nil) || c == nil {
		return c
	}
	cp := *c
	if s.query != nil {
		cp.Query = url.Values{}
		for k, v := range c.Query {
			cp.Query[k] = v
		}
		for k, v := range s.query {
			cp.Query[k] = v
		}
	}
	if s.headers != nil {
		cp.Headers = c.Headers.Clone()
		if cp.Headers == nil {
			cp.Headers = http.Header{}
		}
		for k, v := range s.headers {
			cp.Headers[k] = v
		}
	}
	return &cp
}
