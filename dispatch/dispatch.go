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

// maxClaims is how many claims a dispatcher has on their way at once.
const maxClaims = 2

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

	slots map[leadrelay.Channel]chan struct{} // one token per send in flight
	freed chan struct{}                       // a slot came free

	mu       sync.Mutex
	inflight map[string]outbox.Delivery // by log id: claimed, outcome not yet recorded

	rec recorder

	progress *health.Progress // Run's loop beats; claims and sends are steps
}

// New returns a Dispatcher delivering through senders. With no sender of a
// real channel, alerts go to console instead (make run's default), routed as
// production would route them. Every time it records comes from clock (nil:
// the real one).
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
	d := &Dispatcher{
		cfg:      cfg,
		store:    store,
		senders:  map[leadrelay.Channel]notifiers.Sender{},
		clock:    clock,
		log:      log,
		wake:     make(chan struct{}, 1),
		slots:    map[leadrelay.Channel]chan struct{}{},
		freed:    make(chan struct{}, 1),
		inflight: map[string]outbox.Delivery{},
		progress: cfg.Health.Watch("dispatcher", cfg.progressBound()),
	}
	for _, s := range senders {
		if s.Channel() == notifiers.ChannelConsole {
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

// Run delivers until ctx ends. It claims whenever woken, and again whenever a
// send frees a slot of a channel that may have more work; each claim takes no
// more deliveries than there are free slots, so sends in flight stay within
// Concurrency per channel. Every Lease/3 it renews the leases of its sends in
// flight. When ctx ends it claims nothing more; sends in flight finish (each
// bounded by SendTimeout) and are recorded.
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
	heartbeat := time.NewTicker(max(d.cfg.Lease/3, time.Millisecond))
	defer heartbeat.Stop()

	// Channels that may have due work: all of them when woken or when a
	// claim opened as many new events as it could; after a claim, those that
	// filled every slot they asked for. A channel with no free slot keeps its
	// mark until one frees.
	maybe := map[leadrelay.Channel]bool{}
	wakes := 0 // a claim that started before the last wake cannot clear its marks
	// New events may be waiting to be opened: until an open finds fewer than
	// it could, with no wake since it started. Claims in between only claim
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
	// Claims run in the background, at most maxClaims at once, so a claim
	// on its way to the database does not hold back the next: each takes
	// only the slots free when it starts.
	type claimed struct {
		wakes  int
		limits []int
		open   int
		got    map[leadrelay.Channel]int
		opened int
		err    error
	}
	results := make(chan claimed, maxClaims)
	running := 0
	// The start-up claim runs alone: when it reports (and /readyz says the
	// dispatcher works), no other claim begun before that is still looking.
	settled := false
	defer func() {
		for ; running > 0; running-- {
			<-results
		}
	}()
	for {
		if ctx.Err() != nil {
			return
		}
		d.progress.Beat()
		if running < maxClaims && (settled || running == 0) {
			if limits, asked := d.reserve(maybe); asked > 0 {
				running++
				started := wakes
				open := 0
				if fresh {
					open = d.openLimit()
				}
				go func() {
					defer d.progress.Begin()()
					got, opened, err := d.claim(ctx, limits, open, &sends)
					results <- claimed{started, limits, open, got, opened, err}
				}()
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
			wakeAll()
		case <-d.freed:
		case <-heartbeat.C:
			d.renew(ctx)
		case r := <-results:
			running--
			settled = true
			if ctx.Err() != nil {
				return
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
					maybe[ch] = r.got[ch] == r.limits[i]
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
// records each outcome; it returns when all are recorded, with the number
// of deliveries claimed (console: of events shown). For tests and tools; Run
// is the loop.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	if d.console != nil {
		return d.consoleOnce(ctx)
	}
	maybe := map[leadrelay.Channel]bool{}
	for _, ch := range d.channels {
		maybe[ch] = true
	}
	limits, asked := d.reserve(maybe)
	if asked == 0 {
		return 0, nil
	}
	var sends sync.WaitGroup
	got, _, err := d.claim(ctx, limits, d.openLimit(), &sends)
	sends.Wait()
	n := 0
	for _, c := range got {
		n += c
	}
	return n, err
}

// reserve takes the free slots of the channels in maybe, returning the
// claim's limit per channel (in d.channels' order) and their sum. The
// slots stay taken by the sends the claim starts; claim returns the rest.
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

func (d *Dispatcher) freeSlot(ch leadrelay.Channel) {
	<-d.slots[ch]
	select {
	case d.freed <- struct{}{}:
	default:
	}
}

// openLimit is how many new events a claim opens at most. Opening is cheap
// per event and done in bulk, ahead of the slots: under a backlog the opened
// deliveries wait, due, for the next claims, which then only take them; with
// no backlog there is a lead or two to open.
func (d *Dispatcher) openLimit() int { return d.cfg.BatchSize }

// claim opens up to open new events and claims up to limits deliveries, then
// starts a send for each; the slots reserved beyond what came back are freed.
// It returns the deliveries claimed per channel and the events opened.
func (d *Dispatcher) claim(ctx context.Context, limits []int, open int, sends *sync.WaitGroup) (map[leadrelay.Channel]int, int, error) {
	// A claim runs to its end even when ctx ends meanwhile: what it took is
	// then handed back at once rather than left leased.
	claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SendTimeout)
	deliveries, opened, err := d.store.Claim(claimCtx, d.cfg.Replica, d.cfg.Lease, d.channels, limits, open, d.clock.Now())
	cancel()
	got := map[leadrelay.Channel]int{}
	for _, dl := range deliveries {
		got[dl.Channel]++
	}
	for i, ch := range d.channels {
		for range limits[i] - got[ch] {
			d.freeSlot(ch)
		}
	}
	if err != nil {
		return got, opened, err
	}
	if ctx.Err() != nil {
		d.release(ctx, deliveries)
		return got, opened, ctx.Err()
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
	return got, opened, nil
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
		d.freeSlot(dl.Channel)
	}
}

// RenewLeases extends the leases of the sends in flight (Run does it every
// Lease/3), so no other replica takes over a send that is still alive.
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

// deliver sends one claimed delivery, records its outcome and frees its slot
// once the outcome is committed (until then it counts as in flight).
func (d *Dispatcher) deliver(ctx context.Context, dl outbox.Delivery) {
	defer d.progress.Begin()()
	start := time.Now()
	out := d.attempt(ctx, dl)
	d.observe(dl.Channel, out.Status, start)
	if err := d.rec.record(ctx, d, out); err != nil {
		d.log.ErrorContext(ctx, "recording a delivery's outcome failed; it is sent again when its lease runs out",
			"channel", dl.Channel, "event", dl.EventID, "attempt", dl.Attempt, "status", out.Status, "err", err)
	}
	d.mu.Lock()
	delete(d.inflight, dl.LogID)
	d.mu.Unlock()
	d.freeSlot(dl.Channel)
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

// recorder writes outcomes as they come, batching those that arrive while
// writes are under way (group commit): one transaction for a lone outcome, a
// few for a burst, at most maxWriters transactions at once. An outcome that
// finds a writer free writes; a writer whose own outcome is written hands
// what is waiting to one of the waiters, so its send's slot frees at once.
type recorder struct {
	mu      sync.Mutex
	queue   []*pending
	writers int
}

// maxWriters is how many outcome transactions a dispatcher has on their way
// at once.
const maxWriters = 2

type pending struct {
	out    outbox.Outcome
	done   chan result
	writer bool // its own goroutine is a writer: it waits for no lead
}

type result struct {
	err  error
	lead bool // the receiver writes the next batch
}

func (r *recorder) record(ctx context.Context, d *Dispatcher, out outbox.Outcome) error {
	p := &pending{out: out, done: make(chan result, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, p)
	if r.writers < maxWriters {
		r.writers++
		p.writer = true
	} else {
		r.mu.Unlock()
		res := <-p.done
		if !res.lead {
			return res.err
		}
		r.mu.Lock()
	}
	for {
		n := min(len(r.queue), maxRecordBatch)
		batch := slices.Clone(r.queue[:n])
		r.queue = r.queue[n:]
		r.mu.Unlock()
		err := d.write(ctx, batch)
		mine := false
		for _, b := range batch {
			if b == p {
				mine = true
				continue
			}
			b.done <- result{err: err}
		}
		r.mu.Lock()
		if len(r.queue) == 0 || mine {
			// Hand over to a waiter, if one waits; else one writer fewer.
			if i := slices.IndexFunc(r.queue, func(q *pending) bool { return !q.writer }); mine && i >= 0 {
				r.queue[i].writer = true // under the lock: no second writer hands it the lead
				r.queue[i].done <- result{lead: true}
			} else {
				r.writers--
			}
			r.mu.Unlock()
			if !mine {
				// Another writer took ours into its batch; its result
				// comes from there.
				return (<-p.done).err
			}
			return err
		}
	}
}

// write records a batch of outcomes, retrying for up to a lease when the
// database fails: an outcome stays valid as long as nobody has taken its
// delivery over, which nobody does before the lease ends.
func (d *Dispatcher) write(ctx context.Context, batch []*pending) error {
	outs := make([]outbox.Outcome, len(batch))
	for i, b := range batch {
		outs[i] = b.out
	}
	deadline := time.Now().Add(d.cfg.Lease)
	wait := 50 * time.Millisecond
	for {
		writeCtx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		_, err := d.store.Record(writeCtx, outs, d.channels, d.clock.Now())
		cancel()
		if err == nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		d.log.WarnContext(ctx, "recording outcomes failed; trying again", "outcomes", len(outs), "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
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
