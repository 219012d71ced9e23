package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(60, 3) // one a second, burst 3
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("over burst: %v %v", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatalf("keys are independent")
	}
	if ok, _ := l.Allow("a", now.Add(1100*time.Millisecond)); !ok {
		t.Fatalf("token not refilled")
	}
	if RetryAfter(300*time.Millisecond) != "1" || RetryAfter(2500*time.Millisecond) != "3" {
		t.Errorf("RetryAfter")
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	cases := []struct{ remote, xff, want string }{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},           // untrusted peer: header ignored
		{"10.0.0.2:80", "198.51.100.7", "198.51.100.7"},          // trusted proxy
		{"10.0.0.2:80", "6.6.6.6, 198.51.100.7", "198.51.100.7"}, // rightmost untrusted hop, not the spoofable first
		{"10.0.0.2:80", "198.51.100.7, 10.0.0.9", "198.51.100.7"},
		{"127.0.0.1:80", "garbage", "127.0.0.1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientIP(r, trusted); got != c.want {
			t.Errorf("%s %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
