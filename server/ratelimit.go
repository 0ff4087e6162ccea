package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/truenester/leadrelay/config"
)

// maxTrackedClients bounds the limiter's memory (a bucket is about 200
// bytes) however many addresses send requests.
const maxTrackedClients = 100_000

// clientLimiter is a token bucket per client address. A bucket left alone
// long enough to refill is forgotten: a new one would be identical.
type clientLimiter struct {
	perSecond rate.Limit
	burst     int
	refill    time.Duration // how long an empty bucket takes to fill
	now       func() time.Time

	mu        sync.Mutex
	buckets   map[netip.Prefix]*clientBucket
	lastSweep time.Time
}

type clientBucket struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

func newClientLimiter(perMinute, burst int, now func() time.Time) *clientLimiter {
	perMinute, burst = max(perMinute, 1), max(burst, 1)
	return &clientLimiter{
		perSecond: rate.Limit(float64(perMinute) / 60),
		burst:     burst,
		refill:    time.Duration(float64(burst) / float64(perMinute) * float64(time.Minute)),
		now:       now,
		buckets:   make(map[netip.Prefix]*clientBucket),
	}
}

// allow takes a token from client's bucket, or says how long until one is
// there.
func (l *clientLimiter) allow(client netip.Addr) (ok bool, retryAfter time.Duration) {
	key := clientKey(client)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.refill {
		l.forgetIdle(now)
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxTrackedClients {
			l.forgetIdle(now)
		}
		if len(l.buckets) >= maxTrackedClients {
			// Every tracked address is busy: a flood from more addresses
			// than we track. New ones wait rather than grow the table.
			return false, l.refill
		}
		b = &clientBucket{limiter: rate.NewLimiter(l.perSecond, l.burst)}
		l.buckets[key] = b
	}
	b.lastSeen = now
	res := b.limiter.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *clientLimiter) forgetIdle(now time.Time) {
	for key, b := range l.buckets {
		if now.Sub(b.lastSeen) >= l.refill {
			delete(l.buckets, key)
		}
	}
	l.lastSweep = now
}

// clientKey is the bucket an address counts against: the address itself for
// IPv4, its /64 for IPv6, where one subscriber holds a whole /64.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, err := a.Prefix(bits)
	if err != nil { // the zero Addr: every unknown client shares one bucket
		return netip.Prefix{}
	}
	return p
}

// limitRate answers 429 with Retry-After when the client's bucket is empty.
func (s *server) limitRate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.limiter.allow(s.clientAddress(r)); !ok {
			s.respondError(w, r, &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "too many requests from this address; retry after the time in Retry-After", RetryAfter: wait})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddress is the address of the client: from the proxy's header when
// TRUST_PROXY_HEADERS says a proxy sets it, else the TCP peer. The zero Addr
// when neither parses.
func (s *server) clientAddress(r *http.Request) netip.Addr {
	switch s.Config.TrustProxyHeaders {
	case config.ProxyFly:
		if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("Fly-Client-IP"))); err == nil {
			return a
		}
	case config.ProxyXForwardedFor:
		// The client writes what it likes at the front; the last entry is
		// the one our proxy appended.
		if values := r.Header.Values("X-Forwarded-For"); len(values) > 0 {
			entries := strings.Split(values[len(values)-1], ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(entries[len(entries)-1])); err == nil {
				return a
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a
}
