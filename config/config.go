// Package config reads the service's settings from environment variables,
// the names TrueNester already uses. A bad value stops start-up with a
// message that names the variable. The channels' own settings are read by
// package notifiers.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/truenester/leadrelay/webhook"
)

// ProxyHeader names the header that carries the client's address when the
// service runs behind a proxy that sets it. Trusting a header a client can
// forge would let one client pose as many, so it is off unless told.
type ProxyHeader string

const (
	ProxyNone          ProxyHeader = ""                // the TCP peer's address
	ProxyFly           ProxyHeader = "fly"             // Fly-Client-IP, set by Fly.io's proxy
	ProxyXForwardedFor ProxyHeader = "x-forwarded-for" // the right-most X-Forwarded-For entry that is not a trusted proxy
)

// DefaultTrustedProxies are the peers whose proxy headers are believed when
// TRUSTED_PROXIES is not set: loopback and private networks (RFC 1918,
// RFC 4193, which holds Fly.io's 6PN, and RFC 6598's shared space), where a
// load balancer or Fly's proxy connects from. A client on the internet that
// reaches the service directly has a public address, so its headers count
// for nothing.
func DefaultTrustedProxies() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// Config is the service's configuration.
type Config struct {
	DatabaseURL string     // DATABASE_URL
	Port        int        // PORT, default 8080
	LogLevel    slog.Level // LOG_LEVEL: debug, info (default), warn, error

	// Edge is what the HTTP edge (package server) reads.
	Edge
	// Dispatch: this process runs the dispatcher (and beside it the SLA
	// engine). ENABLE_NOTIFICATION_WORKER (default true; the variable keeps
	// its published name): false runs the intake only, while another process
	// delivers.
	Dispatch bool
	// ENABLE_LISTEN (default true): LISTEN for the outbox's NOTIFY. Needs a
	// direct or session-mode DATABASE_URL; turn it off behind a pooler in
	// transaction mode.
	Listen bool
	// DB: the connection pools and the bounds every session runs under.
	DB DBSettings
	// Replica is this process's name among the replicas, in the outbox's
	// delivery leases and the SLA leader lease: host-pid-random, made once.
	Replica string
}

// Edge is the settings of the HTTP edge: who may post leads, how often, and
// the keys of the webhook receiver and the admin API.
type Edge struct {
	// FRONTEND_URL: the origins (comma-separated, e.g.
	// https://truenester.com,https://www.truenester.com) whose browsers may
	// post leads. Empty: no browser on another origin may.
	FrontendOrigins []string
	// RATE_LIMIT_PER_MINUTE and RATE_LIMIT_BURST: each client address's
	// token bucket on the intake endpoints.
	RateLimitPerMinute int
	RateLimitBurst     int
	// TRUST_PROXY_HEADERS: fly, x-forwarded-for, or empty (none).
	TrustProxyHeaders ProxyHeader
	// TRUSTED_PROXIES: comma-separated addresses or CIDRs of the proxies
	// whose headers are believed; nil means DefaultTrustedProxies.
	TrustedProxies []netip.Prefix

	// WEBHOOK_SECRET: the key the database webhook (pg_net) signs with;
	// empty turns the receiver off (the service still delivers, woken by
	// LISTEN and the sweep).
	WebhookKey []byte
	// ADMIN_API_KEY: the Bearer token of the /admin endpoints; empty turns
	// them off.
	AdminAPIKey string
	// METRICS_ADDR: a listen address of its own for /metrics (e.g. :9091,
	// Fly.io's private metrics port); METRICS_TOKEN: a Bearer token /metrics
	// requires. With neither, no port serves metrics.
	MetricsAddr  string
	MetricsToken string
}

