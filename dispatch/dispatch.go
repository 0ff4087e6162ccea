// Package dispatch delivers the outbox. It opens each new lead_events row's
// deliveries (one per routed channel), then claims deliveries one by one,
// each under a lease of its own, only as many as it can send at once (a few
// per channel), sends each through package notifiers and records each
// outcome as soon as it is known. So a crash costs at most the sends in
// flight, and whoever takes over knows which those were. Doorbells (the
// signed webhook, LISTEN/NOTIFY, a periodic sweep) only wake it; the outbox
// rows are the truth, so a missed or repeated doorbell changes nothing.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/database/outbox"
	"github.com/truenester/leadrelay/notifiers"
	"github.com/truenester/leadrelay/ops/health"
)

// Config tunes a Dispatcher; zero fields take the defaults (WithDefaults),
// and New refuses what it cannot run with.
type Config struct {
	Replica     string          // this replica's name in leases; required
	Lease       time.Duration   // how long a claim holds a delivery, renewed while it is sent; default DefaultLease
	BatchSize   int             // new events opened per claim at most; default 100
	Concurrency int             // sends in flight per channel; default DefaultConcurrency
	SendTimeout time.Duration   // bound of one attempt on one channel; default notifiers.DefaultSendTimeout
	RetryDelays []time.Duration // waits before retries; default DefaultRetryDelays
	Jitter      float64         // ± fraction of each wait; default 0.2
	FrontendURL string          // for the admin-panel link in alerts
	// Health hears whether claiming ("dispatcher") and LISTEN ("listen")
	// work; it logs their changes of state. nil: nobody listens.
	Health *health.Registry
	// Observer hears of every attempt (metrics); nil: none.
	Observer Observer
}

// DefaultRetryDelays span well over an hour (82.5 minutes, 7 attempts), so an
// hour-long outage of a channel costs no alert.
var DefaultRetryDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, 30 * time.Minute}

// DefaultConcurrency is how many sends each channel has in flight by default:
// enough to keep a backlog moving while each slot waits for a claim and a
// record (a few milliseconds each, tens on a loaded machine), few enough
// that a crash repeats little (the old rounds had up to 100 events per
// channel in flight, per claim loop).
const DefaultConcurrency = 32

// maxRecordBatch bounds the outcomes written in one transaction.
const maxRecordBatch = 64

// A replica announces itself (its channels, that it is live) every
// window/announceShare of its clock, the window being how long the database
// counts it live unannounced (public.replica_window, a minute): so it stays
// live through a few failed announcements. unservedBatch bounds the
// deliveries one announcement fails because no live replica has their
// channel; a full batch is followed by the next at the next wake.
const (
	announceShare = 6
	unservedBatch = 100
)

// How many turns (one transaction each) a dispatcher has on their way at
// once: turns that record outcomes (and claim for their slots), and turns
// that claim for free slots (and open new events). A wake never waits behind
// outcomes being written. One recording turn at a time: the outcomes that
// come while it runs share the next one, so under load each turn carries
// twice as many and its fixed cost (a statement's start, its plan's locks)
// is paid half as often (a 20,000-lead backlog: 0.35 -> 0.18 calls and SQL
// 0.53 -> 0.34 ms per lead, against two at a time).
const (
	maxRecording = 1
	maxClaiming  = 2
)

// Bounds of the settings, for New and ConfigFromEnv alike.
const (
	maxBatchSize = 10000
	maxRetries   = 20
)

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	c.Concurrency = min(c.Concurrency, notifiers.MaxConcurrency)
	if c.SendTimeout == 0 {
		c.SendTimeout = notifiers.DefaultSendTimeout
	}
	if c.RetryDelays == nil {
		c.RetryDelays = DefaultRetryDelays
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	return c
}

