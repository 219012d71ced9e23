package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthhq/plinth"
)

// nodes returns s and, on a shared database (PostgreSQL), a second node
// on the same database, so races are tried across nodes as well.
func nodes(t *testing.T, s *server) []*server {
	if s.dbURL == "" {
		return []*server{s}
	}
	return []*server{s, startServerWith(t, t.TempDir(), s.dbURL, noRateLimits)}
}

// race sends the same request n times at once, spread over the nodes, and
// returns how many answers had each status.
func race(t *testing.T, ns []*server, n int, path string, body map[string]any) map[int]int {
	t.Helper()
	var (
		mu    sync.Mutex
		count = map[int]int{}
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(node *server) {
			defer wg.Done()
			<-start
			code, _, err := node.try("POST", path, "", body)
			if err != nil {
				code = -1
			}
			mu.Lock()
			count[code]++
			mu.Unlock()
		}(ns[i%len(ns)])
	}
	close(start)
	wg.Wait()
	return count
}

// mfaServer sets up an auth collection with OTP and MFA and SMTP.
func mfaServer(t *testing.T, s *server, mfa bool) *smtpSink {
	sink, addr := startSMTP(t)
	host, port, _ := net.SplitHostPort(addr)
	s.do("PATCH", "/api/settings", s.su, map[string]any{"smtp": map[string]any{"host": host, "port": atoi(port), "tls": "none"}}).status(200)
	s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "listRule": "",
		"authOptions": map[string]any{"otp": map[string]any{"enabled": true}, "mfa": map[string]any{"enabled": mfa}}})
	s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "ana@example.com", "password": "password123"}).status(200)
	return sink
}

// An MFA login is completed exactly once, however many requests race to
// complete it, on one node or several.
func TestMFACompletedOnce(t *testing.T) {
	forEachEngineWith(t, noRateLimits, func(t *testing.T, s *server) {
		sink := mfaServer(t, s, true)
		base := "/api/collections/users/"
		otp := s.do("POST", base+"request-otp", "", map[string]any{"email": "ana@example.com"}).status(200).str("otpId")
		code := sink.match(t, "ana@example.com", codeRe)
		mfa := s.do("POST", base+"auth-with-otp", "", map[string]any{"otpId": otp, "password": code}).status(401).str("mfaId")
		if mfa == "" {
			t.Fatal("no mfaId")
		}
		got := race(t, nodes(t, s), 12, base+"auth-with-password", map[string]any{"identity": "ana@example.com", "password": "password123", "mfaId": mfa})
		if got[200] != 1 || got[400] != 11 {
			t.Fatalf("12 concurrent completions of one mfaId: %v, want exactly one 200 and eleven 400", got)
		}
	})
}

// A one-time password logs in exactly once under concurrent use.
func TestOTPConsumedOnce(t *testing.T) {
	forEachEngineWith(t, noRateLimits, func(t *testing.T, s *server) {
		sink := mfaServer(t, s, false)
		base := "/api/collections/users/"
		otp := s.do("POST", base+"request-otp", "", map[string]any{"email": "ana@example.com"}).status(200).str("otpId")
		code := sink.match(t, "ana@example.com", codeRe)
		got := race(t, nodes(t, s), 12, base+"auth-with-otp", map[string]any{"otpId": otp, "password": code})
		if got[200] != 1 || got[400] != 11 {
			t.Fatalf("12 concurrent uses of one code: %v, want exactly one 200 and eleven 400", got)
		}
	})
}

