package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/ops/metrics"
)

var statusCommand = command{
	name:    "status",
	summary: "the pipeline now: outbox depth and oldest event, failed deliveries, the delivering replicas, the SLA leader, breaches today",
	details: `Reads DATABASE_URL only; every figure is the database's, so any replica (or a
laptop) shows the same. "Breached today" counts the leads whose deadline fell
on today's UTC date and that sla_lead_outcomes calls breached. The delivering
replicas are those seen within public.replica_window(): each one's channels,
and which channels some of them lack.`,
	setup: func(fs *flag.FlagSet) func(context.Context, cli, []string) error {
		asJSON := fs.Bool("json", false, "print one JSON object, for scripts")
		return noArgs(func(ctx context.Context, c cli) error {
			url, err := databaseURL(c.getenv)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			conn, err := connectDB(ctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			st, err := readStatus(ctx, conn, time.Now())
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			if *asJSON {
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(c.stdout, st)
			return nil
		})
	},
}

// pipelineStatus is what `leadrelay status` reports.
type pipelineStatus struct {
	At     time.Time `json:"at"`
	Outbox struct {
		EventsWaiting int64 `json:"events_waiting"`
		// AtLeast: the count stopped at metrics.WaitingCap.
		AtLeast          bool       `json:"at_least"`
		OldestWaitingAt  *time.Time `json:"oldest_waiting_at"`
		OldestAgeSeconds float64    `json:"oldest_age_seconds"`
	} `json:"outbox"`
	FailedLastHour map[string]int64 `json:"failed_deliveries_last_hour"` // by channel
	Replicas       struct {
		WindowSeconds float64       `json:"window_seconds"` // public.replica_window()
		Live          []liveReplica `json:"live"`           // by name
		// AtLeast: the list stopped at replicasCap.
		AtLeast bool `json:"at_least"`
		// Differ: each channel some live replicas have and others lack.
		Differ []channelGap `json:"differ"`
	} `json:"delivering_replicas"`
	SLALeader struct {
		Replica   *string    `json:"holder"` // the replica holding the lease
		Token     int64      `json:"token"`
		ExpiresAt *time.Time `json:"expires_at"`
		Held      bool       `json:"held"` // the lease has not expired
	} `json:"sla_leader"`
	BreachedToday int64 `json:"leads_breached_today"`
}

// liveReplica is a delivering replica seen within the window.
type liveReplica struct {
	Name           string    `json:"name" db:"replica"`
	Channels       []string  `json:"channels" db:"channels"`
	SeenAt         time.Time `json:"seen_at" db:"seen_at"`
	SeenAgoSeconds float64   `json:"seen_ago_seconds" db:"-"`
}

// channelGap is a channel the live replicas do not all have: only Having
// claim its deliveries, so they wait for those.
type channelGap struct {
	Channel string   `json:"channel"`
	Lacking []string `json:"lacking"`
	Having  []string `json:"having"`
}

// replicasCap bounds the replicas status reads; a fleet is a few.
const replicasCap = 100

func readStatus(ctx context.Context, conn *pgx.Conn, now time.Time) (pipelineStatus, error) {
	var st pipelineStatus
	st.At = now.UTC()
	o := &st.Outbox
	err := conn.QueryRow(ctx, `select s.events_waiting, s.oldest_waiting_seconds,
			(select min(created_at) from public.lead_events where not processed)
		from leadrelay_private.metrics_snapshot($1::timestamptz, $2::integer) s`, now, metrics.WaitingCap).
		Scan(&o.EventsWaiting, &o.OldestAgeSeconds, &o.OldestWaitingAt)
	if err != nil {
		return st, fmt.Errorf("outbox: %w", err)
	}
	o.AtLeast = o.EventsWaiting >= metrics.WaitingCap

	rows, _ := conn.Query(ctx, `select channel::text, count(*) from public.notification_logs
		where status = 'failed' and updated_at > $1::timestamptz - interval '1 hour' group by 1 order by 1`, now)
	st.FailedLastHour = map[string]int64{}
	var channel string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&channel, &n}, func() error {
		st.FailedLastHour[channel] = n
		return nil
	}); err != nil {
		return st, fmt.Errorf("failed deliveries: %w", err)
	}

	if err := readReplicas(ctx, conn, now, &st); err != nil {
		return st, fmt.Errorf("delivering replicas: %w", err)
	}

	l := &st.SLALeader
	err = conn.QueryRow(ctx, `select holder, token, case when holder is null then null else expires_at end, expires_at > $1::timestamptz
		from public.leader_leases where name = 'sla'`, now).Scan(&l.Replica, &l.Token, &l.ExpiresAt, &l.Held)
	if err != nil && err != pgx.ErrNoRows {
		return st, fmt.Errorf("SLA leader: %w", err)
	}

	err = conn.QueryRow(ctx, `select count(*) from public.sla_lead_outcomes
		where breached
		  and sla_response_deadline >= date_trunc('day', $1::timestamptz, 'UTC')
		  and sla_response_deadline < date_trunc('day', $1::timestamptz, 'UTC') + interval '1 day'`, now).Scan(&st.BreachedToday)
	if err != nil {
		return st, fmt.Errorf("breaches today: %w", err)
	}
	return st, nil
}

