package database

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jonboulle/clockwork"
)

// Listener holds one LISTEN connection on its channels until Run's context
// ends. It needs a direct or session-mode connection (a pooler in
// transaction mode does not deliver notifications). When the connection
// breaks, or cannot be made, it tries again after a wait that starts at
// MinBackoff and doubles up to MaxBackoff.
type Listener struct {
	ConnString string
	Channels   []string // plain lower-case names: each is LISTENed as written

	// Listening is called each time the connection listens: at first and
	// after each reconnection, for whatever was notified while it was away.
	Listening func()
	// Notified is called with each notification, one at a time.
	Notified func(channel, payload string)
	// Lost is called when the connection breaks or cannot be made, with the
	// wait before the next try.
	Lost func(err error, retryIn time.Duration)

	MinBackoff     time.Duration   // default 1 s
	MaxBackoff     time.Duration   // default 1 min
	ConnectTimeout time.Duration   // default 10 s
	Clock          clockwork.Clock // the backoff's clock; default the real one
}

func (l Listener) withDefaults() Listener {
	if l.MinBackoff <= 0 {
		l.MinBackoff = time.Second
	}
	if l.MaxBackoff < l.MinBackoff {
		l.MaxBackoff = max(time.Minute, l.MinBackoff)
	}
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = 10 * time.Second
	}
	if l.Clock == nil {
		l.Clock = clockwork.NewRealClock()
	}
	if l.Listening == nil {
		l.Listening = func() {}
	}
	if l.Notified == nil {
		l.Notified = func(string, string) {}
	}
	if l.Lost == nil {
		l.Lost = func(error, time.Duration) {}
	}
	return l
}

// Run listens until ctx ends.
func (l Listener) Run(ctx context.Context) {
	l = l.withDefaults()
	backoff := l.MinBackoff
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		l.Lost(err, backoff)
		select {
		case <-ctx.Done():
			return
		case <-l.Clock.After(backoff):
		}
		backoff = min(2*backoff, l.MaxBackoff)
	}
}

func (l Listener) listen(ctx context.Context) error {
	connectCtx, cancel := context.WithTimeout(ctx, l.ConnectTimeout)
	conn, err := pgx.Connect(connectCtx, l.ConnString)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range l.Channels {
		if _, err := conn.Exec(ctx, "listen "+ch); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	l.Listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		l.Notified(n.Channel, n.Payload)
	}
}
