package tests

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// pollUntil checks cond until it holds, failing the test after a bounded
// wait.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A message retried after the mail server was down longer than its
// token's lifetime still carries a code and a link that work: the tokens
// are made for the attempt that delivers them, not for the first try.
func TestMailRetryDeliversWorkingTokens(t *testing.T) {
	forEachEngineWith(t, fastMailRetries, func(t *testing.T, s *server) {
		sink, addr := startSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		smtpSettings := map[string]any{"smtp": map[string]any{"host": host, "port": atoi(port), "tls": "none"}}
		s.do("PATCH", "/api/settings", s.su, smtpSettings).status(200)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "",
			"authOptions": map[string]any{"otp": map[string]any{"enabled": true, "duration": 1}, "passwordResetTokenDuration": 1}})
		s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "ana@example.com", "password": "password123"}).status(200)
		base := "/api/collections/users/"

		sink.failing.Store(true)
		otp := s.do("POST", base+"request-otp", "", map[string]any{"email": "ana@example.com"}).status(200).str("otpId")
		s.do("POST", base+"request-password-reset", "", map[string]any{"email": "ana@example.com"}).status(204)
		// Both messages have been tried (and refused); then the mail server
		// stays down past the one-second lifetime of what they carry.
		pollUntil(t, "two refused deliveries", func() bool { return sink.refused.Load() >= 2 })
		time.Sleep(2100 * time.Millisecond)
		sink.failing.Store(false)
		s.do("PATCH", "/api/settings", s.su, smtpSettings).status(200) // retry now

		var code, token string
		for code == "" || token == "" {
			select {
			case m := <-sink.got:
				if mm := codeRe.FindStringSubmatch(m.text); mm != nil {
					code = mm[1]
				} else if mm := tokenRe.FindStringSubmatch(m.text); mm != nil {
					token = strings.ReplaceAll(mm[1], "%3D", "=")
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("mail not delivered after the server recovered (code %q, token %q)", code, token)
			}
		}
		s.do("POST", base+"auth-with-otp", "", map[string]any{"otpId": otp, "password": code}).status(200)
		s.do("POST", base+"confirm-password-reset", "", map[string]any{"token": token, "password": "brand-new-pass", "passwordConfirm": "brand-new-pass"}).status(204)
	})
}

// Nodes sharing a database share the queue: each queued message is
// delivered once, by one node, even when every node kept retrying it
// while the mail server was down.
func TestMailQueueDeliversOnceAcrossNodes(t *testing.T) {
	forEachEngineWith(t, fastMailRetries, func(t *testing.T, s *server) {
		sink := mfaServer(t, s, false)
		ns := []*server{s}
		if s.dbURL != "" {
			ns = append(ns, startServerWith(t, t.TempDir(), s.dbURL, fastMailRetries))
		}
		const users = 8
		want := map[string]bool{}
		for i := 0; i < users; i++ {
			to := fmt.Sprintf("u%d@example.com", i)
			want[to] = true
			s.do("POST", "/api/collections/users/records", "", map[string]any{"email": to, "password": "password123"}).status(200)
		}
		sink.failing.Store(true)
		for i := 0; i < users; i++ {
			ns[i%len(ns)].do("POST", "/api/collections/users/request-password-reset", "", map[string]any{"email": fmt.Sprintf("u%d@example.com", i)}).status(204)
		}
		pollUntil(t, "every message refused at least twice", func() bool { return sink.refused.Load() >= 2*users })
		sink.failing.Store(false)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"appName": "Plinth"}).status(200) // retry now
		got := map[string]int{}
		receive := func(until func() bool) {
			for !until() {
				select {
				case m := <-sink.got:
					got[m.to]++
				case <-time.After(20 * time.Second):
					t.Fatalf("mail not delivered after the server recovered: %v", got)
				}
			}
		}
		receive(func() bool { return len(got) == users })
		// A message queued after all of them arrived: a second copy of any
		// of them, sent by another node, would be in by the time it is.
		ns[len(ns)-1].do("POST", "/api/collections/users/request-password-reset", "", map[string]any{"email": "ana@example.com"}).status(204)
		receive(func() bool { return got["ana@example.com"] > 0 })
		for to, n := range got {
			if !want[to] && to != "ana@example.com" || n != 1 {
				t.Errorf("%s received %d messages, want 1 (all: %v)", to, n, got)
			}
		}
	})
}