// validate reports every setting a Dispatcher cannot run with, naming the
// variable that sets it.
func (c Config) validate() error {
	var errs []error
	if c.SendTimeout <= 0 || c.Lease <= c.SendTimeout {
		errs = append(errs, fmt.Errorf("NOTIFY_LEASE (%s) must be longer than NOTIFY_SEND_TIMEOUT (%s), or a slow send loses its lease", c.Lease, c.SendTimeout))
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("NOTIFY_BATCH_SIZE (%d) is not from 1 to %d", c.BatchSize, maxBatchSize))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("NOTIFY_CONCURRENCY (%d) is not from 1 to %d", c.Concurrency, notifiers.MaxConcurrency))
	}
	if len(c.RetryDelays) > maxRetries || slices.ContainsFunc(c.RetryDelays, func(d time.Duration) bool { return d <= 0 }) {
		errs = append(errs, fmt.Errorf("NOTIFY_RETRY_DELAYS (%v) must be at most %d positive waits", c.RetryDelays, maxRetries))
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("dispatch: Jitter (%g) is not a fraction from 0 to 1", c.Jitter))
	}
	return errors.Join(errs...)
}

// Dispatcher delivers due events. It is safe for concurrent use.
type Dispatcher struct {
	cfg      Config
	store    *outbox.Store
	senders  map[leadrelay.Channel]notifiers.Sender
	channels []leadrelay.Channel // the configured channels, for the SQL routes
	console  notifiers.Sender    // when no channel is configured
	clock    clockwork.Clock
	log      *slog.Logger
	wake     chan struct{}
	ready    chan struct{} // an outcome waits to be recorded

	// One token per send started whose outcome is not yet committed: taken
	// before the claim, given back (or handed to a claim committed in the
	// same transaction) once the outcome is.
	slots map[leadrelay.Channel]chan struct{}

	mu       sync.Mutex
	inflight map[string]outbox.Delivery // by log id: claimed, outcome not yet recorded
	outcomes []queued                   // known, not yet recorded, oldest first

	progress *health.Progress // Run's loop beats; turns and sends are steps

	nextAnnounce  time.Time     // Run's (or RunOnce's): when to announce this replica again
	announceEvery time.Duration // the spacing of announcements, once one succeeded
}

// queued is an outcome waiting for a turn to record it; its delivery's slot
// stays taken meanwhile.
type queued struct {
	out     outbox.Outcome
	channel leadrelay.Channel
	since   time.Time // first queued: it is given up a lease later
}

