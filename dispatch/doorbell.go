package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/truenester/leadrelay/database"
)

// Channel is the NOTIFY channel the lead_events insert trigger rings.
const notifyChannel = "lead_events"

// Sweep starts a gocron job that wakes the dispatcher every interval, so
// events no doorbell announced (and retries coming due, and events whose
// lease ran out with a dead replica) are delivered an interval later at most.
// Shut the returned scheduler down to stop it.
func (d *Dispatcher) Sweep(interval time.Duration) (gocron.Scheduler, error) {
	s, err := gocron.NewScheduler()
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	_, err = s.NewJob(gocron.DurationJob(interval), gocron.NewTask(d.Wake),
		gocron.WithName("outbox sweep"), gocron.WithSingletonMode(gocron.LimitModeReschedule))
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	s.Start()
	return s, nil
}

// Listen wakes the dispatcher on every NOTIFY of the lead_events trigger
// until ctx ends. It needs a direct or session-mode connection (a pooler in
// transaction mode does not deliver notifications); when the connection
// breaks it reconnects, waiting at most a minute between tries, and wakes the
// dispatcher each time it is back, for whatever rang while it was away. A
// connection quiet for database.ListenIdle is pinged, so one that died
// without a word is replaced; Health watches the loop go round ("listen").
func (d *Dispatcher) Listen(ctx context.Context, connString string) {
	l := database.Listener{ConnString: connString, Channels: []string{notifyChannel}, Clock: d.clock, Idle: database.ListenIdle}
	progress := d.cfg.Health.Watch("listen", l.Silence())
	l.Listening = func() {
		d.log.DebugContext(ctx, "listening for lead_events notifications")
		progress.Report(nil)
		d.Wake()
	}
	l.Notified = func(string, string) { d.Wake() }
	l.Moved = progress.Beat
	l.Lost = func(err error, retryIn time.Duration) {
		// Health logs the loss once; each retry is only a debug line.
		progress.Report(fmt.Errorf("LISTEN connection lost; delivery goes on through the webhook and the sweep: %w", err))
		d.log.DebugContext(ctx, "LISTEN connection lost", "err", err, "retry_in", retryIn)
	}
	l.Run(ctx)
}
