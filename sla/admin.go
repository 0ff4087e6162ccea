package sla

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/database"
)

// MaxAlerts bounds the alerts list.
const MaxAlerts = 200

// Alert is an open lead with no human answer whose warning time has come:
// approaching its deadline, or past it (Breached, SecondsLeft negative).
type Alert struct {
	ConversationID      string     `json:"conversation_id" db:"conversation_id"`
	Name                *string    `json:"name" db:"name"`
	Email               *string    `json:"email" db:"email"`
	Phone               *string    `json:"phone" db:"phone"`
	Form                string     `json:"form" db:"form"`
	Source              string     `json:"source" db:"source"`
	Quality             string     `json:"quality" db:"quality"`
	Status              string     `json:"status" db:"status"`
	AssignedTo          *string    `json:"assigned_to" db:"assigned_to"`
	CreatedAt           time.Time  `json:"created_at" db:"created_at"`
	SLAWarningAt        time.Time  `json:"sla_warning_at" db:"sla_warning_at"`
	SLAResponseDeadline time.Time  `json:"sla_response_deadline" db:"sla_response_deadline"`
	SLAWarningSentAt    *time.Time `json:"sla_warning_sent_at" db:"sla_warning_sent_at"`
	SLABreachedAt       *time.Time `json:"sla_breached_at" db:"sla_breached_at"`
	Breached            bool       `json:"breached" db:"breached"`
	SecondsLeft         float64    `json:"seconds_left" db:"seconds_left"`
}

// Alerts lists the leads the SLA banner shows at now, soonest deadline
// first (so the longest-breached first), at most MaxAlerts.
func Alerts(ctx context.Context, db database.Querier, now time.Time) ([]Alert, error) {
	rows, _ := db.Query(ctx, "select * from public.sla_alerts($1::timestamptz, $2::integer)", now, MaxAlerts)
	alerts, err := pgx.CollectRows(rows, pgx.RowToStructByName[Alert])
	if err != nil {
		return nil, fmt.Errorf("sla alerts: %w", err)
	}
	return alerts, nil
}

// SummaryRow is the SLA record of the leads of one quality and source that
// arrived in a period. Leads marked spam are not counted. The medians are
// nil when no lead was answered.
type SummaryRow struct {
	Quality                    string   `json:"quality" db:"quality"`
	Source                     string   `json:"source" db:"source"`
	Leads                      int64    `json:"leads" db:"leads"`
	Answered                   int64    `json:"answered" db:"answered"`
	AnsweredInTime             int64    `json:"answered_in_time" db:"answered_in_time"`
	Breached                   int64    `json:"breached" db:"breached"`
	MedianFirstResponseSeconds *float64 `json:"median_first_response_seconds" db:"median_first_response_seconds"`
	P90FirstResponseSeconds    *float64 `json:"p90_first_response_seconds" db:"p90_first_response_seconds"`
}

// MaxPeriod bounds a summary's period, so one request cannot make the
// database read years of leads.
const MaxPeriod = 366 * 24 * time.Hour

// ErrPeriod says a summary's period is not one CheckPeriod accepts.
var ErrPeriod = errors.New("invalid period")

// Summary returns the SLA figures of the leads that arrived in [from, to),
// per quality and source.
func Summary(ctx context.Context, db database.Querier, from, to time.Time) ([]SummaryRow, error) {
	if err := CheckPeriod(from, to); err != nil {
		return nil, err
	}
	rows, _ := db.Query(ctx, "select * from public.sla_summary($1::timestamptz, $2::timestamptz)", from, to)
	summary, err := pgx.CollectRows(rows, pgx.RowToStructByName[SummaryRow])
	if err != nil {
		return nil, fmt.Errorf("sla summary: %w", err)
	}
	return summary, nil
}

// CheckPeriod says whether [from, to) is a period a summary covers: not
// empty, at most MaxPeriod.
func CheckPeriod(from, to time.Time) error {
	switch {
	case !to.After(from):
		return fmt.Errorf("%w: to (%s) must be after from (%s)", ErrPeriod, to.Format(time.RFC3339), from.Format(time.RFC3339))
	case to.Sub(from) > MaxPeriod:
		return fmt.Errorf("%w: at most 366 days, not %s to %s", ErrPeriod, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return nil
}
