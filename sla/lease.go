package sla

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"
)

// errNotLeader says this replica does not hold the lease (gocron then skips
// the run), or lost it before a job's transaction could fence itself.
var errNotLeader = errors.New("not the SLA leader")

// lease is leadership over the SLA jobs: a row in public.leader_leases that
// one replica holds until it expires, by the database's clock. current
// answers from memory, and campaign keeps the memory true by taking or
// renewing the row every ttl/3, but only while the replica's jobs run (its
// ready check): a leader whose scheduler stops firing gives the lease up.
//
// Memory alone could be stale (a replica paused longer than its lease still
// believes), so every job's transaction first calls leader_lease_fence with
// the token: it fails once the lease has passed on, and while it holds, the
// row stays locked (FOR KEY SHARE) so no successor can take the lease until
// the job's writes are committed. Two leaders therefore never run a job at
// once. Taking or renewing the lease never waits on a lock (NOWAIT: a busy
// row means "not now"), so a paused leader cannot make the others wait; its
// open job holds a successor off only until the server ends that idle
// transaction (serve's SLA pool sets idle_in_transaction_session_timeout
// within the lease), and its late writes fail the fence.
//
// The tries and the memory run on the engine's clock (the process's one
// clock; a test's fake one), as its jobs do. The row's expiry is the
// database's, by its own clock; the fence, not the memory, is what keeps two
// leaders' jobs apart.
type lease struct {
	db     *pgxpool.Pool
	name   string
	holder string
	ttl    time.Duration
	clock  clockwork.Clock
	log    *slog.Logger

	mu         sync.Mutex
	token      int64
	validUntil time.Time // by clock; zero when not held
}

func newLease(db *pgxpool.Pool, name, holder string, ttl time.Duration, clock clockwork.Clock, log *slog.Logger) *lease {
	return &lease{db: db, name: name, holder: holder, ttl: ttl, clock: clock, log: log}
}

// current returns the lease's token while this replica holds it.
func (l *lease) current() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clock.Now().Before(l.validUntil) {
		return l.token, true
	}
	return 0, false
}

// campaign renews the lease every ttl/3 of the clock while this replica
// holds it, and otherwise asks for it as often (at least every second, so a
// released lease is taken up at once), until ctx ends; while ready says the
// replica cannot do the leader's work, it gives the lease up instead and does
// not ask. Each try's error (nil when the database answered), or ready's,
// goes to tried.
func (l *lease) campaign(ctx context.Context, ready func() error, tried func(error)) {
	t := l.clock.NewTimer(l.retryEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			err := ready()
			if err != nil {
				l.release(ctx)
			} else {
				err = l.try(ctx)
			}
			if ctx.Err() == nil {
				tried(err)
			}
			t.Reset(l.retryEvery())
		}
	}
}

func (l *lease) retryEvery() time.Duration {
	every := l.ttl / 3
	if _, held := l.current(); !held {
		every = min(every, time.Second)
	}
	return every
}

// try takes or renews the lease once. A replica that cannot reach the
// database keeps what it had until its memory of the lease runs out; the
// error says why it could not ask.
func (l *lease) try(ctx context.Context) error {
	// The lease counts from before the request: on the real clock, the
	// database's expiry is no earlier than this replica's memory of it (a
	// test's clock may say otherwise; the fence still decides).
	sent := l.clock.Now()
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	var (
		held    bool
		holder  *string
		token   int64
		expires time.Time
	)
	err := l.db.QueryRow(ctx, "select held, holder, token, expires_at from public.leader_lease_acquire($1::text, $2::text, $3::interval)",
		l.name, l.holder, l.ttl).Scan(&held, &holder, &token, &expires)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		l.log.Debug("sla: could not take or renew the leader lease", "lease", l.name, "err", err)
		return fmt.Errorf("take or renew the leader lease: %w", err)
	}

	if !held && deref(holder) == l.holder {
		// Our own lease, busy this instant (another replica is asking for
		// it): what we knew still stands, and the next try renews.
		return nil
	}

	l.mu.Lock()
	was := l.clock.Now().Before(l.validUntil)
	prev := l.token
	if held {
		l.token, l.validUntil = token, sent.Add(l.ttl)
	} else {
		l.validUntil = time.Time{}
	}
	l.mu.Unlock()

	switch {
	case held && (!was || prev != token):
		l.log.Info("sla: this replica now runs the SLA jobs", "lease", l.name, "holder", l.holder, "token", token)
	case !held && was:
		l.log.Warn("sla: lost the leader lease", "lease", l.name, "holder", deref(holder), "token", token)
	}
	return nil
}

// fence checks, first in a job's transaction, that the lease is still ours
// and locks it until the transaction ends.
func (l *lease) fence(ctx context.Context, tx pgx.Tx) error {
	token, ok := l.current()
	if !ok {
		return errNotLeader
	}
	var still bool
	if err := tx.QueryRow(ctx, "select public.leader_lease_fence($1::text, $2::text, $3::bigint)", l.name, l.holder, token).Scan(&still); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	if !still {
		l.drop(token)
		return errNotLeader
	}
	return nil
}

// drop forgets the lease token after the database said it is gone.
func (l *lease) drop(token int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == token {
		l.validUntil = time.Time{}
	}
}

// release gives the lease up so a successor need not wait for it to expire.
func (l *lease) release(ctx context.Context) {
	token, ok := l.current()
	if !ok {
		return
	}
	l.drop(token)
	ctx, cancel := context.WithTimeout(ctx, l.ttl)
	defer cancel()
	var released bool
	if err := l.db.QueryRow(ctx, "select public.leader_lease_release($1::text, $2::text, $3::bigint)", l.name, l.holder, token).Scan(&released); err != nil {
		l.log.Warn("sla: could not release the leader lease; it expires by itself", "lease", l.name, "err", err)
		return
	}
	if released {
		l.log.Info("sla: released the leader lease", "lease", l.name, "holder", l.holder, "token", token)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
