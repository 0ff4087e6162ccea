// Package sla watches deadlines: it turns a lead's SLA warning and breach,
// and a follow-up task's due date and deadline, into outbox events (which
// the dispatcher routes to the channels), timeline entries and flags, each
// exactly once and within about a second of its time, however many replicas
// run. The work is in SQL (supabase/functions-sql/70_sla.sql); this package
// schedules it with gocron on the one replica that holds the leader lease,
// and reads the SLA figures the admin API shows.
package sla

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/ops/health"
)

// maxBatches bounds one job run; whatever is left is due at the next run.
const maxBatches = 100

// Result counts what a pass turned into events.
type Result struct {
	Warnings         int `json:"warnings"`
	Breaches         int `json:"breaches"`
	FollowUpsDue     int `json:"follow_ups_due"`
	FollowUpsOverdue int `json:"follow_ups_overdue"`
}

func (r *Result) add(o Result) {
	r.Warnings += o.Warnings
	r.Breaches += o.Breaches
	r.FollowUpsDue += o.FollowUpsDue
	r.FollowUpsOverdue += o.FollowUpsOverdue
}

// Status is what a replica's engine knows of itself, for health and
// metrics.
type Status struct {
	Replica string `json:"replica"`
	Leader  bool   `json:"leader"`
	Token   int64  `json:"token,omitempty"`
	Sent    Result `json:"sent"` // events this replica created since it started
}

// Engine runs the SLA and follow-up jobs on the leader replica.
type Engine struct {
	db    *pgxpool.Pool
	cfg   Config
	clock clockwork.Clock
	log   *slog.Logger
	lease *lease
	// report tells Health how the engine fares (see tried); progress shows
	// that it moves: each lease try and job run reports, each batch is a step.
	report   health.Report
	progress *health.Progress

	mu        sync.Mutex
	sent      Result
	leaseErr  error // the last lease try's, or why this replica did not campaign
	jobErr    map[string]error
	alive     map[string]time.Time // each job's last sign of running, on the clock
	scheduler gocron.Scheduler     // while Run runs
}

// The jobs and how often each runs.
func (e *Engine) jobs() []job {
	return []job{
		{"sla-tick", e.cfg.TickInterval, e.slaPass},
		{"follow-up-tick", e.cfg.FollowUpInterval, e.followUpPass},
	}
}

type job struct {
	name  string
	every time.Duration
	pass  func(context.Context, time.Time, *lease) (Result, error)
}

// New returns an Engine on db. clock is the time the jobs are scheduled by
// and the SQL is given, and the one the leader lease is tried and remembered
// by (nil: the real clock); the lease's expiry in the database is by the
// database's clock (see lease).
func New(db *pgxpool.Pool, cfg Config, clock clockwork.Clock, log *slog.Logger) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	progress := cfg.Health.Watch("sla", cfg.progressBound())
	report := progress.Report
	if cfg.Health == nil {
		report = func(err error) {
			if err != nil {
				log.Warn("sla: engine not working", "err", err)
			}
		}
	}
	return &Engine{
		db:       db,
		cfg:      cfg,
		clock:    clock,
		log:      log,
		lease:    newLease(db, LeaseName, cfg.Replica, cfg.Lease, clock, log),
		report:   report,
		progress: progress,
		jobErr:   map[string]error{},
		alive:    map[string]time.Time{},
	}, nil
}

// tried records how the engine's last lease try, or its last run of a job,
// went, and tells Health: the engine works while it can reach the lease
// and, when it leads, its jobs succeed. Health logs each change once.
func (e *Engine) tried(job string, err error) {
	e.mu.Lock()
	if job == "" {
		e.leaseErr = err
	} else {
		e.jobErr[job] = err
	}
	state := e.leaseErr
	if _, leader := e.lease.current(); state == nil && leader {
		for _, name := range []string{"sla-tick", "follow-up-tick"} {
			if err := e.jobErr[name]; err != nil {
				state = fmt.Errorf("%s: %w", name, err)
				break
			}
		}
	}
	e.mu.Unlock()
	e.report(state)
}

