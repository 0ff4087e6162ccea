package dispatch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/truenester/leadrelay/notifiers"
)

// DefaultSweepInterval is how often a replica looks for events no doorbell
// announced, and for retries coming due.
const DefaultSweepInterval = 2 * time.Second

// DefaultLease is how long a claimed delivery stays a replica's unrenewed:
// a killed replica's sends in flight go out again from another within it
// (and a sweep). Renewed every third of it (10 s; one statement for all the
// sends in flight), it leaves a send (NOTIFY_SEND_TIMEOUT, 15 s) 20 s at
// any moment, and a send begun at its claim fits in it even unrenewed. A
// replica paused or cut off from the database for longer than 20 s may see
// its sends in flight repeated by another.
const DefaultLease = 30 * time.Second

// ConfigFromEnv reads the dispatcher's settings; every bad value is named.
//
//	NOTIFY_RETRY_DELAYS     waits before each retry, default 30s,2m,5m,15m,30m,30m (7 attempts over 82.5 minutes)
//	NOTIFY_SWEEP_INTERVAL   default 2s
//	NOTIFY_LEASE            how long a replica holds a claimed delivery unrenewed, default 30s
//	NOTIFY_SEND_TIMEOUT     bound of one attempt on one channel, default notifiers.DefaultSendTimeout (15s)
//	NOTIFY_BATCH_SIZE       new events opened per claim at most, default 100
//	NOTIFY_CONCURRENCY      sends in flight per channel, default 32
func ConfigFromEnv(getenv func(string) string) (Config, time.Duration, error) {
	var c Config
	sweep := DefaultSweepInterval
	var errs []error
	duration := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q is not a positive duration such as 30s or 2m", name, v))
				return
			}
			*dst = d
		}
	}
	count := func(name string, dst *int, most int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > most {
				errs = append(errs, fmt.Errorf("%s=%q is not a whole number from 1 to %d", name, v, most))
				return
			}
			*dst = n
		}
	}
	if v := getenv("NOTIFY_RETRY_DELAYS"); v != "" {
		for _, part := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(part))
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("NOTIFY_RETRY_DELAYS=%q: %q is not a positive duration (e.g. 30s,2m,10m)", v, part))
				break
			}
			c.RetryDelays = append(c.RetryDelays, d)
		}
		if len(c.RetryDelays) > maxRetries {
			errs = append(errs, fmt.Errorf("NOTIFY_RETRY_DELAYS=%q: at most %d retries", v, maxRetries))
		}
	}
	duration("NOTIFY_SWEEP_INTERVAL", &sweep)
	duration("NOTIFY_LEASE", &c.Lease)
	duration("NOTIFY_SEND_TIMEOUT", &c.SendTimeout)
	count("NOTIFY_BATCH_SIZE", &c.BatchSize, maxBatchSize)
	count("NOTIFY_CONCURRENCY", &c.Concurrency, notifiers.MaxConcurrency)
	// What only the settings together can say, said as New says it.
	errs = append(errs, c.WithDefaults().validate())
	return c, sweep, errors.Join(errs...)
}
