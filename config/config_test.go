package config_test

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.LogLevel != slog.LevelInfo {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{"PORT": "eighty", "LOG_LEVEL": "loud"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"DATABASE_URL", "PORT", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLoadIntakeSettings(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"DATABASE_URL":          "postgres://x@h/db",
		"FRONTEND_URL":          "https://TrueNester.com/, https://www.truenester.com",
		"RATE_LIMIT_PER_MINUTE": "60",
		"RATE_LIMIT_BURST":      "5",
		"TRUST_PROXY_HEADERS":   "Fly",
		"TRUSTED_PROXIES":       "203.0.113.0/24, 2001:db8::1, ::ffff:192.0.2.9",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://truenester.com", "https://www.truenester.com"}; !slices.Equal(c.FrontendOrigins, want) {
		t.Errorf("FrontendOrigins = %q, want %q", c.FrontendOrigins, want)
	}
	if c.RateLimitPerMinute != 60 || c.RateLimitBurst != 5 || c.TrustProxyHeaders != config.ProxyFly {
		t.Errorf("intake settings: %+v", c)
	}
	want := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("192.0.2.9/32")}
	if !slices.Equal(c.TrustedProxies, want) {
		t.Errorf("TrustedProxies = %v, want %v", c.TrustedProxies, want)
	}
}

func TestLoadIntakeDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.FrontendOrigins != nil || c.RateLimitPerMinute != config.DefaultRateLimitPerMinute ||
		c.RateLimitBurst != config.DefaultRateLimitBurst || c.TrustProxyHeaders != config.ProxyNone {
		t.Errorf("intake defaults: %+v", c)
	}
}

func TestLoadNamesEveryBadIntakeSetting(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{
		"DATABASE_URL":          "postgres://x@h/db",
		"FRONTEND_URL":          "truenester.com/contact",
		"RATE_LIMIT_PER_MINUTE": "0",
		"RATE_LIMIT_BURST":      "lots",
		"TRUST_PROXY_HEADERS":   "cloudflare",
		"TRUSTED_PROXIES":       "10.0.0.0/8, the load balancer",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"FRONTEND_URL", "RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_BURST", "TRUST_PROXY_HEADERS", "TRUSTED_PROXIES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLoadRefusesAFrontendURLWithAPath(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"https://truenester.com/app", "ftp://truenester.com", "https://", "https://truenester.com?x=1"} {
		if _, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db", "FRONTEND_URL": v})); err == nil {
			t.Errorf("FRONTEND_URL=%q accepted", v)
		}
	}
}

func TestLoadDeliverySettings(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"DATABASE_URL":               "postgres://x@h/db",
		"WEBHOOK_SECRET":             "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"ADMIN_API_KEY":              "0123456789abcdef0123",
		"ENABLE_NOTIFICATION_WORKER": "false",
		"FRONTEND_URL":               "https://truenester.com,https://www.truenester.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.WebhookKey) != 24 || c.Dispatch || !c.Listen || c.FrontendURL() != "https://truenester.com" {
		t.Fatalf("got %+v", c)
	}
	_, err = config.Load(env(map[string]string{
		"DATABASE_URL":   "postgres://x@h/db",
		"WEBHOOK_SECRET": "whsec_!!!",
		"ADMIN_API_KEY":  "short",
		"ENABLE_LISTEN":  "maybe",
	}))
	for _, name := range []string{"WEBHOOK_SECRET", "ADMIN_API_KEY", "ENABLE_LISTEN"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	// As the reference libraries read it, a secret is base64 with or without
	// whsec_; one that is not stops start-up and the message names it.
	c, err = config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db", "WEBHOOK_SECRET": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
	if err != nil || len(c.WebhookKey) != 24 {
		t.Errorf("a secret without whsec_: key of %d bytes, %v", len(c.WebhookKey), err)
	}
	_, err = config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db", "WEBHOOK_SECRET": "correct horse battery staple"}))
	if err == nil || !strings.Contains(err.Error(), "WEBHOOK_SECRET") || strings.Contains(err.Error(), "horse") {
		t.Errorf("a secret that is not base64: %v, want an error naming WEBHOOK_SECRET without its value", err)
	}
}

