package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// subscribeWith subscribes c over HTTP with extra request headers (a
// browser EventSource cannot send headers; the subscription request can).
func (s *server) subscribeWith(c *sseClient, token string, hdr map[string]string, subs ...any) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"clientId": c.id, "subscriptions": subs})
	req, _ := http.NewRequest("POST", s.url+"/api/realtime", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		s.t.Fatalf("subscribe: %d", resp.StatusCode)
	}
}

// An expanded relation is read under its own collection's view rule, and
// that rule may read the request too: two anonymous clients with the
// same subscription but different headers must not share one rendered
// event (one of them would get the other's expansion).
func TestRealtimeExpandRuleReadsRequest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "secrets", "listRule": `@request.headers.x_token = "abc"`, "viewRule": `@request.headers.x_token = "abc"`,
			"fields": []any{map[string]any{"name": "code", "type": "text"}}})
		s.collection(map[string]any{"name": "posts", "listRule": "", "viewRule": "", "createRule": "",
			"fields": []any{map[string]any{"name": "text", "type": "text"}, map[string]any{"name": "secret", "type": "relation", "collectionId": "secrets"}}})
		secret := s.do("POST", "/api/collections/secrets/records", s.su, map[string]any{"code": "s3cret"}).status(200).str("id")
		sub := map[string]any{"topic": "posts", "expand": "secret"}
		with, without := s.sse("/api/realtime"), s.sse("/api/realtime")
		s.subscribeWith(with, "", map[string]string{"X-Token": "abc"}, sub)
		s.subscribeWith(without, "", map[string]string{"X-Token": "wrong"}, sub)
		// Fan-out order between the two clients is arbitrary, so several
		// events: whichever is rendered first, a shared payload is wrong
		// for the other.
		for i := 0; i < 4; i++ {
			s.do("POST", "/api/collections/posts/records", "", map[string]any{"text": "p", "secret": secret}).status(200)
		}
		s.do("POST", "/api/collections/posts/records", "", map[string]any{"text": "END"}).status(200)
		expanded := func(c *sseClient) (n int) {
			for {
				ev := c.next()
				rec, _ := ev.data["record"].(map[string]any)
				if rec["text"] == "END" {
					return n
				}
				if ex, _ := rec["expand"].(map[string]any); ex["secret"] != nil {
					n++
				}
			}
		}
		if n := expanded(with); n != 4 {
			t.Errorf("the client the secrets rule admits got the expansion in %d of 4 events", n)
		}
		if n := expanded(without); n != 0 {
			t.Errorf("the client the secrets rule refuses got the expansion in %d of 4 events", n)
		}
		// REST agrees.
		for _, c := range []struct {
			hdr  string
			want bool
		}{{"abc", true}, {"wrong", false}} {
			req, _ := http.NewRequest("GET", s.url+"/api/collections/posts/records?expand=secret&perPage=1", nil)
			req.Header.Set("X-Token", c.hdr)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ Items []map[string]any }
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if len(out.Items) != 1 {
				t.Fatalf("REST list: %d items", len(out.Items))
			}
			ex, _ := out.Items[0]["expand"].(map[string]any) // {} when nothing is visible
			if got := ex["secret"] != nil; got != c.want {
				t.Errorf("REST expand with X-Token %q: %v, want %v", c.hdr, got, c.want)
			}
		}
	})
}

// A change to a signed-in client's own auth record re-checks its
// identity; what its rules read of the request (headers, query) must
// stay what the client sent, neither dropped nor reset.
func TestRealtimeKeepsRequestValuesAfterAuthChange(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "updateRule": "id = @request.auth.id",
			"fields": []any{map[string]any{"name": "name", "type": "text"}}})
		anaID, ana := s.user("users", "ana@example.com", nil)
		text := []any{map[string]any{"name": "text", "type": "text"}}
		s.collection(map[string]any{"name": "gated", "listRule": `@request.headers.x_token = "abc"`, "createRule": "", "fields": text})
		s.collection(map[string]any{"name": "blocked", "listRule": `@request.headers.x_block != "yes" && @request.query.mode != "off"`, "createRule": "", "fields": text})
		s.collection(map[string]any{"name": "open", "listRule": "", "createRule": "", "fields": text})
		c := s.sse("/api/realtime")
		body, _ := json.Marshal(map[string]any{"clientId": c.id, "subscriptions": []string{"gated", "blocked", "open"}})
		req, _ := http.NewRequest("POST", s.url+"/api/realtime?mode=off", bytes.NewReader(body))
		req.Header.Set("Authorization", ana)
		req.Header.Set("X-Token", "abc")
		req.Header.Set("X-Block", "yes")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("subscribe: %d", resp.StatusCode)
		}
		round := func() []string {
			for _, coll := range []string{"gated", "blocked"} {
				s.do("POST", "/api/collections/"+coll+"/records", "", map[string]any{"text": coll}).status(200)
			}
			s.do("POST", "/api/collections/open/records", "", map[string]any{"text": "END"}).status(200)
			return c.until("END")
		}
		if got := strings.Join(round(), ","); got != "create:gated" {
			t.Fatalf("before the auth record changed: %v", got)
		}
		s.do("PATCH", "/api/collections/users/records/"+anaID, ana, map[string]any{"name": "Ana"}).status(200)
		if got := strings.Join(round(), ","); got != "create:gated" {
			t.Errorf("after the auth record changed: %v, want only create:gated as before", got)
		}
	})
}

// A WebSocket client that signs in with a message keeps the headers and
// query of its upgrade request for the rules that read them.
func TestRealtimeWebSocketKeepsRequestValues(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		_, ana := s.user("users", "ana@example.com", nil)
		text := []any{map[string]any{"name": "text", "type": "text"}}
		s.collection(map[string]any{"name": "gated", "listRule": `@request.headers.x_token = "abc"`, "createRule": "", "fields": text})
		s.collection(map[string]any{"name": "blocked", "listRule": `@request.headers.x_block != "yes" && @request.query.mode != "off"`, "createRule": "", "fields": text})
		s.collection(map[string]any{"name": "open", "listRule": "", "createRule": "", "fields": text})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, strings.Replace(s.url, "http", "ws", 1)+"/api/realtime/ws?mode=off",
			&websocket.DialOptions{HTTPHeader: http.Header{"X-Token": {"abc"}, "X-Block": {"yes"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		read := func() map[string]any {
			_, data, err := conn.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.Unmarshal(data, &m)
			return m
		}
		read() // connect
		for _, tok := range []string{"", ana} {
			msg, _ := json.Marshal(map[string]any{"type": "subscribe", "token": tok, "subscriptions": []string{"gated", "blocked", "open"}})
			conn.Write(ctx, websocket.MessageText, msg)
			if m := read(); m["type"] != "subscribed" {
				t.Fatalf("subscribe: %v", m)
			}
			for _, coll := range []string{"gated", "blocked", "open"} {
				s.do("POST", "/api/collections/"+coll+"/records", "", map[string]any{"text": coll}).status(200)
			}
			var got []string
			for {
				m := read()
				d, _ := m["data"].(map[string]any)
				rec, _ := d["record"].(map[string]any)
				if rec["text"] == "open" {
					break
				}
				got = append(got, m["topic"].(string))
			}
			if strings.Join(got, ",") != "gated" {
				t.Errorf("signed in %v: events %v, want only gated", tok != "", got)
			}
		}
	})
}
