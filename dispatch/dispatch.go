// Package dispatch delivers the outbox: it claims due lead_events under a
// lease, sends each to its channels through package notifiers, one delivery
// per channel with its own retries, and records every outcome. Doorbells (the
// signed webhook, LISTEN/NOTIFY, a periodic sweep) only wake it; the outbox
// rows are the truth, so a missed or repeated doorbell changes nothing.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/health"
	"github.com/truenester/leadrelay/notifiers"
	"github.com/truenester/leadrelay/outbox"
)

// Config tunes a Dispatcher; zero fields take the defaults.
type Config struct {
	Worker      string          // this replica's name in leases; default host-pid-random
	Lease       time.Duration   // how long a claim holds events; default 2m
	BatchSize   int             // events per claim; default 100
	Workers     int             // claim loops in parallel; default 4
	SendTimeout time.Duration   // bound of one attempt on one channel; default 15s
	RetryDelays []time.Duration // waits before retries; default 30s, 2m, 10m
	Jitter      float64         // ± fraction of each wait; default 0.2
	FrontendURL string          // for the admin-panel link in alerts
	// Health hears whether the rounds ("dispatcher") and LISTEN ("listen")
	// work; it logs their changes of state. nil: nobody listens.
	Health *health.Registry
}

// DefaultRetryDelays is the design's "3x": a first try and three retries.
var DefaultRetryDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute}

func (c Config) withDefaults() Config {
	if c.Worker == "" {
		host, _ := os.Hostname()
		c.Worker = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.IntN(1<<16))
	}
	if c.Lease == 0 {
		c.Lease = 2 * time.Minute
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 15 * time.Second
	}
	if c.RetryDelays == nil {
		c.RetryDelays = DefaultRetryDelays
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	return c
}

// Dispatcher delivers due events. It is safe for concurrent use.
type Dispatcher struct {
	cfg      Config
	store    *outbox.Store
	senders  map[leadrelay.Channel]notifiers.Sender // by notification_channel
	channels []leadrelay.Channel                    // the configured channels, for the SQL routes
	console  notifiers.Sender                       // when no channel is configured
	now      func() time.Time
	log      *slog.Logger
	wake     chan struct{}
}

// New returns a Dispatcher delivering through senders. With no sender of a
// real channel, alerts go to console instead (make run's default).
func New(store *outbox.Store, senders []notifiers.Sender, console notifiers.Sender, cfg Config, now func() time.Time, log *slog.Logger) *Dispatcher {
	d := &Dispatcher{
		cfg:     cfg.withDefaults(),
		store:   store,
		senders: map[leadrelay.Channel]notifiers.Sender{},
		now:     now,
		log:     log,
		wake:    make(chan struct{}, 1),
	}
	for _, s := range senders {
		if s.Channel() == notifiers.ChannelConsole {
			continue
		}
		d.senders[s.Channel()] = s
		d.channels = append(d.channels, s.Channel())
	}
	slices.Sort(d.channels)
	if len(d.senders) == 0 {
		d.console = console
	}
	return d
}

// Worker is the name this dispatcher holds leases under.
func (d *Dispatcher) Worker() string { return d.cfg.Worker }

// Wake asks the dispatcher to look for due events now. It never blocks; many
// wakes while one is pending count as one.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: Workers loops, each claiming a batch whenever
// woken, and again while batches come back full. Deliveries in flight when
// ctx ends are finished (each bounded by SendTimeout) and recorded.
func (d *Dispatcher) Run(ctx context.Context) {
	report := d.cfg.Health.Part("dispatcher")
	if d.cfg.Health == nil {
		report = func(err error) {
			if err != nil {
				d.log.ErrorContext(ctx, "dispatch round failed; the next doorbell or sweep tries again", "err", err)
			}
		}
	}
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-d.wake:
				}
				report(d.drain(ctx))
			}
		})
	}
	d.Wake()
	wg.Wait()
}