// New returns a Dispatcher delivering through senders. With no sender of a
// real channel, alerts go to console instead (make run's default), routed as
// production would route them; with neither, New refuses: it would open
// every new event for no channel, which marks it processed, alerted nowhere.
// Every time it records, and the spacing of its lease renewals and retried
// recordings, come from clock (nil: the real one).
func New(store *outbox.Store, senders []notifiers.Sender, console notifiers.Sender, cfg Config, clock clockwork.Clock, log *slog.Logger) (*Dispatcher, error) {
	cfg = cfg.WithDefaults()
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if cfg.Replica == "" {
		return nil, errors.New("dispatch: Replica (this replica's name in leases) is empty")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	isChannel := func(s notifiers.Sender) bool { return s.Channel() != notifiers.ChannelConsole }
	if console == nil && !slices.ContainsFunc(senders, isChannel) {
		return nil, errors.New("dispatch: no channel to deliver to and no console: every new event would be marked processed, alerted nowhere")
	}
	d := &Dispatcher{
		cfg:      cfg,
		store:    store,
		senders:  map[leadrelay.Channel]notifiers.Sender{},
		clock:    clock,
		log:      log,
		wake:     make(chan struct{}, 1),
		ready:    make(chan struct{}, 1),
		slots:    map[leadrelay.Channel]chan struct{}{},
		inflight: map[string]outbox.Delivery{},
		progress: cfg.Health.Watch("dispatcher", cfg.progressBound()),
	}
	for _, s := range senders {
		if !isChannel(s) {
			continue
		}
		ch := s.Channel()
		d.senders[ch] = s
		d.channels = append(d.channels, ch)
		d.slots[ch] = make(chan struct{}, d.cfg.Concurrency)
	}
	slices.Sort(d.channels)
	if len(d.senders) == 0 {
		d.console = console
	}
	return d, nil
}

// Replica is the name this dispatcher holds leases under.
func (d *Dispatcher) Replica() string { return d.cfg.Replica }

// Wake asks the dispatcher to look for due events now. It never blocks; many
// wakes while one is pending count as one.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. It works in turns, each one transaction: the
// outcomes known so far are recorded, new events opened (after a wake), and
// deliveries claimed for the free slots of the channels that may have work,
// the slots of the outcomes being recorded included (the outcome and the
// claim that reuses its slot commit together). Each turn takes no more
// deliveries than there are slots, so sends started and not recorded stay
// within Concurrency per channel. A turn starts whenever woken, when an
// outcome is known, and when a slot frees; at most maxRecording turns that
// record and maxClaiming that only claim are on their way at once, so
// outcomes that come meanwhile share the next one's commit. At least every
// Lease/3 of its clock (and every sixth of the replica window) it renews the
// leases of its sends in flight and announces itself (the heartbeat).
// When ctx ends it claims nothing more; sends in flight finish (each bounded
// by SendTimeout) and are recorded.
func (d *Dispatcher) Run(ctx context.Context) {
	report := d.progress.Report
	if d.cfg.Health == nil {
		report = func(err error) {
			if err != nil {
				d.log.ErrorContext(ctx, "claiming deliveries failed; the next doorbell or sweep tries again", "err", err)
			}
		}
	}
	if d.console != nil {
		d.runConsole(ctx, report)
		return
	}
	var sends sync.WaitGroup
	defer sends.Wait()
	// The heartbeat renews leases every third of one and announces the
	// replica too, so it beats at least as often as an announcement is due (a
	// sixth of the window the database names, known once one succeeded): with
	// a long NOTIFY_LEASE and a long NOTIFY_SWEEP_INTERVAL an idle replica
	// would otherwise drop out of the fleet between announcements. The first
	// announcement comes before its first open, so the others open for its
	// channels.
	beat := d.cfg.renewEvery()
	if every := d.announce(ctx); every > 0 {
		beat = min(beat, every)
	}
	heartbeat := d.clock.NewTicker(beat)
	defer heartbeat.Stop()
	announce := func() {
		if every := d.announce(ctx); every > 0 && every < beat {
			beat = every
			heartbeat.Reset(beat)
		}
	}

	// Channels that may have due work: all of them when woken or when a
	// turn opened as many new events as it could; after a turn, those that
	// filled every slot they asked for. A channel with no free slot keeps its
	// mark until one frees.
	maybe := map[leadrelay.Channel]bool{}
	wakes := 0 // a turn that started before the last wake cannot clear its marks
	// New events may be waiting to be opened: until an open finds fewer than
	// it could, with no wake since it started. Turns in between only claim
	// (under a backlog, most of them: an empty open is a statement for nothing).
	fresh := false
	wakeAll := func() {
		wakes++
		fresh = true
		for _, ch := range d.channels {
			maybe[ch] = true
		}
	}
	wakeAll()
	results := make(chan turnResult, maxRecording+maxClaiming)
	running, recording := 0, 0
	// The start-up turn runs alone: when it reports (and /readyz says the
	// dispatcher works), no other claim begun before that is still looking.
	settled := false
	retry := holdoff{clock: d.clock}
	defer retry.stop()
	defer func() {
		for ; running > 0; running-- {
			<-results
		}
	}()
	launch := func(t turn) {
		running++
		if len(t.outcomes) > 0 {
			recording++
		}
		go func() {
			defer d.progress.Begin()()
			results <- d.turn(ctx, t, &sends)
		}()
	}
	for {
		stopping := ctx.Err() != nil
		if stopping && running == 0 && d.idle() {
			return
		}
		d.progress.Beat()
		if settled || running == 0 {
			// Outcomes known so far, with a claim for their slots on the
			// channels that may have work.
			if recording < maxRecording && !retry.active() {
				if outs := d.takeOutcomes(); len(outs) > 0 {
					t := turn{wakes: wakes, outcomes: outs, limits: make([]int, len(d.channels)), transferred: make([]int, len(d.channels))}
					for _, q := range outs {
						if i := slices.Index(d.channels, q.channel); !stopping && maybe[q.channel] {
							t.limits[i]++ // the slot goes to the claim committed with the outcome
							t.transferred[i]++
						}
					}
					launch(t)
					continue
				}
			}
			// A claim for the free slots, opening new events after a wake.
			if running-recording < maxClaiming && !stopping {
				if limits, asked := d.reserve(maybe); asked > 0 {
					t := turn{wakes: wakes, limits: limits, transferred: make([]int, len(d.channels))}
					if fresh {
						t.open = d.openLimit()
					}
					launch(t)
					continue
				}
			}
		}
		var done <-chan struct{}
		if !stopping {
			done = ctx.Done()
		}
		select {
		case <-done:
		case <-d.wake:
			if !stopping {
				wakeAll()
				announce()
			}
		case <-d.ready:
		case <-retry.C():
		case <-heartbeat.Chan():
			d.renew(ctx)
			if !stopping {
				announce()
			}
		case r := <-results:
			running--
			if len(r.outcomes) > 0 {
				recording--
			}
			settled = true
			d.settle(ctx, r, &retry)
			if stopping {
				continue
			}
			report(r.err)
			if r.wakes != wakes {
				continue // woken since it started: what it found may be stale
			}
			if r.err != nil {
				clear(maybe)
				continue
			}
			for i, ch := range d.channels {
				if r.limits[i] > 0 {
					// A turn that opened nothing while new events may wait
					// leaves the mark to a claim that opens them.
					maybe[ch] = r.got[ch] == r.limits[i] || (r.open == 0 && fresh)
				}
			}
			switch {
			case r.open > 0 && r.opened == r.open:
				// More new events may be waiting. (Fewer opened means every
				// due event is open, and the claim, after the opening in the
				// same transaction, took what its limits allowed.)
				wakeAll()
			case r.open > 0:
				fresh = false
			}
		}
	}
}

// runConsole shows new events on the console whenever woken.
func (d *Dispatcher) runConsole(ctx context.Context, report health.Report) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		for ctx.Err() == nil {
			n, err := d.consoleOnce(ctx)
			report(err)
			if err != nil || n < d.cfg.BatchSize {
				break
			}
		}
	}
}