func TestLoadDBSettings(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DB != config.DefaultDBSettings {
		t.Errorf("defaults: %+v, want %+v", c.DB, config.DefaultDBSettings)
	}
	c, err = config.Load(env(map[string]string{
		"DATABASE_URL":                   "postgres://x@h/db",
		"DB_POOL_INTAKE":                 "20",
		"DB_POOL_DISPATCH":               "4",
		"DB_POOL_SLA":                    "2",
		"DB_POOL_ADMIN":                  "2",
		"DB_POOL_METRICS":                "3",
		"DB_STATEMENT_TIMEOUT":           "30s",
		"DB_LOCK_TIMEOUT":                "0",
		"DB_IDLE_IN_TRANSACTION_TIMEOUT": "1m",
		"DB_WAIT_TIMEOUT":                "0",
		"DB_INTAKE_TIMEOUT":              "7s",
		"DB_ADMIN_TIMEOUT":               "3s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.DBSettings{IntakeConns: 20, DispatchConns: 4, SLAConns: 2, AdminConns: 2, MetricsConns: 3, StatementTimeout: 30 * time.Second,
		IdleInTransactionTimeout: time.Minute, IntakeTimeout: 7 * time.Second, AdminTimeout: 3 * time.Second}
	if c.DB != want {
		t.Errorf("DB settings %+v, want %+v", c.DB, want)
	}
	_, err = config.Load(env(map[string]string{
		"DATABASE_URL":         "postgres://x@h/db",
		"DB_POOL_INTAKE":       "0",
		"DB_POOL_SLA":          "1",
		"DB_POOL_ADMIN":        "many",
		"DB_LOCK_TIMEOUT":      "-1s",
		"DB_STATEMENT_TIMEOUT": "soon",
		"DB_INTAKE_TIMEOUT":    "5",
		"DB_ADMIN_TIMEOUT":     "-10s",
	}))
	for _, name := range []string{"DB_POOL_INTAKE", "DB_POOL_SLA", "DB_POOL_ADMIN", "DB_LOCK_TIMEOUT", "DB_STATEMENT_TIMEOUT", "DB_INTAKE_TIMEOUT", "DB_ADMIN_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

// Every DB_* duration, DB_INTAKE_TIMEOUT and DB_ADMIN_TIMEOUT with the others, is read by
// one rule: 0 or a duration of at least 1ms (what 0 leaves is each one's: the server's own
// timeout, waiting for ever, the intake's and the console's own bounds), and a bad value is
// refused with one message that names it.
func TestDBDurationsShareOneRule(t *testing.T) {
	t.Parallel()
	durations := map[string]func(config.DBSettings) time.Duration{
		"DB_STATEMENT_TIMEOUT":           func(s config.DBSettings) time.Duration { return s.StatementTimeout },
		"DB_LOCK_TIMEOUT":                func(s config.DBSettings) time.Duration { return s.LockTimeout },
		"DB_IDLE_IN_TRANSACTION_TIMEOUT": func(s config.DBSettings) time.Duration { return s.IdleInTransactionTimeout },
		"DB_WAIT_TIMEOUT":                func(s config.DBSettings) time.Duration { return s.WaitTimeout },
		"DB_INTAKE_TIMEOUT":              func(s config.DBSettings) time.Duration { return s.IntakeTimeout },
		"DB_ADMIN_TIMEOUT":               func(s config.DBSettings) time.Duration { return s.AdminTimeout },
	}
	for name, field := range durations {
		load := func(v string) (config.DBSettings, error) {
			c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db", name: v}))
			return c.DB, err
		}
		for v, want := range map[string]time.Duration{"3s": 3 * time.Second, "1ms": time.Millisecond, "0": 0} {
			if db, err := load(v); err != nil || field(db) != want {
				t.Errorf("%s=%q: %s, %v; want %s", name, v, field(db), err, want)
			}
		}
		for _, v := range []string{"-1s", "soon", "10", "500us"} {
			want := fmt.Sprintf("%s=%q is not 0 or a duration of at least 1ms, such as 10s or 500ms", name, v)
			if _, err := load(v); err == nil || err.Error() != want {
				t.Errorf("%s=%q: %v; want %q", name, v, err, want)
			}
		}
	}
}
