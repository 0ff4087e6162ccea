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
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/database/dberr"
)

// Delivery is a claimed notification_logs row: one attempt at sending an
// event to one channel, with what the alert says about the lead.
type Delivery struct {
	LogID     string              `db:"log_id"`
	EventID   string              `db:"lead_event_id"`
	Channel   leadrelay.Channel   `db:"channel"`
	Attempt   int                 `db:"attempt"` // this attempt's number: the fencing token of its outcome
	Repeat    bool                `db:"repeat"`  // the previous attempt was cut off: this one may repeat it
	EventType leadrelay.EventType `db:"event_type"`
	Lead
}

// Outcome is what one attempt of a delivery came to.
type Outcome struct {
	LogID         string                   `json:"log_id"`
	Attempt       int                      `json:"attempt"`
	Status        leadrelay.DeliveryStatus `json:"status"`
	Error         string                   `json:"error,omitempty"`
	Response      string                   `json:"response,omitempty"`
	NextAttemptAt *time.Time               `json:"next_attempt_at,omitempty"` // with DeliveryPending
}

// Lead is what an alert says about a conversation.
type Lead struct {
	ID                  string     `db:"conversation_id"`
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

// ConsoleEvent is an event taken by the developer's console, with the
// channels production would send it to.
type ConsoleEvent struct {
	EventID   string              `db:"lead_event_id"`
	EventType leadrelay.EventType `db:"event_type"`
	Channels  []string            `db:"channels"`
	Lead
}

// Store runs the outbox's queries.
type Store struct {
	db *pgxpool.Pool
}

// New returns a Store on db.
func New(db *pgxpool.Pool) *Store { return &Store{db: db} }

// Claim opens the deliveries of up to open new events, then claims for
// replica, until now+lease, up to limits[i] due deliveries of channels[i],
// starting their next attempt. One round trip, one transaction. It returns
// the claimed deliveries and the number of events opened.
func (s *Store) Claim(ctx context.Context, replica string, lease time.Duration, channels []leadrelay.Channel, limits []int, open int, now time.Time) ([]Delivery, int, error) {
	return s.RecordAndClaim(ctx, replica, lease, channels, nil, limits, open, now)
}

// RecordAndClaim records outcomes, each only while its attempt is still the
// delivery's latest (a delivery that gave up opens its route's fallbacks
// among channels); then opens the deliveries of up to open new events; then
// claims for replica, until now+lease, up to limits[i] due deliveries of
// channels[i], starting their next attempt. One round trip, one transaction:
// a claim that takes the slot of an outcome commits with it. It returns the
// claimed deliveries and the number of events opened.
func (s *Store) RecordAndClaim(ctx context.Context, replica string, lease time.Duration, channels []leadrelay.Channel, outcomes []Outcome, limits []int, open int, now time.Time) ([]Delivery, int, error) {
	names := channelNames(channels)
	batch := &pgx.Batch{}
	if len(outcomes) > 0 {
		body, err := json.Marshal(outcomes)
		if err != nil {
			return nil, 0, fmt.Errorf("record deliveries: encode outcomes: %w", err)
		}
		batch.Queue("select public.record_deliveries($1::jsonb, $2::public.notification_channel[], $3::timestamptz)", string(body), names, now)
	}
	var opened int
	if open > 0 {
		batch.Queue("select public.open_lead_events($1::public.notification_channel[], $2::integer, $3::timestamptz)", names, open, now).
			QueryRow(func(row pgx.Row) error { return row.Scan(&opened) })
	}
	var deliveries []Delivery
	if slices.ContainsFunc(limits, func(n int) bool { return n > 0 }) {
		batch.Queue(`select log_id, lead_event_id, channel, attempt, repeat, event_type, conversation_id, form, source, name, email, phone,
				property_id, property_title, quality, score_reasons, sla_response_deadline, follow_up_date
			from public.claim_deliveries($1::text, $2::interval, $3::public.notification_channel[], $4::integer[], $5::timestamptz)`,
			replica, lease, names, limits, now).
			Query(func(rows pgx.Rows) error {
				var err error
				deliveries, err = pgx.CollectRows(rows, pgx.RowToStructByName[Delivery])
				return err
			})
	}
	if batch.Len() == 0 {
		return nil, 0, nil
	}
	// Without an explicit transaction a batch is one implicit transaction:
	// the claim sees the deliveries just opened, and nothing of it commits
	// unless all of it does.
	if err := s.db.SendBatch(ctx, batch).Close(); err != nil {
		return nil, 0, fmt.Errorf("record and claim deliveries: %w", err)
	}
	return deliveries, opened, nil
}

// Announce records that replica is live at now and can send channels, so
// that every replica opens new events (and fallbacks) for them too; then it
// fails up to limit pending deliveries that no live replica can send (see
// fail_unserved_deliveries). One round trip, one transaction. It returns how
// long replica counts as live unless it announces itself again (the liveness
// window) and how many deliveries it failed.
func (s *Store) Announce(ctx context.Context, replica string, channels []leadrelay.Channel, limit int, now time.Time) (time.Duration, int, error) {
	names := channelNames(channels)
	var seconds float64
	var failed int
	batch := &pgx.Batch{}
	batch.Queue("select extract(epoch from public.announce_replica($1::text, $2::public.notification_channel[], $3::timestamptz))::float8",
		replica, names, now).QueryRow(func(row pgx.Row) error { return row.Scan(&seconds) })
	batch.Queue("select public.fail_unserved_deliveries($1::public.notification_channel[], $2::integer, $3::timestamptz)",
		names, limit, now).QueryRow(func(row pgx.Row) error { return row.Scan(&failed) })
	if err := s.db.SendBatch(ctx, batch).Close(); err != nil {
		return 0, 0, fmt.Errorf("announce replica %s: %w", replica, err)
	}
	return time.Duration(seconds * float64(time.Second)), failed, nil
}

// Release gives back claimed deliveries whose attempt will not start.
func (s *Store) Release(ctx context.Context, replica string, deliveries []Delivery) error {
	ids, attempts := fence(deliveries)
	if _, err := s.db.Exec(ctx, "select public.release_deliveries($1::text, $2::uuid[], $3::integer[])", replica, ids, attempts); err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	return nil
}

// Renew extends replica's leases on deliveries in flight until now+lease; it
// returns how many replica still holds.
func (s *Store) Renew(ctx context.Context, replica string, deliveries []Delivery, lease time.Duration, now time.Time) (int, error) {
	ids, attempts := fence(deliveries)
	var n int
	if err := s.db.QueryRow(ctx, "select public.renew_delivery_leases($1::text, $2::uuid[], $3::integer[], $4::interval, $5::timestamptz)",
		replica, ids, attempts, lease, now).Scan(&n); err != nil {
		return 0, fmt.Errorf("renew delivery leases: %w", err)
	}
	return n, nil
}

// channelNames spells channels as pgx encodes them in every query exec mode.
func channelNames(channels []leadrelay.Channel) []string {
	names := make([]string, len(channels))
	for i, c := range channels {
		names[i] = string(c)
	}
	return names
}

func fence(deliveries []Delivery) (ids []string, attempts []int) {
	for _, d := range deliveries {
		ids = append(ids, d.LogID)
		attempts = append(attempts, d.Attempt)
	}
	return ids, attempts
}

// ClaimConsole takes up to limit new events for the developer's console.
func (s *Store) ClaimConsole(ctx context.Context, limit int, now time.Time) ([]ConsoleEvent, error) {
	rows, _ := s.db.Query(ctx, `select lead_event_id, channels::text[] as channels, event_type, conversation_id, form, source, name, email, phone,
			property_id, property_title, quality, score_reasons, sla_response_deadline, follow_up_date
		from public.claim_console_events($1::integer, $2::timestamptz)`, limit, now)
	events, err := pgx.CollectRows(rows, pgx.RowToStructByName[ConsoleEvent])
	if err != nil {
		return nil, fmt.Errorf("claim console events: %w", err)
	}
	return events, nil
}

// ErrNotFound says there is no such event.
var ErrNotFound = errors.New("no such lead event")

// Replay queues an event's failed channels again; it returns how many.
func (s *Store) Replay(ctx context.Context, eventID string, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, "select public.replay_lead_event($1::uuid, $2::timestamptz)", eventID, now).Scan(&n)
	err = dberr.Interpret(err)
	if errors.Is(err, dberr.ErrNotFound) || errors.Is(err, dberr.ErrInvalid) { // no such event; not a uuid
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
