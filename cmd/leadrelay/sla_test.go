package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// Through the real program: a lead gets its warning once its warning time has passed, and
// its breach alert once its deadline has, each once, on Slack, after its new-lead alert; the
// timeline tells the story; the admin API lists it as breached. The lead's times are moved
// in SQL (as if it had arrived earlier), each once the alert before it is out, so the test
// never races the clock.
func TestServeWarnsThenBreachesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	db := testkit.Connect(t, url)
	slack := notifierstest.NewSlack(t)
	const adminKey = "test-admin-key-0123456789"
	base, _ := startServeEnv(t, map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"ADMIN_API_KEY":         adminKey,
		"SLA_TICK_INTERVAL":     "100ms",
		"NOTIFY_SWEEP_INTERVAL": "100ms",
		// The admin API's calls (a connection of the admin pool included) wait as long
		// as a loaded machine needs: their deadline is not what this test is about.
		"DB_ADMIN_TIMEOUT": "1m",
	})
	id := postLead(t, base, "Slow Answer")
	slack.WaitFor(t, 1, wait)

	// arrivedEarlier moves the lead's arrival, and its SLA times with it, back until the
	// time in column has come.
	arrivedEarlier := func(column string) {
		t.Helper()
		if _, err := db.Exec(ctx, `update conversations c
			set created_at = c.created_at - m.by, sla_warning_at = c.sla_warning_at - m.by,
			    sla_response_deadline = c.sla_response_deadline - m.by
			from (select `+column+` - now() as by from conversations where id = $1) m
			where c.id = $1`, id); err != nil {
			t.Fatalf("move the lead's %s to now: %v", column, err)
		}
	}
	arrivedEarlier("sla_warning_at")
	slack.WaitFor(t, 2, wait)
	arrivedEarlier("sla_response_deadline")
	msgs := slack.WaitFor(t, 3, wait)
	var headlines []string
	for _, m := range msgs {
		var body struct{ Text string }
		json.Unmarshal(m.Body, &body)
		headlines = append(headlines, body.Text)
	}
	for i, want := range []string{"New COLD lead", "SLA warning", "SLA breached"} {
		if !strings.Contains(headlines[i], want) {
			t.Errorf("message %d = %q, want %q", i+1, headlines[i], want)
		}
	}
	testkit.WaitForQuery(t, db, wait, "the breach to be delivered and logged",
		"select count(*) = 3 from lead_events where conversation_id = $1 and processed", id)
	rows, err := db.Query(ctx, "select title from conversation_timeline where conversation_id = $1 order by created_at, title", id)
	if err != nil {
		t.Fatal(err)
	}
	titles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	story := strings.Join(titles, " | ")
	for _, want := range []string{"Lead created", "Slack alert sent", "SLA"} {
		if !strings.Contains(story, want) {
			t.Errorf("timeline %q lacks %q", story, want)
		}
	}
	var warnings, breaches int
	if err := db.QueryRow(ctx, `select count(*) filter (where event_type = 'sla.warning'), count(*) filter (where event_type = 'sla.breached')
		from lead_events where conversation_id = $1`, id).Scan(&warnings, &breaches); err != nil {
		t.Fatal(err)
	}
	if warnings != 1 || breaches != 1 {
		t.Fatalf("%d warnings and %d breaches, want one each", warnings, breaches)
	}

	get := func(path string) (int, []byte) {
		req := testkit.NewRequest(t, http.MethodGet, base+path)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body json.RawMessage
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %v", path, res.StatusCode, err)
		}
		return res.StatusCode, body
	}
	status, body := get("/admin/sla/alerts")
	var alerts struct {
		Alerts []struct {
			ConversationID string `json:"conversation_id"`
			Breached       bool   `json:"breached"`
		}
	}
	json.Unmarshal(body, &alerts)
	if status != http.StatusOK || len(alerts.Alerts) != 1 || alerts.Alerts[0].ConversationID != id || !alerts.Alerts[0].Breached {
		t.Errorf("/admin/sla/alerts: %d %s", status, body)
	}
	if status, body := get("/admin/sla/summary"); status != http.StatusOK || !strings.Contains(string(body), `"cold"`) {
		t.Errorf("/admin/sla/summary: %d %s", status, body)
	}
	if status, body := get("/admin/sla/summary?from=yesterday"); status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_period") {
		t.Errorf("/admin/sla/summary?from=yesterday: %d %s, want 400 invalid_period", status, body)
	}
}