// RunOnce claims what every channel's free slots can take, sends it and
// records each outcome as it comes; it returns when all are recorded, with
// the number of deliveries claimed (console: of events shown). For tests and
// tools; Run is the loop.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	if d.console != nil {
		return d.consoleOnce(ctx)
	}
	d.announce(ctx)
	maybe := map[leadrelay.Channel]bool{}
	for _, ch := range d.channels {
		maybe[ch] = true
	}
	limits, asked := d.reserve(maybe)
	if asked == 0 {
		return 0, nil
	}
	var sends sync.WaitGroup
	defer sends.Wait()
	r := d.turn(ctx, turn{limits: limits, transferred: make([]int, len(d.channels)), open: d.openLimit()}, &sends)
	retry := holdoff{clock: d.clock}
	defer retry.stop()
	for !d.idle() {
		if !retry.active() {
			if outs := d.takeOutcomes(); len(outs) > 0 {
				t := turn{outcomes: outs, limits: make([]int, len(d.channels)), transferred: make([]int, len(d.channels))}
				d.settle(ctx, d.turn(ctx, t, &sends), &retry)
				continue
			}
		}
		select {
		case <-d.ready:
		case <-retry.C():
		}
	}
	n := 0
	for _, c := range r.got {
		n += c
	}
	return n, r.err
}

// reserve takes the free slots of the channels in maybe, returning the
// claim's limit per channel (in d.channels' order) and their sum. The
// slots stay taken by the sends the claim starts; the turn frees the rest.
func (d *Dispatcher) reserve(maybe map[leadrelay.Channel]bool) ([]int, int) {
	limits := make([]int, len(d.channels))
	total := 0
	for i, ch := range d.channels {
		if !maybe[ch] {
			continue
		}
	take:
		for {
			select {
			case d.slots[ch] <- struct{}{}:
				limits[i]++
			default:
				break take
			}
		}
		total += limits[i]
	}
	return limits, total
}

func (d *Dispatcher) freeSlots(ch leadrelay.Channel, n int) {
	for range n {
		<-d.slots[ch]
	}
}

// openLimit is how many new events a turn opens at most. Opening is cheap
// per event and done in bulk, ahead of the slots: under a backlog the opened
// deliveries wait, due, for the next turns, which then only claim them; with
// no backlog there is a lead or two to open.
func (d *Dispatcher) openLimit() int { return d.cfg.BatchSize }

// turn is one transaction of the dispatcher: outcomes recorded, up to open
// new events opened, up to limits deliveries claimed (per channel, in
// d.channels' order; transferred of them on the slots of the outcomes).
type turn struct {
	wakes       int
	outcomes    []queued
	limits      []int
	transferred []int
	open        int
}