func readReplicas(ctx context.Context, conn *pgx.Conn, now time.Time, st *pipelineStatus) error {
	r := &st.Replicas
	if err := conn.QueryRow(ctx, `select extract(epoch from public.replica_window())::float8`).Scan(&r.WindowSeconds); err != nil {
		return err
	}
	rows, _ := conn.Query(ctx, `select replica, channels::text[] as channels, seen_at
		from public.live_replicas($1::timestamptz, $2::integer)`, now, replicasCap)
	live, err := pgx.CollectRows(rows, pgx.RowToStructByName[liveReplica])
	if err != nil {
		return err
	}
	for i := range live {
		live[i].SeenAgoSeconds = now.Sub(live[i].SeenAt).Seconds()
	}
	r.Live, r.AtLeast = live, len(live) >= replicasCap
	r.Differ = channelGaps(live)
	return nil
}

// channelGaps lists, in the enum's order, each channel some of the live
// replicas have and others lack.
func channelGaps(live []liveReplica) []channelGap {
	gaps := []channelGap{}
	for _, ch := range leadrelay.Channels() {
		var gap channelGap
		for _, r := range live {
			if slices.Contains(r.Channels, string(ch)) {
				gap.Having = append(gap.Having, r.Name)
			} else {
				gap.Lacking = append(gap.Lacking, r.Name)
			}
		}
		if len(gap.Having) > 0 && len(gap.Lacking) > 0 {
			gap.Channel = string(ch)
			gaps = append(gaps, gap)
		}
	}
	return gaps
}

func printStatus(w io.Writer, st pipelineStatus) {
	o := st.Outbox
	switch {
	case o.EventsWaiting == 0:
		fmt.Fprintln(w, "outbox: no event waiting")
	default:
		more := ""
		if o.AtLeast {
			more = " or more"
		}
		fmt.Fprintf(w, "outbox: %d%s event(s) waiting; the oldest since %s (%s ago)\n",
			o.EventsWaiting, more, o.OldestWaitingAt.UTC().Format("2006-01-02 15:04:05 MST"), (time.Duration(o.OldestAgeSeconds) * time.Second).String())
	}
	if len(st.FailedLastHour) == 0 {
		fmt.Fprintln(w, "failed deliveries in the last hour: none")
	} else {
		var parts []string
		for _, ch := range leadrelay.Channels() {
			if n, ok := st.FailedLastHour[string(ch)]; ok {
				parts = append(parts, fmt.Sprintf("%s %d", ch, n))
			}
		}
		fmt.Fprintf(w, "failed deliveries in the last hour: %s (`leadrelay replay --failed` sends them again)\n", strings.Join(parts, ", "))
	}
	printReplicas(w, st)
	l := st.SLALeader
	switch {
	case l.Replica == nil:
		fmt.Fprintln(w, "SLA leader: none yet (no replica has taken the lease)")
	case l.Held:
		fmt.Fprintf(w, "SLA leader: %s (token %d), lease until %s (in %s)\n", *l.Replica, l.Token,
			l.ExpiresAt.UTC().Format("15:04:05 MST"), l.ExpiresAt.Sub(st.At).Round(100*time.Millisecond))
	default:
		fmt.Fprintf(w, "SLA leader: none: %s's lease (token %d) expired at %s; no replica runs the SLA jobs\n", *l.Replica, l.Token,
			l.ExpiresAt.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	fmt.Fprintf(w, "leads breached today (UTC): %d\n", st.BreachedToday)
}

func printReplicas(w io.Writer, st pipelineStatus) {
	r := st.Replicas
	window := time.Duration(r.WindowSeconds) * time.Second
	if len(r.Live) == 0 {
		fmt.Fprintf(w, "delivering replicas: none seen in the last %s: alerts wait in the outbox until one runs\n", window)
		return
	}
	more := ""
	if r.AtLeast {
		more = " or more"
	}
	fmt.Fprintf(w, "delivering replicas (seen in the last %s): %d%s\n", window, len(r.Live), more)
	for _, l := range r.Live {
		fmt.Fprintf(w, "  %s: %s (seen %s ago)\n", l.Name, strings.Join(l.Channels, ", "),
			(time.Duration(l.SeenAgoSeconds * float64(time.Second))).Round(time.Second))
	}
	if len(r.Differ) == 0 {
		return
	}
	var says []string
	for _, g := range r.Differ {
		verb := "lacks"
		if len(g.Lacking) > 1 {
			verb = "lack"
		}
		says = append(says, fmt.Sprintf("%s %s %s: %s alerts wait for %s", strings.Join(g.Lacking, ", "), verb, g.Channel, g.Channel, strings.Join(g.Having, ", ")))
	}
	fmt.Fprintf(w, "replicas differ: %s\n", strings.Join(says, "; "))
}
