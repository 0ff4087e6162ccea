package sla

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/truenester/leadrelay/ops/health"
)

// Defaults: a tick every second makes each alert leave within about a
// second of its due time; a 3 s lease, renewed every second, hands the jobs
// over within about 4 s of a leader's death (at once on a clean shutdown).
const (
	DefaultTickInterval     = time.Second
	DefaultFollowUpInterval = time.Second
	DefaultLeaderLease      = 3 * time.Second
	DefaultBatchSize        = 500
)

// LeaseName is the leader_leases row the SLA jobs run under.
const LeaseName = "sla"

// Config tunes an Engine; zero fields take the defaults (WithDefaults), and
// New refuses what it cannot run with.
type Config struct {
	TickInterval     time.Duration // how often the leader looks for due warnings and breaches
	FollowUpInterval time.Duration // how often the leader looks for due and overdue follow-ups
	Lease            time.Duration // how long leadership lasts unrenewed; renewed every Lease/3
	BatchSize        int           // rows per transaction (a tick takes as many as are due)
	Replica          string        // this replica's name in the lease; required
	// Health hears whether the engine works (part "sla"): whether it can
	// reach the lease, and whether the leader's jobs succeed. nil: nobody.
	Health *health.Registry
}

// Bounds of the settings, for New and ConfigFromEnv alike.
const (
	minInterval  = 10 * time.Millisecond
	minLease     = 300 * time.Millisecond
	maxBatchSize = 10000
)

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.FollowUpInterval == 0 {
		c.FollowUpInterval = DefaultFollowUpInterval
	}
	if c.Lease == 0 {
		c.Lease = DefaultLeaderLease
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	return c
}

// validate reports every setting an Engine cannot run with, naming the
// variable that sets it.
func (c Config) validate() error {
	var errs []error
	if c.Replica == "" {
		errs = append(errs, errors.New("sla: Replica (this replica's name in the lease) is empty"))
	}
	if c.TickInterval < minInterval {
		errs = append(errs, fmt.Errorf("SLA_TICK_INTERVAL (%s) is shorter than %s", c.TickInterval, minInterval))
	}
	if c.FollowUpInterval < minInterval {
		errs = append(errs, fmt.Errorf("SLA_FOLLOWUP_INTERVAL (%s) is shorter than %s", c.FollowUpInterval, minInterval))
	}
	if c.Lease < minLease {
		errs = append(errs, fmt.Errorf("SLA_LEADER_LEASE (%s) is shorter than %s", c.Lease, minLease))
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("SLA_BATCH_SIZE (%d) is not from 1 to %d", c.BatchSize, maxBatchSize))
	}
	return errors.Join(errs...)
}

// ConfigFromEnv reads the engine's settings; every bad value is named.
//
//	SLA_TICK_INTERVAL       warnings and breaches, default 1s
//	SLA_FOLLOWUP_INTERVAL   due and overdue follow-ups, default 1s
//	SLA_LEADER_LEASE        leadership without renewal, default 3s (at least 300ms)
//	SLA_BATCH_SIZE          rows per transaction, default 500
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	duration := func(name string, dst *time.Duration, least time.Duration) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < least {
			errs = append(errs, fmt.Errorf("%s=%q is not a duration of at least %s, such as 1s or 500ms", name, v, least))
			return
		}
		*dst = d
	}
	duration("SLA_TICK_INTERVAL", &c.TickInterval, minInterval)
	duration("SLA_FOLLOWUP_INTERVAL", &c.FollowUpInterval, minInterval)
	duration("SLA_LEADER_LEASE", &c.Lease, minLease)
	if v := getenv("SLA_BATCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxBatchSize {
			errs = append(errs, fmt.Errorf("SLA_BATCH_SIZE=%q is not a whole number from 1 to %d", v, maxBatchSize))
		} else {
			c.BatchSize = n
		}
	}
	return c, errors.Join(errs...)
}

// progressBound is the longest the engine can be silent while it works
// (health.Registry.Watch): the campaign tries the lease every Lease/3 at
// most, each try within Lease/3, and a job's batch ends within the Lease.
// Twice the longest of these leaves a loaded machine its pauses.
func (c Config) progressBound() time.Duration { return 2 * c.Lease }

// workBound is the longest a job that runs every `every` can show no sign of running (a
// run's end, or a batch's: each ends within the Lease): its interval and a batch, twice
// over for a loaded machine's pauses. A leader whose job is silent longer gives the lease
// up (Engine.stalled).
func (c Config) workBound(every time.Duration) time.Duration { return 2 * (every + c.Lease) }