type turnResult struct {
	turn
	got       map[leadrelay.Channel]int
	opened    int
	committed bool // its outcomes are recorded (err may still say ctx ended)
	err       error
}

// turn runs t and starts a send for each delivery it claimed. Recorded
// outcomes give back their slots, or hand them to the claim; so do the
// reserved slots no delivery came for. When t fails, nothing is recorded or
// claimed, and its outcomes keep their slots until a later turn records them.
func (d *Dispatcher) turn(ctx context.Context, t turn, sends *sync.WaitGroup) turnResult {
	r := turnResult{turn: t, got: map[leadrelay.Channel]int{}}
	outs := make([]outbox.Outcome, len(t.outcomes))
	for i, q := range t.outcomes {
		outs[i] = q.out
	}
	// A turn runs to its end even when ctx ends meanwhile: what it claimed is
	// then handed back at once rather than left leased.
	turnCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SendTimeout)
	deliveries, opened, err := d.store.RecordAndClaim(turnCtx, d.cfg.Replica, d.cfg.Lease, d.channels, outs, t.limits, t.open, d.clock.Now())
	cancel()
	if err != nil {
		for i, ch := range d.channels {
			d.freeSlots(ch, t.limits[i]-t.transferred[i])
		}
		r.err = err
		return r
	}
	r.opened, r.committed = opened, true
	for _, dl := range deliveries {
		r.got[dl.Channel]++
	}
	d.mu.Lock()
	for _, q := range t.outcomes {
		delete(d.inflight, q.out.LogID)
	}
	d.mu.Unlock()
	for i, ch := range d.channels {
		d.freeSlots(ch, t.limits[i]-r.got[ch])
	}
	transferred := slices.Clone(t.transferred)
	for _, q := range t.outcomes {
		if i := slices.Index(d.channels, q.channel); transferred[i] > 0 {
			transferred[i]-- // its slot went to the claim
		} else {
			d.freeSlots(q.channel, 1)
		}
	}
	if ctx.Err() != nil {
		d.release(ctx, deliveries)
		r.err = ctx.Err()
		return r
	}
	sendCtx := context.WithoutCancel(ctx)
	d.mu.Lock()
	for _, dl := range deliveries {
		d.inflight[dl.LogID] = dl
	}
	d.mu.Unlock()
	for _, dl := range deliveries {
		sends.Go(func() { d.deliver(sendCtx, dl) })
	}
	return r
}

// release hands claimed deliveries back unsent.
func (d *Dispatcher) release(ctx context.Context, deliveries []outbox.Delivery) {
	if len(deliveries) == 0 {
		return
	}
	releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SendTimeout)
	defer cancel()
	if err := d.store.Release(releaseCtx, d.cfg.Replica, deliveries); err != nil {
		d.log.WarnContext(ctx, "could not hand back unsent deliveries; they are due again when their lease runs out", "err", err)
	}
	for _, dl := range deliveries {
		d.freeSlots(dl.Channel, 1)
	}
}

// announce tells the database, when it is time, that this replica is live
// with its channels (every replica then opens new events for them), and
// fails what no live replica can send (a delivery of a channel removed from
// the deployment, say), a batch at a time. Called on the wakes and
// heartbeats of Run's loop, so at most every window/announceShare of the
// clock, plus after a full batch of failures. It returns the spacing of
// announcements once one succeeded (a sixth of the window), else 0.
func (d *Dispatcher) announce(ctx context.Context) time.Duration {
	now := d.clock.Now()
	if now.Before(d.nextAnnounce) {
		return 0
	}
	announceCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SendTimeout)
	defer cancel()
	window, failed, err := d.store.Announce(announceCtx, d.cfg.Replica, d.channels, unservedBatch, now)
	if err != nil {
		// Tried again a heartbeat later (within the spacing once one
		// succeeded); meanwhile its row ages, and after a window the others
		// stop opening events for its channels.
		retry := d.cfg.renewEvery()
		if d.announceEvery > 0 {
			retry = min(retry, d.announceEvery)
		}
		d.nextAnnounce = now.Add(retry)
		d.log.WarnContext(ctx, "announcing this replica's channels failed", "err", err)
		return 0
	}
	d.announceEvery = window / announceShare
	d.nextAnnounce = now.Add(d.announceEvery)
	if failed > 0 {
		d.log.WarnContext(ctx, "deliveries failed: no live replica has their channel; replay them once one has",
			"failed", failed, "this_replica_has", d.channels)
	}
	if failed == unservedBatch {
		d.nextAnnounce = now // more may wait: the next wake goes on
	}
	return d.announceEvery
}

