// Package ratelimit throttles requests per key (client IP, account) with
// token buckets, and resolves the client IP behind trusted proxies only.
package ratelimit

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter allows Burst requests at once per key, refilled at Rate per
// second. Idle keys are forgotten, so memory is bounded by active keys.
type Limiter struct {
	Rate  rate.Limit
	Burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New makes a limiter of perMinute requests a minute with the given burst.
func New(perMinute float64, burst int) *Limiter {
	return &Limiter{Rate: rate.Limit(perMinute / 60), Burst: burst, buckets: map[string]*bucket{}}
}

// Allow takes one token for key; when none is left it returns the time
// until the next one (for Retry-After).
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.Rate, l.Burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// RetryAfter renders a delay as whole seconds, at least 1.
func RetryAfter(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	return strconv.Itoa(max(1, s))
}

// ClientIP returns the request's client address. X-Forwarded-For is
// believed only when the direct peer is a trusted proxy, and then read
// from the right, skipping trusted hops, so a client cannot pick its own
// address by sending the header.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(h)
		if err != nil {
			break
		}
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	return host
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
