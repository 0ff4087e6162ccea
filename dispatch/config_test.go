package dispatch_test

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dispatch"
	"github.com/truenester/leadrelay/notifiers"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"NOTIFY_RETRY_DELAYS": "1s, 5s", "NOTIFY_SWEEP_INTERVAL": "500ms", "NOTIFY_LEASE": "30s"}
	c, sweep, err := dispatch.ConfigFromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.RetryDelays, []time.Duration{time.Second, 5 * time.Second}) || sweep != 500*time.Millisecond || c.Lease != 30*time.Second {
		t.Fatalf("got %+v, sweep %s", c, sweep)
	}
}

func TestConfigFromEnvNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	// NOTIFY_SEND_TIMEOUT alone is checked against the default lease (2m).
	vars := map[string]string{"NOTIFY_RETRY_DELAYS": "30s,soon", "NOTIFY_SWEEP_INTERVAL": "-1s", "NOTIFY_CONCURRENCY": "many", "NOTIFY_SEND_TIMEOUT": "5m"}
	_, _, err := dispatch.ConfigFromEnv(func(k string) string { return vars[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"NOTIFY_RETRY_DELAYS", "NOTIFY_SWEEP_INTERVAL", "NOTIFY_CONCURRENCY", "NOTIFY_LEASE", "NOTIFY_SEND_TIMEOUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// New refuses, by name, what a Dispatcher cannot run with, as the parser
// refuses it.
func TestNewRefusesWhatItCannotRunWith(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		cfg     dispatch.Config
		mention string
	}{
		"no replica":              {dispatch.Config{}, "Replica"},
		"lease within send bound": {dispatch.Config{Replica: "a", Lease: time.Second, SendTimeout: 2 * time.Second}, "NOTIFY_LEASE"},
		"batch too large":         {dispatch.Config{Replica: "a", BatchSize: 10001}, "NOTIFY_BATCH_SIZE"},
		"a negative retry wait":   {dispatch.Config{Replica: "a", RetryDelays: []time.Duration{-time.Second}}, "NOTIFY_RETRY_DELAYS"},
	} {
		if _, err := dispatch.New(nil, nil, nil, c.cfg, nil, quiet()); err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: %v, want an error naming %s", name, err, c.mention)
		}
	}
	// With neither a channel nor the developer's console, a dispatcher would open every new
	// event for no channel, which marks it processed: an alert lost, so New refuses.
	if _, err := dispatch.New(nil, nil, nil, dispatch.Config{Replica: "a"}, nil, quiet()); err == nil || !strings.Contains(err.Error(), "no channel") {
		t.Errorf("no channel and no console: %v, want an error saying there is no channel", err)
	}
	if _, err := dispatch.New(nil, nil, notifiers.NewConsole(io.Discard), dispatch.Config{Replica: "a"}, nil, quiet()); err != nil {
		t.Errorf("the defaults: %v", err)
	}
}
