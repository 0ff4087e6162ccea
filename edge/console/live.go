package console

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/database"
	"github.com/truenester/leadrelay/ops/health"
)

// Change is what the browsers hear: a new lead, or leads whose timeline grew (All: any lead).
type Change struct {
	NewLead string   // the id of a lead just created
	IDs     []string // leads that changed
	All     bool     // anything may have changed: refresh everything
}

// Hub fans the database's notifications out to the browsers' event streams: one LISTEN
// connection per replica, however many browsers watch. Where LISTEN is off (a pooler in
// transaction mode), it polls the timeline instead.
type Hub struct {
	log *slog.Logger

	mu   sync.Mutex
	subs map[chan Change]struct{}
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

// Publish sends c to every subscriber without waiting: a full stream gets its oldest
// change replaced by "refresh everything".
func (h *Hub) Publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
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

// ListenPart is the console's LISTEN connection among the replica's health parts.
const ListenPart = "console_listen"

// Listen publishes the database's notifications until ctx ends, reconnecting (at most a
// minute apart) when the connection breaks; each reconnection publishes "refresh
// everything", for whatever changed while it was away. A connection quiet for
// database.ListenIdle is pinged, so one that died without a word is replaced. parts
// watches the loop go round (ListenPart, bounded as the doorbell's LISTEN): while the
// connection is lost and cannot be made again, /readyz names it. clock times the backoff
// and the pings (nil: the real one).
func (h *Hub) Listen(ctx context.Context, connString string, parts *health.Registry, clock clockwork.Clock) {
	l := database.Listener{
		ConnString: connString,
		Channels:   []string{leadEventsChannel, consoleChannel},
		Idle:       database.ListenIdle,
		Clock:      clock,
	}
	progress := parts.Watch(ListenPart, l.Silence())
	l.Listening = func() {
		progress.Report(nil)
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

// Poll publishes the leads created and the timelines that grew, looking every interval,
// until ctx ends: the hub's source where LISTEN is not available.
func (h *Hub) Poll(ctx context.Context, db *pgxpool.Pool, interval time.Duration) {
	seen := map[string]time.Time{} // timeline entry id -> its time, within the overlap
	var since time.Time
	if err := db.QueryRow(ctx, "select now()").Scan(&since); err != nil {
		h.log.WarnContext(ctx, "console poll: no start time", "err", err)
		since = time.Now()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		from := since.Add(-pollOverlap)
		var changed, news []string
		rows, _ := db.Query(ctx, `select t.id::text, t.conversation_id::text, t.event_type = 'created', t.created_at
			from public.conversation_timeline t where t.created_at > $1::timestamptz order by t.created_at limit 1000`, from)
		var id, conv string
		var created bool
		var at time.Time
		_, err := pgx.ForEachRow(rows, []any{&id, &conv, &created, &at}, func() error {
			if _, ok := seen[id]; ok {
				return nil
			}
			seen[id] = at
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
			h.log.WarnContext(ctx, "console poll failed", "err", err)
			continue
		}
		for k, at := range seen {
			if at.Before(since.Add(-2 * pollOverlap)) {
				delete(seen, k)
			}
		}
		for _, n := range news {
			h.Publish(Change{NewLead: n, IDs: []string{n}})
		}
		if len(changed) > 0 {
			h.Publish(Change{IDs: changed})
		}
	}
}
