package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/ratelimit"
)

// Defaults of the request limits; see Options.
const (
	DefaultBodyGrace    = 10 * time.Second
	DefaultMinBodyRate  = 1024 // bytes per second
	DefaultMaxPerIP     = 512
	maxBodyDeadlineStep = time.Minute
)

// rateReader enforces a minimum average upload rate on a request body.
// Before each read it sets the connection's read deadline to the moment
// the body would fall below the rate: start + grace + read/minRate. A
// steady upload at or above the rate never meets the deadline, however
// large; a client trickling bytes (to hold a connection and a goroutine
// for ever) is cut off once the grace is spent.
type rateReader struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	start   time.Time
	grace   time.Duration
	minRate float64
	read    int64
	done    bool
}

func (b *rateReader) Read(p []byte) (int, error) {
	deadline := b.start.Add(b.grace + time.Duration(float64(b.read)/b.minRate*float64(time.Second)))
	// Never further than a minute ahead: an idle stall after a fast
	// start is cut within a minute too.
	if step := time.Now().Add(maxBodyDeadlineStep); step.Before(deadline) {
		deadline = step
	}
	_ = b.rc.SetReadDeadline(deadline)
	n, err := b.body.Read(p)
	b.read += int64(n)
	if err == io.EOF && !b.done {
		b.done = true
		// The body is in: the handler may run long (a realtime stream,
		// say) without the body's deadline closing its connection.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errBodyTooSlow()
	}
	return n, err
}

func (b *rateReader) Close() error { return b.body.Close() }

// errBodyTooSlow is what a handler reading a trickled body gets.
func errBodyTooSlow() error {
	return apierr.New(http.StatusRequestTimeout, "The request body arrived too slowly.")
}

// perIP counts requests in flight per client IP, so one address cannot
// hold every connection and goroutine the server has (long-lived
// realtime streams included).
type perIP struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func (p *perIP) acquire(ip string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[ip] >= p.max {
		return false
	}
	p.n[ip]++
	return true
}

func (p *perIP) release(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[ip]--; p.n[ip] <= 0 {
		delete(p.n, ip)
	}
}

// limitRequest applies the per-IP cap and the body rate to r. It returns
// the request to serve and a release func, or ok false after writing 429.
func (s *Server) limitRequest(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release = func() {}
	if s.inflight != nil {
		ip := ratelimit.ClientIP(r, s.opts.TrustedProxies)
		if !s.inflight.acquire(ip) {
			w.Header().Set("Retry-After", "1")
			s.fail(w, r, apierr.New(http.StatusTooManyRequests, "Too many concurrent requests from your address."))
			return nil, false
		}
		release = func() { s.inflight.release(ip) }
	}
	if r.Body != nil && r.Body != http.NoBody && s.opts.MinBodyRate > 0 {
		r.Body = &rateReader{body: r.Body, rc: http.NewResponseController(w), start: time.Now(),
			grace: s.opts.BodyGrace, minRate: float64(s.opts.MinBodyRate)}
	}
	return release, true
}