// DBSettings size the connection pools and bound every session. Each part
// of a replica has a pool of its own, so a delivery backlog, a stuck SLA
// job, admins' reports or a scraper can never take the connections the
// intake writes leads on.
type DBSettings struct {
	IntakeConns   int32 // DB_POOL_INTAKE: the intake (and /readyz's check of the database)
	DispatchConns int32 // DB_POOL_DISPATCH: the dispatcher's claims and outcomes
	SLAConns      int32 // DB_POOL_SLA: the SLA engine's lease and jobs
	AdminConns    int32 // DB_POOL_ADMIN: the admin console and the JSON admin API
	MetricsConns  int32 // DB_POOL_METRICS: /metrics' database figures (one query at a time)
	// Each DB_* duration below is 0 or at least 1ms; 0 sets no bound of its
	// own, leaving whatever the part it bounds keeps (said at each).
	//
	// DB_STATEMENT_TIMEOUT, DB_LOCK_TIMEOUT, DB_IDLE_IN_TRANSACTION_TIMEOUT:
	// every session's statement_timeout, lock_timeout and
	// idle_in_transaction_session_timeout (0: leave the server's own). A
	// paused or partitioned replica's open transaction then ends by
	// itself, releasing its locks.
	StatementTimeout         time.Duration
	LockTimeout              time.Duration
	IdleInTransactionTimeout time.Duration
	// DB_WAIT_TIMEOUT: how long serve waits for the database at start-up
	// before it gives up (0: for ever).
	WaitTimeout time.Duration
	// DB_INTAKE_TIMEOUT: the deadline of each lead's database call
	// (submit_lead), waiting for a connection of the intake pool included;
	// past it the answer is 503 with Retry-After, nothing half-written (0:
	// leave the intake's own, this default, 5s, so a lead never waits for
	// ever). Long enough for a busy database, short enough for the website
	// to retry while the visitor still waits.
	IntakeTimeout time.Duration
	// DB_ADMIN_TIMEOUT: the deadline of each database call of an admin
	// console page or action and of the JSON admin API, waiting for a
	// connection of the admin pool included; past it the answer is 503
	// with Retry-After (0: this default, 10s, which the console falls back
	// to, so an admin request never waits for ever).
	AdminTimeout time.Duration
}

// Defaults of DBSettings: 26 connections per replica at most (and two for
// LISTEN: the doorbell's and the console's); each pool connects on demand.
var DefaultDBSettings = DBSettings{
	IntakeConns:              10,
	DispatchConns:            8,
	SLAConns:                 3,
	AdminConns:               4,
	MetricsConns:             1,
	StatementTimeout:         10 * time.Second,
	LockTimeout:              2 * time.Second,
	IdleInTransactionTimeout: 10 * time.Second,
	WaitTimeout:              10 * time.Minute,
	IntakeTimeout:            5 * time.Second,
	AdminTimeout:             10 * time.Second,
}

// FrontendURL is the admin panel's base URL (FRONTEND_URL's first origin),
// for links in alerts; "" when none is set.
func (c Edge) FrontendURL() string {
	if len(c.FrontendOrigins) == 0 {
		return ""
	}
	return c.FrontendOrigins[0]
}

// Defaults for the intake's rate limit: a person sends a form or two a
// minute; a burst of 10 leaves room for an office behind one address.
const (
	DefaultRateLimitPerMinute = 20
	DefaultRateLimitBurst     = 10
)

// Load reads the configuration through getenv and reports every bad value.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		Port:        8080,
		LogLevel:    slog.LevelInfo,
		Dispatch:    true,
		Listen:      true,
		DB:          DefaultDBSettings,
		Replica:     replicaName(),
	}
	var errs []error
	var err error
	c.Edge, err = LoadEdge(getenv)
	errs = append(errs, err)
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is not set (a postgres:// URL; `make run` sets one up for you)"))
	}
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("PORT=%q is not a port number (1-65535)", v))
		}
		c.Port = p
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToLower(v))); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q is not one of debug, info, warn, error", v))
		}
	}
	for name, dst := range map[string]*bool{"ENABLE_NOTIFICATION_WORKER": &c.Dispatch, "ENABLE_LISTEN": &c.Listen} {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not true or false", name, v))
			}
			*dst = b
		}
	}
	errs = append(errs, loadDB(getenv, &c.DB)...)
	return c, errors.Join(errs...)
}