// A record created by a first OAuth2 login passes the same checks as a
// sign-up through POST /records: the create rule (seeing createData as
// @request.body), field validation, and the server-managed auth fields.
func TestOAuth2SignUpChecksLikeREST(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		p := newOIDCProvider(t)
		s.collection(map[string]any{"name": "members", "type": "auth", "viewRule": "id = @request.auth.id",
			"createRule": `@request.body.role:isset = false || @request.body.role = "member"`,
			"fields": []any{
				map[string]any{"name": "role", "type": "select", "values": []string{"member", "admin"}},
				map[string]any{"name": "bio", "type": "text", "max": 10},
			},
			"authOptions": p.authOptions()})
		cases := []struct {
			name string
			data map[string]any
			want int
		}{
			{"plain", map[string]any{"bio": "hi"}, 200},
			{"allowed role", map[string]any{"role": "member"}, 200},
			{"privileged role refused by the rule", map[string]any{"role": "admin"}, 403},
			{"invalid value", map[string]any{"bio": "far too long for ten"}, 400},
			{"verified is server-managed", map[string]any{"verified": true}, 400},
			{"token key is server-managed", map[string]any{"tokenKey": "chosen-key"}, 400},
			{"unknown field", map[string]any{"isAdmin": true}, 400},
		}
		for i, c := range cases {
			restBody := map[string]any{"email": fmt.Sprintf("rest%d@example.com", i), "password": "password123", "passwordConfirm": "password123"}
			for k, v := range c.data {
				restBody[k] = v
			}
			rest := s.do("POST", "/api/collections/members/records", "", restBody)
			oauth := p.login(t, s, "members", map[string]any{"sub": fmt.Sprintf("ext-%d", i), "email": fmt.Sprintf("oauth%d@example.com", i), "email_verified": false},
				func(b map[string]any) { b["createData"] = c.data })
			if rest.code != c.want || oauth.code != c.want {
				t.Errorf("%s: REST sign-up %d, OAuth2 sign-up %d, want %d both (%s)", c.name, rest.code, oauth.code, c.want, oauth.raw)
			}
			if c.want == 200 {
				rec := oauth.body["record"].(map[string]any)
				if rec["verified"] != false {
					t.Errorf("%s: an unverified provider email made a verified record", c.name)
				}
				for k, v := range c.data {
					if rec[k] != v {
						t.Errorf("%s: %s = %v, want %v", c.name, k, rec[k], v)
					}
				}
			} else if d, _ := oauth.body["data"].(map[string]any); c.want == 400 && len(d) == 0 {
				t.Errorf("%s: a 400 without field errors: %s", c.name, oauth.raw)
			}
		}
		// Nothing was created by the refused attempts.
		total := s.do("GET", "/api/collections/members/records", s.su, nil).status(200).body["totalItems"]
		if total != 4.0 {
			t.Errorf("members after the table: %v, want 4 (two REST, two OAuth2)", total)
		}
	})
}

// Pre-hijacking: an attacker signs up with the victim's address and a
// password of their own; when the victim arrives through a provider that
// vouches for the address, the record becomes the victim's alone.
func TestOAuth2TakesOverUnverifiedRecord(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		p := newOIDCProvider(t)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "viewRule": "id = @request.auth.id",
			"authOptions": p.authOptions()})
		base := "/api/collections/users/"
		id := s.do("POST", base+"records", "", map[string]any{"email": "victim@example.com", "password": "attacker-pass-1", "passwordConfirm": "attacker-pass-1"}).status(200).str("id")
		attacker := s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "victim@example.com", "password": "attacker-pass-1"}).status(200).str("token")
		s.do("GET", base+"records/"+id, attacker, nil).status(200)

		victim := p.login(t, s, "users", map[string]any{"sub": "ext-victim", "email": "victim@example.com", "email_verified": true}, nil).status(200)
		rec := victim.body["record"].(map[string]any)
		if rec["id"] != id || rec["verified"] != true {
			t.Fatalf("victim's login: %s", victim.raw)
		}
		s.do("GET", base+"records/"+id, attacker, nil).status(401) // the attacker's session is gone
		s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "victim@example.com", "password": "attacker-pass-1"}).status(400)
		s.do("GET", base+"records/"+id, victim.str("token"), nil).status(200)

		// A verified record is simply linked: its password keeps working.
		bobID, _ := s.user("users", "bob@example.com", nil)
		s.do("PATCH", base+"records/"+bobID, s.su, map[string]any{"verified": true}).status(200)
		p.login(t, s, "users", map[string]any{"sub": "ext-bob", "email": "bob@example.com", "email_verified": true}, nil).status(200)
		s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "bob@example.com", "password": "password123"}).status(200)
	})
}

