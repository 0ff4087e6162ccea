package server

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/truenester/leadrelay/config"
)

// maxTrackedClients bounds the limiter's memory (a bucket is about 250
// bytes) however many addresses send requests.
const maxTrackedClients = 100_000

// clientLimiter is a token bucket per client address. A bucket left alone
// long enough to refill is forgotten: a new one would be identical. When the
// table is full, the least recently seen address makes room: a flood from
// more addresses than we track then lets some flooders through with a fresh
// bucket, but never locks a newcomer out (a lead refused is worse than a
// flooder admitted; the edge's proxy is the place to stop floods).
type clientLimiter struct {
	perSecond rate.Limit
	burst     int
	refill    time.Duration // how long an empty bucket takes to fill
	capacity  int
	now       func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*list.Element // of *clientBucket
	recency *list.List                     // front: most recently seen
}

type clientBucket struct {
	key      netip.Prefix
	limiter  *rate.Limiter
	lastSeen time.Time
}

func newClientLimiter(perMinute, burst int, now func() time.Time) *clientLimiter {
	perMinute, burst = max(perMinute, 1), max(burst, 1)
	return &clientLimiter{
		perSecond: rate.Limit(float64(perMinute) / 60),
		burst:     burst,
		refill:    time.Duration(float64(burst) / float64(perMinute) * float64(time.Minute)),
		capacity:  maxTrackedClients,
		now:       now,
		buckets:   make(map[netip.Prefix]*list.Element),
		recency:   list.New(),
	}
}

// allow takes a token from client's bucket, or says how long until one is
// there.
func (l *clientLimiter) allow(client netip.Addr) (ok bool, retryAfter time.Duration) {
	key := clientKey(client)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetIdle(now)
	var b *clientBucket
	if e := l.buckets[key]; e != nil {
		b = e.Value.(*clientBucket)
		l.recency.MoveToFront(e)
	} else {
		if len(l.buckets) >= l.capacity {
			oldest := l.recency.Back()
			l.recency.Remove(oldest)
			delete(l.buckets, oldest.Value.(*clientBucket).key)
		}
		b = &clientBucket{key: key, limiter: rate.NewLimiter(l.perSecond, l.burst)}
		l.buckets[key] = l.recency.PushFront(b)
	}
	b.lastSeen = now
	res := b.limiter.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// forgetIdle drops the buckets that have refilled, least recently seen first:
// they sit at the back of the recency list, so this costs what it drops.
func (l *clientLimiter) forgetIdle(now time.Time) {
	for e := l.recency.Back(); e != nil; e = l.recency.Back() {
		b := e.Value.(*clientBucket)
		if now.Sub(b.lastSeen) < l.refill {
			return
		}
		l.recency.Remove(e)
		delete(l.buckets, b.key)
	}
}

// tracked is how many addresses have a bucket.
func (l *clientLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
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
		s.warnUntrustedProxy(r)
		if ok, wait := s.limiter.allow(s.clientAddress(r)); !ok {
			s.respondError(w, r, &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: "too many requests from this address; retry after the time in Retry-After", RetryAfter: wait})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddress is the address of the client. Proxy headers count only when
// the TCP peer is a trusted proxy (TRUSTED_PROXIES): a client that reaches
// the service directly can write any header it likes.
//   - TRUST_PROXY_HEADERS empty: the TCP peer.
//   - fly: Fly-Client-IP, which Fly.io's proxy sets (replacing the client's).
//   - x-forwarded-for: read from the right, the first entry that is not a
//     trusted proxy: each proxy appends the address it was reached from, so
//     entries left of that one were written by the client.
//
// Without a usable header, the TCP peer; the zero Addr when nothing parses.
func (s *server) clientAddress(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if s.Edge.TrustProxyHeaders == config.ProxyNone || !s.trustedProxy(peer) {
		return peer
	}
	switch s.Edge.TrustProxyHeaders {
	case config.ProxyFly:
		if a, ok := parseHostAddr(r.Header.Get("Fly-Client-IP")); ok {
			return a
		}
	case config.ProxyXForwardedFor:
		var entries []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			entries = append(entries, strings.Split(v, ",")...)
		}
		client := peer
		for i := len(entries) - 1; i >= 0; i-- {
			a, ok := parseHostAddr(entries[i])
			if !ok {
				break // not written by a proxy of ours: the last hop is all we know
			}
			client = a
			if !s.trustedProxy(a) {
				break
			}
		}
		return client
	}
	return peer
}

// warnUntrustedProxy logs, once per process, a proxy header that came from
// a peer outside TRUSTED_PROXIES: a client writing it (ignored, as it should
// be), or a proxy missing from the list, which makes every visitor share the
// proxy's bucket.
func (s *server) warnUntrustedProxy(r *http.Request) {
	header := map[config.ProxyHeader]string{config.ProxyFly: "Fly-Client-IP", config.ProxyXForwardedFor: "X-Forwarded-For"}[s.Edge.TrustProxyHeaders]
	if header == "" || r.Header.Get(header) == "" || s.proxyWarned.Load() {
		return
	}
	if peer := remoteAddr(r); !s.trustedProxy(peer) && s.proxyWarned.CompareAndSwap(false, true) {
		s.Logger.WarnContext(r.Context(), "a proxy header came from a peer outside TRUSTED_PROXIES and is ignored; if that peer is your proxy, add it to TRUSTED_PROXIES (logged once)",
			"header", header, "peer", peer.String())
	}
}

func (s *server) trustedProxy(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	proxies := s.Edge.TrustedProxies
	if proxies == nil {
		proxies = config.DefaultTrustedProxies()
	}
	a = a.Unmap()
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// parseHostAddr reads an address as proxies write it: bare, or with a port
// ("192.0.2.1:5678", "[2001:db8::1]:443").
func parseHostAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
