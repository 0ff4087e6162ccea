package notifiers

import (
	"net"
	"net/http"
	"time"
)

// MaxConcurrency is the most sends one channel may have in flight (the
// dispatcher's NOTIFY_CONCURRENCY cannot exceed it). Each channel's HTTP
// client keeps this many idle connections to its peer, so a channel at full
// concurrency reuses its connections instead of dialling for every alert.
const MaxConcurrency = 64

// NewHTTPClient returns the client of one channel: its own transport, with
// at most idleConns connections to a host, all kept idle between sends (a
// send beyond that waits for a connection rather than dialling: the dial
// race of a busy transport would otherwise open one per burst), and bounds on each phase of a
// request that the send's context may not cover (dial, TLS handshake, the
// wait for response headers). HTTP/2 is used where the peer offers it.
func NewHTTPClient(idleConns int) *http.Client {
	if idleConns < 1 {
		idleConns = 1
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          idleConns,
		MaxIdleConnsPerHost:   idleConns,
		MaxConnsPerHost:       idleConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: DefaultSendTimeout,
		ExpectContinueTimeout: time.Second,
	}}
}

// clientOrDefault gives a sender the client it was configured with, or one
// of its own sized for MaxConcurrency.
func clientOrDefault(c *http.Client) *http.Client {
	if c == nil {
		return NewHTTPClient(MaxConcurrency)
	}
	return c
}
