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
// MinBackoff and doubles up to MaxBackoff while tries fail; once a
// connection listens again the wait starts over at MinBackoff. With Idle set, a connection that
// has had no notification for Idle is pinged, so one that died without a
// word (a partition, a half-open TCP connection) is found and replaced.
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
	// Moved is called each time the loop goes round while listening: after
	// a notification, and after a quiet Idle whose ping was answered (a
	// health.Progress's Beat).
	Moved func()

	MinBackoff     time.Duration   // default 1 s
	MaxBackoff     time.Duration   // default 1 min
	ConnectTimeout time.Duration   // default 10 s; also bounds LISTEN and each ping
	Idle           time.Duration   // ping after this long without a notification; 0: never
	Clock          clockwork.Clock // the backoff's and Idle's clock; default the real one
}

// ListenIdle is the Idle of serve's LISTEN connections: one that died
// without a word is replaced within it and a ping's bound.
const ListenIdle = 15 * time.Second

// Silence is the longest Run can go without a sign of life (Listening,
// Notified, Lost, Moved) while it works, with Idle set: the backoff, then a
// connect and a LISTEN per channel; or Idle, then a ping.
func (l Listener) Silence() time.Duration {
	l = l.withDefaults()
	return max(l.MaxBackoff+time.Duration(1+len(l.Channels))*l.ConnectTimeout, l.Idle+l.ConnectTimeout)
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
	if l.Moved == nil {
		l.Moved = func() {}
	}
	return l
}

// Run listens until ctx ends.
func (l Listener) Run(ctx context.Context) {
	l = l.withDefaults()
	backoff := l.MinBackoff
	for ctx.Err() == nil {
		listened, err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if listened {
			// A break after a working connection is a new incident, not
			// one more failed try: it waits the shortest time.
			backoff = l.MinBackoff
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

// listen holds one connection until it breaks; listened says whether it
// got as far as listening.
func (l Listener) listen(ctx context.Context) (listened bool, err error) {
	connectCtx, cancel := context.WithTimeout(ctx, l.ConnectTimeout)
	conn, err := pgx.Connect(connectCtx, l.ConnString)
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range l.Channels {
		stepCtx, cancel := context.WithTimeout(ctx, l.ConnectTimeout)
		_, err := conn.Exec(stepCtx, "listen "+ch)
		cancel()
		if err != nil {
			return false, fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	l.Listening()
	for {
		waitCtx, cancel := context.WithCancel(ctx)
		stopIdle := func() bool { return false }
		if l.Idle > 0 {
			stopIdle = l.Clock.AfterFunc(l.Idle, cancel).Stop
		}
		n, err := conn.WaitForNotification(waitCtx)
		stopIdle()
		quiet := waitCtx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case err == nil:
			l.Notified(n.Channel, n.Payload)
		case !quiet:
			return true, fmt.Errorf("wait for notification: %w", err)
		default:
			// A wait ended by its context leaves the connection usable;
			// it must still answer.
			stepCtx, cancel := context.WithTimeout(ctx, l.ConnectTimeout)
			err := conn.Ping(stepCtx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("ping after %s without a notification: %w", l.Idle, err)
			}
		}
		l.Moved()
	}
}
