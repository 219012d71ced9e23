package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBlockedAddresses(t *testing.T) {
	for _, c := range []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true}, {"10.1.2.3", true}, {"172.16.0.1", true}, {"172.31.255.255", true},
		{"192.168.1.1", true}, {"169.254.169.254", true}, {"fe80::1", true}, {"fd00::1", true}, {"0.0.0.0", true}, {"::", true},
		{"100.64.0.1", true}, {"224.0.0.1", true}, {"::ffff:127.0.0.1", true}, {"::ffff:10.0.0.1", true}, {"198.18.0.1", true},
		{"8.8.8.8", false}, {"172.32.0.1", false}, {"2001:4860:4860::8888", false}, {"100.128.0.1", false}, {"93.184.216.34", false},
	} {
		if got := blocked(netip.MustParseAddr(c.addr)); got != c.blocked {
			t.Errorf("%s: blocked %v, want %v", c.addr, got, c.blocked)
		}
	}
}

// The signature is what a receiver recomputes: HMAC-SHA256 of "t.body".
func TestSign(t *testing.T) {
	at := time.Unix(1700000000, 0)
	got := Sign("whsec_test", at, []byte(`{"id":"1"}`))
	m := hmac.New(sha256.New, []byte("whsec_test"))
	m.Write([]byte(`1700000000.{"id":"1"}`))
	if want := "t=1700000000,v1=" + hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if other := Sign("whsec_other", at, []byte(`{"id":"1"}`)); other == got || !strings.HasPrefix(other, "t=1700000000,v1=") {
		t.Error("the secret must change the signature")
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	s := &Service{opts: Options{RetryBase: time.Second}.withDefaults()}
	for n, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 30: time.Hour} {
		for range 50 {
			d := s.backoff(n)
			if d < base*3/4 || d > base*5/4 {
				t.Fatalf("backoff(%d) = %v, want %v ±25%%", n, d, base)
			}
		}
	}
}
