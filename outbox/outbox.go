// Package outbox is the dispatcher's access to the lead_events outbox and the
// notification_logs deliveries, through the SQL functions in
// supabase/functions-sql/60_delivery.sql. Every write takes the time as an
// argument, so tests choose it.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay"
)

// Event is a claimed lead_events row.
type Event struct {
	ID             string              `db:"id"`
	EventType      leadrelay.EventType `db:"event_type"`
	ConversationID string              `db:"conversation_id"`
	FollowUpTaskID *string             `db:"follow_up_task_id"`
	Payload        json.RawMessage     `db:"payload"`
	RetryCount     int                 `db:"retry_count"`
	CreatedAt      time.Time           `db:"created_at"`
}

// Delivery is one pending notification_logs row: an event to one channel.
type Delivery struct {
	LogID    string            `db:"log_id"`
	EventID  string            `db:"lead_event_id"`
	Channel  leadrelay.Channel `db:"channel"`
	Attempts int               `db:"attempts"` // attempts before this one
}

// Outcome is what one attempt of a delivery came to.
type Outcome struct {
	LogID         string                   `json:"log_id"`
	Status        leadrelay.DeliveryStatus `json:"status"`
	Error         string                   `json:"error,omitempty"`
	Response      string                   `json:"response,omitempty"`
	NextAttemptAt *time.Time               `json:"next_attempt_at,omitempty"` // with DeliveryPending
}

// Lead is what an alert says about a conversation.
type Lead struct {
	ID                  string     `db:"id"`
	Form                string     `db:"form"`
	Source              string     `db:"source"`
	Name                *string    `db:"name"`
	Email               *string    `db:"email"`
	Phone               *string    `db:"phone"`
	PropertyID          *string    `db:"property_id"`
	PropertyTitle       *string    `db:"property_title"`
	Quality             string     `db:"quality"`
	ScoreReasons        []string   `db:"score_reasons"`
	SLAResponseDeadline time.Time  `db:"sla_response_deadline"`
	FollowUpDate        *time.Time `db:"follow_up_date"` // of the event's follow-up task, if any
}

// Store runs the outbox's queries.
type Store struct {
	db *pgxpool.Pool
}

// New returns a Store on db.
func New(db *pgxpool.Pool) *Store { return &Store{db: db} }

// Claim leases up to limit due events to worker until now+lease.
func (s *Store) Claim(ctx context.Context, worker string, lease time.Duration, limit int, now time.Time) ([]Event, error) {
	rows, _ := s.db.Query(ctx, `select id, event_type, conversation_id, follow_up_task_id, payload, retry_count, created_at
		from public.claim_lead_events($1::text, $2::interval, $3::integer, $4::timestamptz)`, worker, lease, limit, now)
	events, err := pgx.CollectRows(rows, pgx.RowToStructByName[Event])
	if err != nil {
		return nil, fmt.Errorf("claim events: %w", err)
	}
	return events, nil
}

// StartDeliveries opens one delivery per routed channel among channels for
// each event, and returns the pending deliveries of those events that are due.
func (s *Store) StartDeliveries(ctx context.Context, eventIDs []string, channels []leadrelay.Channel, now time.Time) ([]Delivery, error) {
	names := make([]string, len(channels)) // pgx encodes []string in every query exec mode
	for i, c := range channels {
		names[i] = string(c)
	}
	rows, _ := s.db.Query(ctx, `select log_id, lead_event_id, channel, attempts
		from public.start_deliveries($1::uuid[], $2::public.notification_channel[], $3::timestamptz)`, eventIDs, names, now)
	deliveries, err := pgx.CollectRows(rows, pgx.RowToStructByName[Delivery])
	if err != nil {
		return nil, fmt.Errorf("start deliveries: %w", err)
	}
	return deliveries, nil
}

// Leads loads what the alerts of events say about their conversations, by
// event id.
func (s *Store) Leads(ctx context.Context, events []Event) (map[string]Lead, error) {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	rows, _ := s.db.Query(ctx, `select e.id as event_id, c.id, c.form, c.source, c.name, c.email, c.phone,
			c.property_id, c.property_title, c.quality, c.score_reasons, c.sla_response_deadline,
			f.follow_up_date
		from public.lead_events e
		join public.conversations c on c.id = e.conversation_id
		left join public.follow_up_tasks f on f.id = e.follow_up_task_id
		where e.id = any ($1::uuid[])`, ids)
	type row struct {
		EventID string `db:"event_id"`
		Lead
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
	if err != nil {
		return nil, fmt.Errorf("load leads: %w", err)
	}
	leads := make(map[string]Lead, len(list))
	for _, r := range list {
		leads[r.EventID] = r.Lead
	}
	return leads, nil
}

// Finish records outcomes and finishes worker's events: processed when every
// delivery has ended, otherwise due again at the earliest retry. It returns
// the number of events processed.
func (s *Store) Finish(ctx context.Context, worker string, eventIDs []string, outcomes []Outcome, now time.Time) (int, error) {
	if outcomes == nil {
		outcomes = []Outcome{}
	}
	body, err := json.Marshal(outcomes)
	if err != nil {
		return 0, fmt.Errorf("finish deliveries: encode outcomes: %w", err)
	}
	var processed int
	if err := s.db.QueryRow(ctx, "select public.finish_deliveries($1::text, $2::uuid[], $3::jsonb, $4::timestamptz)", worker, eventIDs, string(body), now).Scan(&processed); err != nil {
		return 0, fmt.Errorf("finish deliveries: %w", err)
	}
	return processed, nil
}

// ErrNotFound says there is no such event.
var ErrNotFound = errors.New("no such lead event")

// Replay queues an event's failed channels again; it returns how many.
func (s *Store) Replay(ctx context.Context, eventID string, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, "select public.replay_lead_event($1::uuid, $2::timestamptz)", eventID, now).Scan(&n)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "P0002" || pgErr.Code == "22P02") { // no such event; not a uuid
		return 0, fmt.Errorf("replay event %s: %w", eventID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("replay event %s: %w", eventID, err)
	}
	return n, nil
}

// ReplayFailed queues every failed delivery again; it returns how many
// events and channels.
func (s *Store) ReplayFailed(ctx context.Context, now time.Time) (events, channels int, err error) {
	err = s.db.QueryRow(ctx, `select count(*), coalesce(sum(n), 0) from (
			select public.replay_lead_event(id, $1::timestamptz) as n
			from (select distinct lead_event_id as id from public.notification_logs where status = 'failed') f
		) r`, now).Scan(&events, &channels)
	if err != nil {
		return 0, 0, fmt.Errorf("replay failed deliveries: %w", err)
	}
	return events, channels, nil
}
