package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/ops/health"
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
// dispatcher each time it is back, for whatever rang while it was away.
func (d *Dispatcher) Listen(ctx context.Context, connString string) {
	report := d.cfg.Health.Part("listen")
	backoff := time.Second
	for ctx.Err() == nil {
		err := d.listen(ctx, connString, report)
		if ctx.Err() != nil {
			return
		}
		// Health logs the loss once; each retry is only a debug line.
		report(fmt.Errorf("LISTEN connection lost; delivery goes on through the webhook and the sweep: %w", err))
		d.log.DebugContext(ctx, "LISTEN connection lost", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func (d *Dispatcher) listen(ctx context.Context, connString string, report health.Report) error {
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(connectCtx, connString)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "listen "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	d.log.Log(ctx, slog.LevelDebug, "listening for lead_events notifications")
	report(nil)
	d.Wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		d.Wake()
	}
}
