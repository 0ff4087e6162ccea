package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMetricsReportTheOutboxAndDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.post(t, "/api/submit-contact", `{"name": "Metric Lead", "email": "metric@example.com"}`).lead(t, http.StatusCreated)
	if _, err := b.db.Exec(t.Context(), `insert into notification_logs (lead_event_id, conversation_id, channel, status)
		select id, conversation_id, 'slack', 'failed' from lead_events`); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(b.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE leadrelay_events_waiting gauge",
		"leadrelay_events_waiting 1\n",
		`leadrelay_deliveries{channel="slack",status="failed"} 1`,
		"leadrelay_sla_breaches 0\n",
		"leadrelay_oldest_waiting_seconds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}