// Run campaigns for the leader lease and, while this replica holds it, runs
// the SLA tick every TickInterval and the follow-up tick every
// FollowUpInterval. When ctx ends it lets a running job finish, stops, and
// gives the lease up so another replica takes over at once.
func (e *Engine) Run(ctx context.Context) error {
	ctx, stopCampaign := context.WithCancel(ctx)
	defer stopCampaign()

	// No gocron elector: every replica's jobs fire, a follower's doing nothing but show
	// that its scheduler works (runJob), so that only a replica whose jobs run campaigns.
	s, err := gocron.NewScheduler(
		gocron.WithClock(e.clock),
		gocron.WithLogger(e.log.With("component", "gocron")),
		gocron.WithStopTimeout(e.cfg.Lease),
	)
	if err != nil {
		err = fmt.Errorf("sla: scheduler: %w", err)
		e.report(err)
		return err
	}
	e.mu.Lock()
	for _, j := range e.jobs() {
		e.alive[j.name] = e.clock.Now()
	}
	e.scheduler = s
	e.mu.Unlock()
	for _, j := range e.jobs() {
		_, err := s.NewJob(
			gocron.DurationJob(j.every),
			gocron.NewTask(func(ctx context.Context) { e.runJob(ctx, j.name, j.pass) }),
			gocron.WithName(j.name),
			gocron.WithContext(ctx),
			// The next run is due an interval after this one ends: a slow
			// run never overlaps the next.
			gocron.WithIntervalFromCompletion(),
			gocron.WithStartAt(gocron.WithStartImmediately()),
		)
		if err != nil {
			_ = s.Shutdown()
			err = fmt.Errorf("sla: job %s: %w", j.name, err)
			e.report(err)
			return err
		}
	}

	// Ask once before starting, so a lone replica runs its first ticks at once.
	e.tried("", e.lease.try(ctx))
	var campaign sync.WaitGroup
	campaign.Go(func() { e.lease.campaign(ctx, e.stalled, func(err error) { e.tried("", err) }) })
	s.Start()
	e.log.Info("sla: engine started", "replica", e.cfg.Replica, "tick", e.cfg.TickInterval,
		"follow_up_tick", e.cfg.FollowUpInterval, "lease", e.cfg.Lease)

	<-ctx.Done()
	err = s.Shutdown()
	stopCampaign()
	campaign.Wait()
	e.lease.release(context.Background())
	if err != nil {
		return fmt.Errorf("sla: stop scheduler: %w", err)
	}
	return nil
}

// runJob runs one scheduled pass as the leader; on a follower it only shows that the job
// fires. Either way the job's end, and each batch's, is its sign of running.
func (e *Engine) runJob(ctx context.Context, name string, pass func(context.Context, time.Time, *lease) (Result, error)) {
	defer e.ran(name)
	if _, leader := e.lease.current(); !leader {
		return
	}
	res, err := pass(context.WithValue(ctx, jobKey{}, name), e.clock.Now(), e.lease)
	e.count(res)
	switch {
	case errors.Is(err, errNotLeader):
		e.log.Info("sla: the leader lease passed on; job skipped", "job", name)
		e.tried(name, nil)
	case err != nil && ctx.Err() == nil:
		// Health logs the failure once; each run's is only a debug line.
		e.log.Debug("sla: job failed; the next run tries again", "job", name, "err", err)
		e.tried(name, err)
	case err == nil:
		e.tried(name, nil)
	}
	if res != (Result{}) {
		e.log.Info("sla: events created", "job", name, "warnings", res.Warnings, "breaches", res.Breaches,
			"follow_ups_due", res.FollowUpsDue, "follow_ups_overdue", res.FollowUpsOverdue)
	}
}

// jobKey carries a scheduled run's job name to its batches (an operator's Tick has none).
type jobKey struct{}

// ran records a sign that job runs.
func (e *Engine) ran(job string) {
	if job == "" {
		return
	}
	e.mu.Lock()
	e.alive[job] = e.clock.Now()
	e.mu.Unlock()
}