// LoadEdge reads the HTTP edge's settings and reports every bad value.
func LoadEdge(getenv func(string) string) (Edge, error) {
	c := Edge{
		RateLimitPerMinute: DefaultRateLimitPerMinute,
		RateLimitBurst:     DefaultRateLimitBurst,
		AdminAPIKey:        getenv("ADMIN_API_KEY"),
	}
	var errs []error
	if v := getenv("FRONTEND_URL"); v != "" {
		for _, s := range strings.Split(v, ",") {
			origin, err := parseOrigin(strings.TrimSpace(s))
			if err != nil {
				errs = append(errs, fmt.Errorf("FRONTEND_URL=%q: %w", v, err))
				continue
			}
			c.FrontendOrigins = append(c.FrontendOrigins, origin)
		}
	}
	if v := getenv("RATE_LIMIT_PER_MINUTE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("RATE_LIMIT_PER_MINUTE=%q is not a whole number of requests of at least 1", v))
		}
		c.RateLimitPerMinute = n
	}
	if v := getenv("RATE_LIMIT_BURST"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("RATE_LIMIT_BURST=%q is not a whole number of requests of at least 1", v))
		}
		c.RateLimitBurst = n
	}
	switch v := ProxyHeader(strings.ToLower(getenv("TRUST_PROXY_HEADERS"))); v {
	case ProxyNone, ProxyFly, ProxyXForwardedFor:
		c.TrustProxyHeaders = v
	default:
		errs = append(errs, fmt.Errorf("TRUST_PROXY_HEADERS=%q is not one of fly, x-forwarded-for (or empty: trust no proxy header)", v))
	}
	if v := getenv("TRUSTED_PROXIES"); v != "" {
		ps, err := parsePrefixes(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("TRUSTED_PROXIES=%q: %w", v, err))
		}
		c.TrustedProxies = ps
	}
	if v := getenv("WEBHOOK_SECRET"); v != "" {
		key, err := webhook.Key(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("WEBHOOK_SECRET: %w", err))
		}
		c.WebhookKey = key
	}
	if v := c.AdminAPIKey; v != "" && len(v) < 16 {
		errs = append(errs, errors.New("ADMIN_API_KEY is shorter than 16 characters; use a long random value"))
	}
	if v := getenv("METRICS_ADDR"); v != "" {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("METRICS_ADDR=%q is not a listen address such as :9091 or 127.0.0.1:9091", v))
		}
		c.MetricsAddr = v
	}
	if c.MetricsToken = getenv("METRICS_TOKEN"); c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		errs = append(errs, errors.New("METRICS_TOKEN is shorter than 16 characters; use a long random value"))
	}
	return c, errors.Join(errs...)
}

// parsePrefixes reads a comma-separated list of addresses and CIDRs.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a CIDR such as 10.0.0.0/8", s)
		}
		a = a.Unmap()
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
}

func loadDB(getenv func(string) string, db *DBSettings) []error {
	var errs []error
	for name, dst := range map[string]*int32{"DB_POOL_INTAKE": &db.IntakeConns, "DB_POOL_DISPATCH": &db.DispatchConns, "DB_POOL_SLA": &db.SLAConns,
		"DB_POOL_ADMIN": &db.AdminConns, "DB_POOL_METRICS": &db.MetricsConns} {
		if v := getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 || n > 1000 {
				errs = append(errs, fmt.Errorf("%s=%q is not a number of connections from 1 to 1000", name, v))
				continue
			}
			*dst = int32(n)
		}
	}
	if v := getenv("DB_POOL_SLA"); v != "" && db.SLAConns < 2 {
		errs = append(errs, fmt.Errorf("DB_POOL_SLA=%q: the SLA engine needs at least 2 connections (its lease and a job)", v))
	}
	for name, dst := range map[string]*time.Duration{
		"DB_STATEMENT_TIMEOUT":           &db.StatementTimeout,
		"DB_LOCK_TIMEOUT":                &db.LockTimeout,
		"DB_IDLE_IN_TRANSACTION_TIMEOUT": &db.IdleInTransactionTimeout,
		"DB_WAIT_TIMEOUT":                &db.WaitTimeout,
		"DB_INTAKE_TIMEOUT":              &db.IntakeTimeout,
		"DB_ADMIN_TIMEOUT":               &db.AdminTimeout,
	} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || (d > 0 && d < time.Millisecond) {
				errs = append(errs, fmt.Errorf("%s=%q is not 0 or a duration of at least 1ms, such as 10s or 500ms", name, v))
				continue
			}
			*dst = d
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// parseOrigin turns a frontend URL into the origin a browser sends
// (scheme://host[:port]), refusing anything with a path or query, which a
// browser's Origin header never carries.
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", s)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s)://host origin", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q has more than scheme://host[:port]", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// replicaName names this process among the replicas: its host, its pid and
// a random part, so a restarted process is a new replica.
func replicaName() string {
	host, _ := os.Hostname() // "" is still a usable part of a name
	return fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.IntN(1<<16))
}