// The per-account limit holds for every spelling of the account that
// reaches it: white space, case and Unicode compatibility forms share
// the account's bucket, and the right password does not get through it.
func TestAccountRateLimitKeyedOnNormalisedIdentity(t *testing.T) {
	strict := func(c *plinth.Config) { c.AuthRatePerIP, c.AuthRatePerAccount = -1, 3 }
	forEachEngineWith(t, strict, func(t *testing.T, s *server) {
		_, addr := startSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"smtp": map[string]any{"host": host, "port": atoi(port), "tls": "none"}}).status(200)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "bob@example.com", "password": "right-password"}).status(200)
		variants := []string{"bob@example.com", " bob@example.com", "bob@example.com\t", "BOB@Example.COM", "\u00a0bob@example.com\n",
			"\uff42\uff4f\uff42@example.com" /* fullwidth b, o, b */, "bob\uff20example.com" /* fullwidth @ */}
		base := "/api/collections/users/"
		for i := 0; i < 3; i++ {
			s.do("POST", base+"auth-with-password", "", map[string]any{"identity": variants[i], "password": "wrong-password"}).status(400)
		}
		for _, v := range variants {
			r := s.do("POST", base+"auth-with-password", "", map[string]any{"identity": v, "password": "right-password"})
			if r.code != 429 || r.hdr.Get("Retry-After") == "" {
				t.Errorf("password login as %q after the limit: %d %s", v, r.code, r.raw)
			}
		}
		// The email flows share the same canonical key.
		for i, v := range variants {
			want := 204
			if i >= 3 {
				want = 429
			}
			if r := s.do("POST", base+"request-password-reset", "", map[string]any{"email": v}); r.code != want {
				t.Errorf("reset request %d for %q: %d, want %d", i, v, r.code, want)
			}
		}
	})
}

// Realtime decisions cached per identity must also be keyed on what the
// rule reads of the request: two anonymous clients that differ only in a
// header (or a query parameter) get what REST would give each of them.
func TestRealtimeRuleReadsRequest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		text := []any{map[string]any{"name": "text", "type": "text"}}
		s.collection(map[string]any{"name": "byheader", "listRule": `@request.headers.x_token = "abc"`, "createRule": "", "fields": text})
		s.collection(map[string]any{"name": "byquery", "listRule": `@request.query.key = "k1"`, "createRule": "", "fields": text})
		s.collection(map[string]any{"name": "open", "listRule": "", "createRule": "", "fields": text})
		sub := func(c *sseClient, path string, hdr map[string]string) {
			t.Helper()
			body, _ := json.Marshal(map[string]any{"clientId": c.id, "subscriptions": []string{"byheader", "byquery", "open"}})
			req, _ := http.NewRequest("POST", s.url+path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 204 {
				t.Fatalf("subscribe: %d", resp.StatusCode)
			}
		}
		// The admitted client also connects with the header and query, as a
		// non-browser client can: its decisions must not leak to the other.
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/realtime?key=k1", nil)
		req.Header.Set("X-Token", "abc")
		with, without := s.sseReq(req, cancel), s.sse("/api/realtime")
		sub(with, "/api/realtime?key=k1", map[string]string{"X-Token": "abc"})
		sub(without, "/api/realtime?key=other", map[string]string{"X-Token": "wrong"})
		for _, coll := range []string{"byheader", "byquery", "open"} {
			text := coll
			if coll == "open" {
				text = "sentinel"
			}
			s.do("POST", "/api/collections/"+coll+"/records", "", map[string]any{"text": text}).status(200)
		}
		if got := with.until("sentinel"); strings.Join(got, ",") != "create:byheader,create:byquery" {
			t.Errorf("client the rules admit got %v", got)
		}
		if got := without.until("sentinel"); len(got) != 0 {
			t.Errorf("client the rules refuse got %v", got)
		}
		// REST gives each of them the same answer.
		for _, c := range []struct {
			path string
			hdr  string
			want float64
		}{{"/api/collections/byheader/records", "abc", 1}, {"/api/collections/byheader/records", "wrong", 0},
			{"/api/collections/byquery/records?key=k1", "", 1}, {"/api/collections/byquery/records?key=other", "", 0}} {
			req, _ := http.NewRequest("GET", s.url+c.path, nil)
			req.Header.Set("X-Token", c.hdr)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if out["totalItems"] != c.want {
				t.Errorf("REST %s with X-Token %q: %v items, want %v", c.path, c.hdr, out["totalItems"], c.want)
			}
		}
	})
}

