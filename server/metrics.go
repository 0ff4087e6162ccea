package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/julienschmidt/httprouter"
)

// metricsQuery reads the figures Prometheus scrapes from the database itself,
// so every replica reports the same truth and nothing resets on a restart.
const metricsQuery = `
select 'events_waiting', '', '', count(*)::float8
  from public.lead_events where not processed
union all
select 'oldest_waiting_seconds', '', '', coalesce(extract(epoch from $1::timestamptz - min(created_at)), 0)::float8
  from public.lead_events where not processed
union all
select 'deliveries', channel::text, status::text, count(*)::float8
  from public.notification_logs group by channel, status
union all
select 'sla_warnings', '', '', count(*)::float8
  from public.conversations where sla_warning_sent_at is not null
union all
select 'sla_breaches', '', '', count(*)::float8
  from public.conversations where sla_breached`

// metrics answers Prometheus' text format.
func (s *server) metrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	type row struct {
		Name    string
		Channel string
		Status  string
		Value   float64
	}
	rows, _ := s.DB.Query(ctx, metricsQuery, s.Clock.Now())
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeDatabaseUnavailable, Message: "cannot read the metrics", Err: err}
	}
	var b strings.Builder
	help := map[string]string{
		"events_waiting":         "gauge|Outbox events not yet processed.",
		"oldest_waiting_seconds": "gauge|Age of the oldest unprocessed outbox event.",
		"deliveries":             "gauge|Notification deliveries by channel and status.",
		"sla_warnings":           "counter|Leads warned of their SLA deadline.",
		"sla_breaches":           "counter|Leads that passed their SLA deadline unanswered.",
	}
	described := map[string]bool{}
	for _, m := range list {
		name := "leadrelay_" + m.Name
		if !described[name] {
			kind, text, _ := strings.Cut(help[m.Name], "|")
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, kind)
			described[name] = true
		}
		if m.Channel != "" {
			fmt.Fprintf(&b, "%s{channel=%q,status=%q} %g\n", name, m.Channel, m.Status, m.Value)
		} else {
			fmt.Fprintf(&b, "%s %g\n", name, m.Value)
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, err = w.Write([]byte(b.String()))
	return err
}
