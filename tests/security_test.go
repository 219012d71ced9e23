package tests

import (
	"net"
	"sync"
	"testing"
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
