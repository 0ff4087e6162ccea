package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/database"
	"github.com/truenester/leadrelay/ops/health"
)

// Change is what the browsers hear: a new lead, or leads whose timeline grew (All: any lead),
// or (Paused) that the hub's source stopped or works again.
type Change struct {
	NewLead string   // the id of a lead just created
	IDs     []string // leads that changed
	All     bool     // anything may have changed: refresh everything
	Paused  bool     // Hub.Paused changed: tell the browsers
}

// Hub fans the database's notifications out to the browsers' event streams: one LISTEN
// connection per replica, however many browsers watch. Where LISTEN is off (a pooler in
// transaction mode), it polls the timeline instead.
type Hub struct {
	log *slog.Logger

	mu     sync.Mutex
	subs   map[chan Change]struct{}
	paused string // why the source hears nothing now; "" while it works
}

// NewHub returns a hub with no source yet: start Listen or Poll.
func NewHub(log *slog.Logger) *Hub {
	return &Hub{log: log, subs: map[chan Change]struct{}{}}
}

// subscriberBuffer is how many changes a slow browser may fall behind before it is told
// to refresh everything instead.
const subscriberBuffer = 32

// Subscribe returns a stream of changes and the function that ends it.
func (h *Hub) Subscribe() (<-chan Change, func()) {
	ch := make(chan Change, subscriberBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// Subscribers is how many streams are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Paused says why the hub hears nothing from the database now, in words for the admins
// watching ("" while its source works): the LISTEN connection is lost, or the poll's looks
// keep failing. Meanwhile a page falls behind: the streams tell their browsers so, and the
// source's return tells them what they missed.
func (h *Hub) Paused() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused
}

// Why the live updates pause, in the admins' words.
const (
	pausedListen = "this replica has lost its connection to the database"
	pausedPoll   = "the database does not answer this replica's looks"
)

// setPaused records why the source hears nothing ("": it works again) and, when that
// changes, wakes every stream to tell its browser.
func (h *Hub) setPaused(why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.paused == why {
		return
	}
	h.paused = why
	h.publish(Change{Paused: true})
}

// Publish sends c to every subscriber without waiting: a full stream gets its oldest
// change replaced by "refresh everything".
func (h *Hub) Publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publish(c)
}

// publish is Publish with h.mu held.
func (h *Hub) publish(c Change) {
	for ch := range h.subs {
		select {
		case ch <- c:
			continue
		default:
		}
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- Change{All: true}:
		default:
		}
	}
}

// The channels the console listens on: the outbox's doorbell (a new lead is its
// lead.created event) and the timeline's (supabase/functions-sql/80_console.sql).
const (
	leadEventsChannel = "lead_events"
	consoleChannel    = "leadrelay_console"
)

// LivePart is the source of the console's live updates (its LISTEN connection, or the
// poll) among the replica's health parts.
const LivePart = "console_live"

// Listen publishes the database's notifications until ctx ends, reconnecting (at most a
// minute apart) when the connection breaks; each reconnection publishes "refresh
// everything", for whatever changed while it was away. A connection quiet for
// database.ListenIdle is pinged, so one that died without a word is replaced. parts
// watches the loop go round (LivePart, bounded as the doorbell's LISTEN): while the
// connection is lost and cannot be made again, /readyz names it. clock times the backoff
// and the pings (nil: the real one).
func (h *Hub) Listen(ctx context.Context, connString string, parts *health.Registry, clock clockwork.Clock) {
	l := database.Listener{
		ConnString: connString,
		Channels:   []string{leadEventsChannel, consoleChannel},
		Idle:       database.ListenIdle,
		Clock:      clock,
	}
	progress := parts.Watch(LivePart, l.Silence())
	l.Listening = func() {
		progress.Report(nil)
		h.setPaused("")
		h.Publish(Change{All: true})
	}
	l.Notified = func(channel, payload string) {
		if c, ok := parseNotification(channel, payload); ok {
			h.Publish(c)
		}
	}
	l.Moved = progress.Beat
	l.Lost = func(err error, retryIn time.Duration) {
		// Health logs the loss once; each retry is only a debug line.
		progress.Report(fmt.Errorf("LISTEN connection lost; the console's live updates resume when it is back: %w", err))
		h.setPaused(pausedListen)
		h.log.DebugContext(ctx, "console LISTEN connection lost", "err", err, "retry_in", retryIn)
	}
	l.Run(ctx)
}

func parseNotification(channel, payload string) (Change, bool) {
	switch channel {
	case leadEventsChannel:
		var e struct {
			EventType      string `json:"event_type"`
			ConversationID string `json:"conversation_id"`
		}
		if json.Unmarshal([]byte(payload), &e) != nil || e.EventType != "lead.created" {
			return Change{}, false
		}
		return Change{NewLead: e.ConversationID, IDs: []string{e.ConversationID}}, true
	case consoleChannel:
		var e struct {
			All             bool     `json:"all"`
			ConversationIDs []string `json:"conversation_ids"`
		}
		if json.Unmarshal([]byte(payload), &e) != nil {
			return Change{All: true}, true
		}
		return Change{IDs: e.ConversationIDs, All: e.All}, e.All || len(e.ConversationIDs) > 0
	}
	return Change{}, false
}