// drain claims and delivers batches until a batch comes back short. A
// round goes on when ctx ends (its deliveries are recorded), but never past
// its lease: by then another replica may have its events. A failed round is
// reported to Health (which logs it once per change of state).
func (d *Dispatcher) drain(ctx context.Context) error {
	for ctx.Err() == nil {
		round, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Lease)
		n, err := d.RunOnce(round)
		cancel()
		if err != nil {
			return fmt.Errorf("dispatch round: %w", err)
		}
		if n < d.cfg.BatchSize {
			return nil
		}
		// A full batch: more may be waiting, and another worker can help.
		d.Wake()
	}
	return nil
}

// RunOnce claims one batch of due events, delivers them and records the
// outcomes. It returns the number of events claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	now := d.now()
	events, err := d.store.Claim(ctx, d.cfg.Worker, d.cfg.Lease, d.cfg.BatchSize, now)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	leads, err := d.store.Leads(ctx, events)
	if err != nil {
		return len(events), err
	}
	alerts := make(map[string]notifiers.Alert, len(events))
	for _, e := range events {
		alerts[e.ID] = d.alert(e, leads[e.ID])
	}

	var outcomes []outbox.Outcome
	if d.console != nil {
		d.toConsole(ctx, events, alerts)
	} else {
		deliveries, err := d.store.StartDeliveries(ctx, ids, d.channels, now)
		if err != nil {
			return len(events), err
		}
		outcomes = d.deliver(ctx, deliveries, alerts)
	}
	if _, err := d.store.Finish(ctx, d.cfg.Worker, ids, outcomes, d.now()); err != nil {
		return len(events), err
	}
	return len(events), nil
}

// deliver attempts every delivery at once, each bounded by SendTimeout.
func (d *Dispatcher) deliver(ctx context.Context, deliveries []outbox.Delivery, alerts map[string]notifiers.Alert) []outbox.Outcome {
	outcomes := make([]outbox.Outcome, len(deliveries))
	var wg sync.WaitGroup
	for i, dl := range deliveries {
		wg.Go(func() {
			outcomes[i] = d.attempt(ctx, dl, alerts[dl.EventID])
		})
	}
	wg.Wait()
	return outcomes
}

func (d *Dispatcher) attempt(ctx context.Context, dl outbox.Delivery, a notifiers.Alert) outbox.Outcome {
	sender, ok := d.senders[dl.Channel]
	if !ok {
		// Routed and opened by a replica that had the channel configured.
		return outbox.Outcome{LogID: dl.LogID, Status: leadrelay.DeliveryFailed, Error: string(dl.Channel) + " is not configured on " + d.cfg.Worker}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	err := sender.Send(ctx, a)
	if err == nil {
		return outbox.Outcome{LogID: dl.LogID, Status: leadrelay.DeliverySent}
	}
	out := outbox.Outcome{LogID: dl.LogID, Error: err.Error()}
	var de *notifiers.DeliveryError
	if errors.As(err, &de) {
		out.Response = de.Response
	}
	attempts := dl.Attempts + 1
	status, next := d.next(attempts, err)
	out.Status = status
	if status == leadrelay.DeliveryPending {
		out.NextAttemptAt = &next
	}
	d.log.WarnContext(ctx, "delivery failed", "channel", dl.Channel, "event", dl.EventID, "attempt", attempts, "status", status, "err", err)
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
	return leadrelay.DeliveryPending, d.now().Add(wait)
}

func (d *Dispatcher) toConsole(ctx context.Context, events []outbox.Event, alerts map[string]notifiers.Alert) {
	for _, e := range events {
		if !notifies(e.EventType) {
			continue
		}
		if err := d.console.Send(ctx, alerts[e.ID]); err != nil {
			d.log.WarnContext(ctx, "console alert failed", "event", e.ID, "err", err)
		}
	}
}

// notifies reports whether an event type is one people are told about.
func notifies(eventType leadrelay.EventType) bool {
	return slices.Contains(notifiers.AlertEventTypes(), eventType)
}

// alert turns an event and its lead into what the channels say.
func (d *Dispatcher) alert(e outbox.Event, l outbox.Lead) notifiers.Alert {
	a := notifiers.Alert{
		EventID:       e.ID,
		EventType:     e.EventType,
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