// fastMailRetries makes the mail queue retry within milliseconds.
func fastMailRetries(c *plinth.Config) {
	noRateLimits(c)
	c.MailRetryBase = 20 * time.Millisecond
	c.MailMaxAttempts = 1000 // failures in these tests are on purpose: never give up
}

// Email flow requests answer the same for known and unknown addresses,
// whatever the SMTP server does: mail goes out from a durable queue, and
// a message that failed is delivered once the server recovers.
func TestMailFlowsAnswerAlikeAndRetry(t *testing.T) {
	forEachEngineWith(t, fastMailRetries, func(t *testing.T, s *server) {
		sink := mfaServer(t, s, false) // users with OTP, SMTP pointing at sink
		sink.failing.Store(true)
		base := "/api/collections/users/"
		for _, c := range []struct{ path, key string }{
			{"request-password-reset", "email"}, {"request-verification", "email"}, {"request-otp", "email"},
		} {
			known := s.do("POST", base+c.path, "", map[string]any{c.key: "ana@example.com"})
			unknown := s.do("POST", base+c.path, "", map[string]any{c.key: "nobody@example.com"})
			if known.code != unknown.code || known.code >= 300 && known.code != 204 {
				t.Errorf("%s: known %d %s, unknown %d %s", c.path, known.code, known.raw, unknown.code, unknown.raw)
			}
			if c.path != "request-otp" && string(known.raw) != string(unknown.raw) {
				t.Errorf("%s: bodies differ: %s vs %s", c.path, known.raw, unknown.raw)
			}
			if c.path == "request-otp" && (known.str("otpId") == "" || unknown.str("otpId") == "") {
				t.Errorf("request-otp: an otpId for both: %s / %s", known.raw, unknown.raw)
			}
		}
		// The server recovers: every queued message arrives, retried, and
		// only for the known address (verification: ana is unverified).
		sink.failing.Store(false)
		got := map[string]bool{}
		for i := 0; i < 3; i++ {
			select {
			case m := <-sink.got:
				if m.to != "ana@example.com" {
					t.Errorf("mail to %s", m.to)
				}
				switch {
				case strings.Contains(m.text, "confirm-password-reset"):
					got["reset"] = true
				case strings.Contains(m.text, "confirm-verification"):
					got["verification"] = true
				case codeRe.MatchString(m.text):
					got["otp"] = true
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("queued mail not delivered after the server recovered; got %v", got)
			}
		}
		if len(got) != 3 {
			t.Errorf("delivered kinds %v, want reset, verification and otp", got)
		}
		select {
		case m := <-sink.got:
			t.Errorf("unexpected extra mail to %s", m.to)
		case <-time.After(300 * time.Millisecond):
		}
	})
}

// A queued message survives a restart: the node that accepted the request
// stops before it could deliver, and the next start delivers it.
func TestMailQueueSurvivesRestart(t *testing.T) {
	forEachEngineWith(t, fastMailRetries, func(t *testing.T, s *server) {
		dead, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deadHost, deadPort, _ := net.SplitHostPort(dead.Addr().String())
		dead.Close() // nothing listens there: every delivery fails
		s.do("PATCH", "/api/settings", s.su, map[string]any{"smtp": map[string]any{"host": deadHost, "port": atoi(deadPort), "tls": "none"}}).status(200)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
		s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "ana@example.com", "password": "password123"}).status(200)
		s.do("POST", "/api/collections/users/request-password-reset", "", map[string]any{"email": "ana@example.com"}).status(204)
		s.app.Close()

		sink, addr := startSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		n := startServerWith(t, s.dataDir, s.dbURL, fastMailRetries)
		su := n.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": suEmail, "password": suPassword}).status(200).str("token")
		n.do("PATCH", "/api/settings", su, map[string]any{"smtp": map[string]any{"host": host, "port": atoi(port), "tls": "none"}}).status(200)
		if tok := sink.next(t, "ana@example.com"); tok == "" {
			t.Fatal("no reset token in the delivered mail")
		}
	})
}