// RenewLeases extends the leases of the sends in flight to a Lease from the
// clock's time (Run does it at least every Lease/3 of the clock), so no other replica
// takes over a send that is still alive.
func (d *Dispatcher) RenewLeases(ctx context.Context) (int, error) {
	d.mu.Lock()
	list := make([]outbox.Delivery, 0, len(d.inflight))
	for _, dl := range d.inflight {
		list = append(list, dl)
	}
	d.mu.Unlock()
	if len(list) == 0 {
		return 0, nil
	}
	return d.store.Renew(ctx, d.cfg.Replica, list, d.cfg.Lease, d.clock.Now())
}

func (d *Dispatcher) renew(ctx context.Context) {
	renewCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Lease/3)
	defer cancel()
	if _, err := d.RenewLeases(renewCtx); err != nil {
		d.log.WarnContext(ctx, "renewing delivery leases failed", "err", err)
	}
}

// deliver sends one claimed delivery and queues its outcome for the next
// turn; its slot stays taken until that turn commits it.
func (d *Dispatcher) deliver(ctx context.Context, dl outbox.Delivery) {
	defer d.progress.Begin()()
	start := time.Now()
	out := d.attempt(ctx, dl)
	d.observe(dl.Channel, out.Status, start)
	d.mu.Lock()
	d.outcomes = append(d.outcomes, queued{out: out, channel: dl.Channel, since: d.clock.Now()})
	d.mu.Unlock()
	select {
	case d.ready <- struct{}{}:
	default:
	}
}

// takeOutcomes takes up to maxRecordBatch queued outcomes, oldest first.
func (d *Dispatcher) takeOutcomes() []queued {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := min(len(d.outcomes), maxRecordBatch)
	taken := slices.Clone(d.outcomes[:n])
	d.outcomes = d.outcomes[n:]
	return taken
}

// requeue puts back outcomes whose turn failed, to be recorded by a later
// one. An outcome stays valid as long as nobody has taken its delivery over,
// which nobody does before the lease ends: one that has waited a lease is
// given up, and its delivery is sent again when the lease runs out.
func (d *Dispatcher) requeue(ctx context.Context, qs []queued, err error) {
	var keep []queued
	for _, q := range qs {
		if d.clock.Since(q.since) < d.cfg.Lease { // the lease's own clock
			keep = append(keep, q)
			continue
		}
		d.log.ErrorContext(ctx, "recording a delivery's outcome failed; it is sent again when its lease runs out",
			"channel", q.channel, "log_id", q.out.LogID, "attempt", q.out.Attempt, "status", q.out.Status, "err", err)
		d.mu.Lock()
		delete(d.inflight, q.out.LogID)
		d.mu.Unlock()
		d.freeSlots(q.channel, 1)
	}
	if len(keep) > 0 {
		d.log.WarnContext(ctx, "recording outcomes failed; trying again", "outcomes", len(keep), "err", err)
	}
	d.mu.Lock()
	d.outcomes = append(keep, d.outcomes...)
	d.mu.Unlock()
}

// settle puts back the outcomes of a turn that could not record them and
// spaces the next try; a turn that went through ends the wait.
func (d *Dispatcher) settle(ctx context.Context, r turnResult, retry *holdoff) {
	switch {
	case !r.committed && len(r.outcomes) > 0:
		d.requeue(ctx, r.outcomes, r.err)
		retry.failed()
	case r.err == nil:
		retry.succeeded()
	}
}

// idle says whether every delivery claimed has its outcome recorded (or
// given up).
func (d *Dispatcher) idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.inflight) == 0
}

// holdoff spaces the turns that retry outcomes a failed turn could not
// record: 50 ms after the first failure, doubling up to 5 s, on the
// dispatcher's clock.
type holdoff struct {
	clock clockwork.Clock
	wait  time.Duration
	until time.Time
	timer clockwork.Timer
}