// stalled says why this replica must not lead: a job that has shown no sign of running
// (a run's or a batch's end) for longer than its bound (Config.workBound) while Run runs,
// because its scheduler no longer fires it or a run is stuck. Leading then would leave
// the SLA to nobody, so the campaign gives the lease up and asks again only once every
// job runs.
func (e *Engine) stalled() error {
	now := e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, j := range e.jobs() {
		last, ok := e.alive[j.name]
		if silence, bound := now.Sub(last), e.cfg.workBound(j.every); ok && silence > bound {
			return fmt.Errorf("%s has not run for %s (bound %s): this replica gives up the leader lease and does not campaign until its jobs run",
				j.name, silence.Round(time.Millisecond), bound)
		}
	}
	return nil
}

// Tick runs one pass of both jobs now, whichever replica leads: for tests
// and operators. A tick beside the leader's is harmless: each warning,
// breach and follow-up becomes one event whoever gets to it first.
func (e *Engine) Tick(ctx context.Context) (Result, error) {
	now := e.clock.Now()
	res, err := e.slaPass(ctx, now, nil)
	if err != nil {
		e.count(res)
		return res, err
	}
	fu, err := e.followUpPass(ctx, now, nil)
	res.add(fu)
	e.count(res)
	return res, err
}

// Status reports whether this replica leads and what it has sent.
func (e *Engine) Status() Status {
	token, leader := e.lease.current()
	e.mu.Lock()
	defer e.mu.Unlock()
	return Status{Replica: e.cfg.Replica, Leader: leader, Token: token, Sent: e.sent}
}

func (e *Engine) count(r Result) {
	e.mu.Lock()
	e.sent.add(r)
	e.mu.Unlock()
}

// slaPass turns every due warning and breach into events, a batch per
// transaction; with a lease, each transaction is fenced by it.
func (e *Engine) slaPass(ctx context.Context, now time.Time, l *lease) (Result, error) {
	return e.pass(ctx, now, l, "sla tick", "select warnings, breaches from public.sla_tick($1::timestamptz, $2::integer)",
		func(warnings, breaches int) Result { return Result{Warnings: warnings, Breaches: breaches} })
}

// followUpPass turns every due and overdue follow-up into events.
func (e *Engine) followUpPass(ctx context.Context, now time.Time, l *lease) (Result, error) {
	return e.pass(ctx, now, l, "follow-up tick", "select due, overdue from public.follow_up_tick($1::timestamptz, $2::integer)",
		func(due, overdue int) Result { return Result{FollowUpsDue: due, FollowUpsOverdue: overdue} })
}

// pass runs a tick function (now, batch size) that returns two counts, a
// batch per transaction, until a batch is short of the size in both (or
// maxBatches ran), and adds up what it made.
func (e *Engine) pass(ctx context.Context, now time.Time, l *lease, what, query string, result func(a, b int) Result) (Result, error) {
	var total Result
	for range maxBatches {
		var a, b int
		err := e.batch(ctx, l, func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, query, now, e.cfg.BatchSize).Scan(&a, &b)
		})
		if err != nil {
			return total, fmt.Errorf("%s: %w", what, err)
		}
		total.add(result(a, b))
		if a < e.cfg.BatchSize && b < e.cfg.BatchSize {
			break
		}
	}
	return total, nil
}

// batch runs fn in one transaction, behind the lease's fence when l is set.
// A batch that has begun is finished even when ctx ends (it is short, and
// bounded by the lease), so a shutdown never waits on a half-done batch.
func (e *Engine) batch(ctx context.Context, l *lease, fn func(context.Context, pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer e.progress.Begin()()
	if job, ok := ctx.Value(jobKey{}).(string); ok {
		defer e.ran(job)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Lease)
	defer cancel()
	return pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		if l != nil {
			if err := l.fence(ctx, tx); err != nil {
				return err
			}
		}
		return fn(ctx, tx)
	})
}