// heapPeak samples the heap in use until stop is called and returns the
// growth over the starting point at its peak.
func heapPeak() (stop func() int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapInuse)
	var peak atomic.Int64
	peak.Store(base)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if v := int64(m.HeapInuse); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	return func() int64 {
		close(done)
		<-exited
		return peak.Load() - base
	}
}

// A small file that declares a huge canvas cannot make thumbnail requests
// exhaust memory: decodes share a budget and the same thumbnail is made
// once, however many ask for it at once.
func TestThumbnailMemoryBounded(t *testing.T) {
	const budget = 128 << 20
	s := startServerWith(t, t.TempDir(), "", func(c *plinth.Config) { c.ThumbMemory = budget })
	s.loginSuperuser()
	s.collection(map[string]any{"name": "pics", "createRule": "", "viewRule": "", "fields": []any{
		map[string]any{"name": "img", "type": "file", "maxSize": 5 << 20, "thumbs": []string{"100x100", "50x0"}}}})
	// 6300×6300 pixels in a few hundred KB: 40 MB to decode as grey, plus
	// the scaler's working memory.
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 6300, 6300))); err != nil {
		t.Fatal(err)
	}
	rec := s.multipartReq("POST", "/api/collections/pics/records", "", nil, part{"img", "big.png", b.Bytes()}).status(200)
	name := rec.body["img"].(string)
	b = bytes.Buffer{}
	url := s.url + "/api/files/pics/" + rec.str("id") + "/" + name + "?thumb="

	stop := heapPeak()
	var wg sync.WaitGroup
	codes := make(chan string, 32)
	for i := 0; i < 32; i++ {
		spec := []string{"100x100", "50x0"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(url + spec)
			if err != nil {
				codes <- err.Error()
				return
			}
			img, _, err := image.DecodeConfig(resp.Body)
			resp.Body.Close()
			codes <- fmt.Sprintf("%d %s %v %dx%d", resp.StatusCode, spec, err, img.Width, img.Height)
		}()
	}
	wg.Wait()
	growth := stop()
	close(codes)
	for c := range codes {
		if c != "200 100x100 <nil> 100x100" && c != "200 50x0 <nil> 50x50" {
			t.Errorf("thumb request: %s", c)
		}
	}
	t.Logf("32 concurrent thumbnail requests of a 6300x6300 PNG: heap in use grew by %.1f MiB at peak", float64(growth)/(1<<20))
	if growth > budget+64<<20 {
		t.Errorf("heap grew by %d MiB, over the %d MiB thumbnail budget plus 64 MiB", growth>>20, budget>>20)
	}
}

// A Range header with more than 16 parts is answered with the whole file;
// a few parts still get a multipart 206.
func TestRangePartsCapped(t *testing.T) {
	s := startServerWith(t, t.TempDir(), "", nil)
	s.loginSuperuser()
	s.collection(map[string]any{"name": "blobs", "createRule": "", "viewRule": "", "fields": []any{
		map[string]any{"name": "data", "type": "file", "maxSize": 1 << 20}}})
	content := bytes.Repeat([]byte("0123456789"), 1000)
	rec := s.multipartReq("POST", "/api/collections/blobs/records", "", nil, part{"data", "d.txt", content}).status(200)
	path := "/api/files/blobs/" + rec.str("id") + "/" + rec.body["data"].(string)
	ranges := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("%d-%d", i*10, i*10+1)
		}
		return "bytes=" + strings.Join(parts, ",")
	}
	for _, c := range []struct {
		parts, status int
	}{{1, 206}, {2, 206}, {16, 206}, {17, 200}, {500, 200}} {
		r := s.raw("GET", path, "", "", nil, map[string]string{"Range": ranges(c.parts)})
		if r.code != c.status {
			t.Errorf("%d ranges: status %d, want %d", c.parts, r.code, c.status)
		}
		if c.status == 200 && !bytes.Equal(r.raw, content) {
			t.Errorf("%d ranges: not the whole file (%d bytes)", c.parts, len(r.raw))
		}
		if c.parts > 1 && c.status == 206 && !strings.HasPrefix(r.hdr.Get("Content-Type"), "multipart/byteranges") {
			t.Errorf("%d ranges: %s", c.parts, r.hdr.Get("Content-Type"))
		}
	}
}