func (h *holdoff) failed() {
	h.stop()
	h.wait = min(max(2*h.wait, 50*time.Millisecond), 5*time.Second)
	h.until = h.clock.Now().Add(h.wait)
	h.timer = h.clock.NewTimer(h.wait)
}

func (h *holdoff) succeeded() {
	h.stop()
	h.wait, h.until = 0, time.Time{}
}

func (h *holdoff) active() bool { return h.clock.Now().Before(h.until) }

// C fires when the wait is over; nil (never) when there is none.
func (h *holdoff) C() <-chan time.Time {
	if h.timer == nil {
		return nil
	}
	return h.timer.Chan()
}

func (h *holdoff) stop() {
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
}

func (d *Dispatcher) attempt(ctx context.Context, dl outbox.Delivery) outbox.Outcome {
	out := outbox.Outcome{LogID: dl.LogID, Attempt: dl.Attempt}
	sender, ok := d.senders[dl.Channel]
	if !ok {
		out.Status, out.Error = leadrelay.DeliveryFailed, string(dl.Channel)+" is not configured on "+d.cfg.Replica
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	err := sender.Send(ctx, d.alert(dl.EventID, dl.EventType, dl.Lead))
	if err == nil {
		out.Status = leadrelay.DeliverySent
		return out
	}
	out.Error = err.Error()
	var de *notifiers.DeliveryError
	if errors.As(err, &de) {
		out.Response = de.Response
	}
	status, next := d.next(dl.Attempt, err)
	out.Status = status
	if status == leadrelay.DeliveryPending {
		out.NextAttemptAt = &next
	}
	d.log.WarnContext(ctx, "delivery failed", "channel", dl.Channel, "event", dl.EventID, "attempt", dl.Attempt, "status", status, "err", err)
	return out
}

// next decides what follows a failed attempt (the attempts-th): a retry after
// the configured wait (± jitter, and never sooner than a 429 asked), or the
// end when the failure is permanent or the retries are spent.
func (d *Dispatcher) next(attempts int, err error) (leadrelay.DeliveryStatus, time.Time) {
	if notifiers.IsPermanent(err) || attempts > len(d.cfg.RetryDelays) {
		return leadrelay.DeliveryFailed, time.Time{}
	}
	wait := d.cfg.RetryDelays[attempts-1]
	wait += time.Duration((rand.Float64()*2 - 1) * d.cfg.Jitter * float64(wait))
	if ra := notifiers.RetryAfter(err); ra > wait {
		wait = ra
	}
	return leadrelay.DeliveryPending, d.clock.Now().Add(wait)
}

// consoleOnce takes up to BatchSize new events and prints those production
// would send somewhere, naming the channels. It returns how many it took.
func (d *Dispatcher) consoleOnce(ctx context.Context) (int, error) {
	events, err := d.store.ClaimConsole(ctx, d.cfg.BatchSize, d.clock.Now())
	if err != nil {
		return 0, err
	}
	for _, e := range events {
		if err := d.console.Send(ctx, d.alert(e.EventID, e.EventType, e.Lead)); err != nil {
			d.log.WarnContext(ctx, "console alert failed", "event", e.EventID, "err", err)
		}
	}
	return len(events), nil
}

// alert turns an event and its lead into what the channels say.
func (d *Dispatcher) alert(eventID string, eventType leadrelay.EventType, l outbox.Lead) notifiers.Alert {
	a := notifiers.Alert{
		EventID:       eventID,
		EventType:     eventType,
		LeadID:        l.ID,
		Name:          deref(l.Name),
		Email:         deref(l.Email),
		Phone:         deref(l.Phone),
		Source:        l.Source,
		Form:          l.Form,
		PropertyID:    deref(l.PropertyID),
		PropertyTitle: deref(l.PropertyTitle),
		Quality:       l.Quality,
		Reasons:       l.ScoreReasons,
		Deadline:      l.SLAResponseDeadline,
		AdminURL:      notifiers.AdminLink(d.cfg.FrontendURL, l.ID),
	}
	if l.FollowUpDate != nil {
		a.Deadline = *l.FollowUpDate
	}
	return a
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