// pollOverlap is how far back each poll looks again, for entries committed late with an
// earlier time.
const pollOverlap = 10 * time.Second

// errPollTimeout ends a poll's query that has not answered within its deadline.
var errPollTimeout = errors.New("no answer within the admin timeout (DB_ADMIN_TIMEOUT)")

// Poll publishes the leads created and the timelines that grew, looking every interval,
// until ctx ends: the hub's source where LISTEN is not available. Each look is one query
// that ends within timeout (DB_ADMIN_TIMEOUT), waiting for a connection of db included,
// so a saturated admin pool delays the live updates but never stops the loop.
//
// parts watches it as LISTEN's part (LivePart). As LISTEN's loss counts only while the
// connection cannot be made again, a failed look counts only while the looks keep failing:
// the part is not ready once they have failed for longer than interval + timeout since the
// first of them began, and ready again when one works. A look fails within its timeout, so
// one failed look (a slow admin query, the admin pool saturated past DB_ADMIN_TIMEOUT)
// never takes the replica out of the intake's rotation (/readyz); live updates that are
// really gone do. The first failure of a run is logged, each retry at debug, and health
// logs the part's failure once. clock times the looks, their deadlines and the bound (nil:
// the real one).
func (h *Hub) Poll(ctx context.Context, db *pgxpool.Pool, interval, timeout time.Duration, parts *health.Registry, clock clockwork.Clock) {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if timeout <= 0 {
		timeout = config.DefaultDBSettings.AdminTimeout
	}
	// Between two beats: a look that runs to its deadline, then the next tick.
	progress := parts.Watch(LivePart, 2*(interval+timeout))
	failureBound := interval + timeout
	var failingSince time.Time // when the first look of the current run of failures began
	p := poll{hub: h, db: db, seen: map[string]time.Time{}}
	t := clock.NewTicker(interval)
	defer t.Stop()
	for {
		began := clock.Now()
		lookCtx, cancel := context.WithCancelCause(ctx)
		stop := clock.AfterFunc(timeout, func() { cancel(errPollTimeout) }).Stop
		err := p.look(lookCtx)
		stop()
		cancel(nil)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if cause := context.Cause(lookCtx); cause == errPollTimeout {
				err = fmt.Errorf("%w: %w", cause, err)
			}
			if failingSince.IsZero() {
				failingSince = began
				h.log.InfoContext(ctx, "console poll failed; the next look tries again, and /readyz names it only if the looks keep failing",
					"err", err, "bound", failureBound.String())
			} else {
				h.log.DebugContext(ctx, "console poll failed again", "err", err)
			}
			if failing := clock.Since(failingSince); failing > failureBound {
				// Health logs this once, not once per look.
				progress.Report(fmt.Errorf("console poll failing for %s (bound %s); the console's live updates resume when it works: %w",
					failing.Round(time.Millisecond), failureBound, err))
				h.setPaused(pausedPoll)
			} else {
				progress.Beat()
			}
		default:
			failingSince = time.Time{}
			progress.Report(nil)
			h.setPaused("")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

// poll is what the poll remembers from one look to the next.
type poll struct {
	hub   *Hub
	db    *pgxpool.Pool
	since time.Time            // the newest entry's time seen (first: the database's now)
	seen  map[string]time.Time // timeline entry id -> its time, within the overlap
}

// look publishes what changed since the last look (the first one that works only reads
// where to start, in the database's time).
func (p *poll) look(ctx context.Context) error {
	if p.since.IsZero() {
		if err := p.db.QueryRow(ctx, "select now()").Scan(&p.since); err != nil {
			return fmt.Errorf("start time: %w", err)
		}
		return nil
	}
	from := p.since.Add(-pollOverlap)
	since := p.since
	var changed, news []string
	rows, _ := p.db.Query(ctx, `select t.id::text, t.conversation_id::text, t.event_type = 'created', t.created_at
		from public.conversation_timeline t where t.created_at > $1::timestamptz order by t.created_at limit 1000`, from)
	var id, conv string
	var created bool
	var at time.Time
	var found []string
	_, err := pgx.ForEachRow(rows, []any{&id, &conv, &created, &at}, func() error {
		if _, ok := p.seen[id]; ok {
			return nil
		}
		found = append(found, id)
		p.seen[id] = at
		changed = append(changed, conv)
		if created {
			news = append(news, conv)
		}
		if at.After(since) {
			since = at
		}
		return nil
	})
	if err != nil {
		// Nothing was published: the next look finds these entries again.
		for _, id := range found {
			delete(p.seen, id)
		}
		return fmt.Errorf("timeline: %w", err)
	}
	p.since = since
	for k, at := range p.seen {
		if at.Before(p.since.Add(-2 * pollOverlap)) {
			delete(p.seen, k)
		}
	}
	for _, n := range news {
		p.hub.Publish(Change{NewLead: n, IDs: []string{n}})
	}
	if len(changed) > 0 {
		p.hub.Publish(Change{IDs: changed})
	}
	return nil
}