// A view cannot publish the secrets of auth collections or Plinth's own
// tables, however the query spells them.
func TestViewsCannotPublishSecrets(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "fields": []any{map[string]any{"name": "name", "type": "text"}}})
		s.user("users", "ana@example.com", map[string]any{"name": "Ana"})
		refused := []string{
			`SELECT id, password FROM users`,
			`SELECT id, tokenKey AS k FROM users`,
			`SELECT u.id, u."tokenKey" FROM users u`,
			`SELECT id, "PassWord" FROM "users"`,
			`SELECT * FROM users`,
			`SELECT u.* FROM users u`,
			`SELECT id, email, password AS p FROM _superusers`,
			`SELECT id, definition FROM _collections`,
			`SELECT key AS id, value FROM _meta`,
			`SELECT id, hash FROM _otps`,
			`SELECT id, payload FROM "_mailQueue"`,
			`SELECT p.id, (SELECT password FROM users WHERE id = p.id) AS x FROM users p`,
		}
		for i, q := range refused {
			r := s.do("POST", "/api/collections", s.su, map[string]any{"name": fmt.Sprintf("leak%d", i), "type": "view", "listRule": "", "viewQuery": q})
			if r.code != 400 || r.fieldErr("viewQuery") == "" {
				t.Errorf("view %q: %d %s", q, r.code, r.raw)
			}
		}
		// Listing columns of an auth collection is fine, and so are literals
		// that merely contain a secret column's name.
		s.collection(map[string]any{"name": "people", "type": "view", "listRule": "", "viewQuery": `SELECT id, name, email, 'password' AS label FROM users`})
		r := s.do("GET", "/api/collections/people/records", "", nil).status(200)
		if items := r.items(); len(items) != 1 || items[0]["name"] != "Ana" {
			t.Errorf("people: %s", r.raw)
		}
		// Updating a view to read a secret is refused too.
		s.do("PATCH", "/api/collections/people", s.su, map[string]any{"viewQuery": `SELECT id, tokenKey FROM users`}).status(400)
		if strings.Contains(string(s.do("GET", "/api/collections/people/records", "", nil).status(200).raw), "$argon2") {
			t.Error("a password hash was published")
		}
	})
}

// NUL characters (and invalid UTF-8) are client mistakes on every engine:
// a 400 naming the field, never a 500 from the database.
func TestNULBytesRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		_, addr := startSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"smtp": map[string]any{"host": host, "port": atoi(port), "tls": "none"}}).status(200)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "listRule": "", "authOptions": map[string]any{"otp": map[string]any{"enabled": true}}})
		s.collection(map[string]any{"name": "notes", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "fields": []any{
			map[string]any{"name": "title", "type": "text"}, map[string]any{"name": "meta", "type": "json"}, map[string]any{"name": "tags", "type": "select", "values": []string{"a"}, "maxSelect": 2}}})
		id := s.do("POST", "/api/collections/notes/records", "", map[string]any{"title": "ok"}).status(200).str("id")
		for _, c := range []struct {
			name, method, path string
			body               map[string]any
			field              string
		}{
			{"text field", "POST", "/api/collections/notes/records", map[string]any{"title": "a\x00b"}, "title"},
			{"json field", "POST", "/api/collections/notes/records", map[string]any{"meta": map[string]any{"k": "a\x00"}}, "meta"},
			{"json key", "POST", "/api/collections/notes/records", map[string]any{"meta": map[string]any{"k\x00": 1}}, "meta"},
			{"update", "PATCH", "/api/collections/notes/records/" + id, map[string]any{"title": "\x00"}, "title"},
			{"login identity", "POST", "/api/collections/users/auth-with-password", map[string]any{"identity": "a\x00@example.com", "password": "password123"}, "identity"},
			{"login password", "POST", "/api/collections/users/auth-with-password", map[string]any{"identity": "a@example.com", "password": "pass\x00word123"}, "password"},
			{"reset email", "POST", "/api/collections/users/request-password-reset", map[string]any{"email": "a\x00@example.com"}, "email"},
			{"otp email", "POST", "/api/collections/users/request-otp", map[string]any{"email": "a\x00@example.com"}, "email"},
			{"otp id", "POST", "/api/collections/users/auth-with-otp", map[string]any{"otpId": "x\x00", "password": "123456"}, "otpId"},
		} {
			r := s.do(c.method, c.path, "", c.body)
			if r.code != 400 || r.fieldErr(c.field) == "" {
				t.Errorf("%s: %d %s, want 400 with a %s error", c.name, r.code, r.raw, c.field)
			}
		}
		for _, f := range []string{`title = "a` + "\x00" + `b"`, "title = \"\xff\""} {
			if r := s.do("GET", "/api/collections/notes/records?filter="+q(f), "", nil); r.code != 400 {
				t.Errorf("filter %q: %d %s", f, r.code, r.raw)
			}
		}
		if r := s.multipartReq("POST", "/api/collections/notes/records", "", nil, part{field: "title", data: []byte("a\x00b")}); r.code != 400 || r.fieldErr("title") == "" {
			t.Errorf("multipart text value: %d %s", r.code, r.raw)
		}
		if r := s.multipartReq("POST", "/api/collections/notes/records", "", nil, part{field: "title", data: []byte("bad \xff utf8")}); r.code != 400 || r.fieldErr("title") == "" {
			t.Errorf("multipart invalid UTF-8: %d %s", r.code, r.raw)
		}
	})
}

// errorLog records the messages logged at ERROR, to prove client mistakes
// are not logged as server failures.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.mu.Lock()
		l.msgs = append(l.msgs, r.Message)
		l.mu.Unlock()
	}
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }
func (l *errorLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// sendCut writes head (a request with a Content-Length promising more
// than it sends), half-closes the connection and returns the status line.
func sendCut(t *testing.T, serverURL, head string, body []byte) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(serverURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte(head))
	conn.Write(body)
	conn.(*net.TCPConn).CloseWrite()
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// A client that sends less body than it announced is answered 400 (the
// client's mistake) and nothing is logged at ERROR.
func TestAbortedBodyIsNotAServerError(t *testing.T) {
	logs := &errorLog{}
	s := startServerWith(t, t.TempDir(), "", func(c *plinth.Config) { c.Logger = slog.New(logs) })
	s.loginSuperuser()
	s.collection(map[string]any{"name": "notes", "createRule": "", "fields": []any{
		map[string]any{"name": "title", "type": "text"}, map[string]any{"name": "doc", "type": "file", "maxSize": 1 << 20}}})
	host := strings.TrimPrefix(s.url, "http://")
	body := []byte(`{"title": "` + strings.Repeat("x", 80) + `"`)
	status := sendCut(t, s.url, "POST /api/collections/notes/records HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", body)
	if !strings.Contains(status, " 400 ") {
		t.Errorf("JSON body cut short: %q, want 400", status)
	}
	mp := "--XYZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("y", 2000)
	status = sendCut(t, s.url, "POST /api/collections/notes/records HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 100000\r\n\r\n", []byte(mp))
	if !strings.Contains(status, " 400 ") {
		t.Errorf("multipart body cut short: %q, want 400", status)
	}
	if errs := logs.errors(); len(errs) > 0 {
		t.Errorf("client mistakes logged at ERROR: %q", errs)
	}
}

// A request body trickled byte by byte is cut off once its grace period
// is spent, while a large upload at local speed goes through.
func TestSlowBodyCutOff(t *testing.T) {
	s := startServerWith(t, t.TempDir(), "", func(c *plinth.Config) {
		c.BodyGrace, c.MinBodyRate = 300*time.Millisecond, 1000
	})
	s.loginSuperuser()
	s.collection(map[string]any{"name": "notes", "createRule": "", "fields": []any{
		map[string]any{"name": "title", "type": "text"}, map[string]any{"name": "doc", "type": "file", "maxSize": 16 << 20}}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/collections/notes/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
	answered := make(chan string, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		answered <- strings.TrimSpace(line)
	}()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var status string
trickle:
	for i := 0; i < 200; i++ {
		select {
		case status = <-answered:
			break trickle
		case <-ticker.C:
			if _, err := conn.Write([]byte(" ")); err != nil {
				status = <-answered
				break trickle
			}
		}
	}
	if !strings.Contains(status, " 408 ") {
		t.Errorf("trickled body: got %q, want a 408 before the body was complete", status)
	}
	big := bytes.Repeat([]byte("plinth "), 8<<20/7)
	s.multipartReq("POST", "/api/collections/notes/records", "", nil, part{"doc", "big.txt", big}).status(200)
}

// One address cannot hold more than its share of requests in flight,
// realtime streams included; other addresses are unaffected.
func TestRequestsPerIPCapped(t *testing.T) {
	s := startServerWith(t, t.TempDir(), "", func(c *plinth.Config) {
		c.MaxRequestsPerIP = 3
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})
	s.loginSuperuser()
	for i := 0; i < 3; i++ {
		s.sse("/api/realtime") // held open until the test ends
	}
	r := s.do("GET", "/api/health", "", nil)
	if r.code != 429 || r.hdr.Get("Retry-After") == "" {
		t.Errorf("fourth request from one address: %d %s, want 429", r.code, r.raw)
	}
	other := s.raw("GET", "/api/health", "", "", nil, map[string]string{"X-Forwarded-For": "203.0.113.9"})
	if other.code != 200 {
		t.Errorf("request from another address: %d", other.code)
	}
}

// What a crash leaves in storage (uploads of requests that never
// committed, temporaries of unfinished uploads, files of records gone) is
// swept; files and thumbnails of committed records are never touched, and
// nothing younger than the grace period is.
func TestOrphanFilesSwept(t *testing.T) {
	forEachStorageWith(t, func(t *testing.T, s *server, st testStorage) {
		s.collection(map[string]any{"name": "pics", "createRule": "", "viewRule": "", "fields": []any{
			map[string]any{"name": "img", "type": "file", "maxSize": 1 << 20, "thumbs": []string{"10x10"}},
			map[string]any{"name": "docs", "type": "file", "maxSelect": 3, "maxSize": 1 << 20}}})
		cid := s.do("GET", "/api/collections/pics", s.su, nil).status(200).str("id")
		rec := s.multipartReq("POST", "/api/collections/pics/records", "", nil,
			part{"img", "a.png", pngBytes(t, 20, 20)}, part{"docs", "d1.txt", []byte("one")}, part{"docs", "d2.txt", []byte("two")}).status(200)
		id, img := rec.str("id"), rec.body["img"].(string)
		s.raw("GET", "/api/files/pics/"+id+"/"+img+"?thumb=10x10", "", "", nil, nil)
		keep := st.list()
		if len(keep) != 4 { // image, its thumbnail, two documents
			t.Fatalf("stored before the crash: %v", keep)
		}
		orphans := []string{
			cid + "/" + id + "/uncommitted_abcdefghij.txt",                // an update that never committed
			cid + "/" + id + "/thumbs_gone_abcdefghij.png/10x10_gone.png", // thumbnail of a file no longer held
			cid + "/norecord1234567/lost_abcdefghij.png",                  // a create that never committed
			cid + "/" + id + "/.upload-123456",                            // a temporary of an unfinished upload
		}
		for _, k := range orphans {
			st.put(k, []byte("orphan"))
		}
		if n, err := s.app.SweepOrphanFiles(t.Context(), time.Hour); err != nil || n != 0 {
			t.Errorf("sweep with a one-hour grace removed %d (%v), want 0: every file is new", n, err)
		}
		n, err := s.app.SweepOrphanFiles(t.Context(), 0)
		if err != nil || n != len(orphans) {
			t.Errorf("sweep removed %d (%v), want %d", n, err, len(orphans))
		}
		got := st.list()
		slices.Sort(got)
		slices.Sort(keep)
		if !slices.Equal(got, keep) {
			t.Errorf("after the sweep: %v, want exactly the committed files %v", got, keep)
		}
		for _, name := range append([]string{img}, stringList(rec.body["docs"])...) {
			s.raw("GET", "/api/files/pics/"+id+"/"+name, "", "", nil, nil).status(200)
		}
	})
}

func stringList(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
