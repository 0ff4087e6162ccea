package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/edge/server"
	"github.com/truenester/leadrelay/ops/metrics"
)

func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// On the service's own port /metrics needs METRICS_TOKEN; it reports the
// outbox from the database and every request by its route pattern.
func TestMetricsBehindTheirToken(t *testing.T) {
	t.Parallel()
	const token = "metrics-token-0123456789"
	b := setup(t, map[string]string{"METRICS_TOKEN": token}, func(d *server.Deps) {
		// The figures' read (its first opens a connection) within a bound no load
		// reaches, not the default 2s: the bound is not what this test is about.
		d.Metrics = metrics.New(metrics.Options{DB: d.DB, DBTimeout: time.Minute})
	})
	b.post(t, "/api/submit-contact", `{"name": "Metric Lead", "email": "metric@example.com"}`).lead(t, http.StatusCreated)
	res, err := http.Post(b.url+"/admin/events/0da2626d-5c1e-4f4a-9d43-4a3b7c2e8f10/replay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, tok := range []string{"", "wrong-token-0123456789"} {
		// Refused as every request to this port is: in its JSON, naming the code.
		if code, body := scrape(t, b.url+"/metrics", tok); code != http.StatusUnauthorized || strings.Contains(body, "leadrelay_") ||
			!strings.HasPrefix(body, `{"error":{"code":"unauthorized","message":"metrics need Authorization: Bearer $METRICS_TOKEN"`) {
			t.Errorf("/metrics with token %q = %d %q, want a JSON 401 and no figures", tok, code, body)
		}
	}
	code, body := scrape(t, b.url+"/metrics", token)
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d %s", code, body)
	}
	for _, want := range []string{
		"leadrelay_outbox_events_waiting 1\n",
		"leadrelay_database_up 1\n",
		"leadrelay_sla_breaches_total 0\n",
		"leadrelay_outbox_oldest_waiting_seconds ",
		`leadrelay_http_request_duration_seconds_count{method="POST",route="/api/submit-contact",status="201"} 1`,
		`leadrelay_http_request_duration_seconds_count{method="POST",route="/admin/events/:id/replay",status="`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// Without METRICS_TOKEN, or with METRICS_ADDR (an address of their own),
// the service's port serves no metrics.
func TestMetricsNotOnThePublicPortByDefault(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		nil,
		{"METRICS_ADDR": ":9091", "METRICS_TOKEN": "metrics-token-0123456789"},
	} {
		b := setup(t, env, func(d *server.Deps) { d.Metrics = metrics.New(metrics.Options{DB: d.DB}) })
		if code, body := scrape(t, b.url+"/metrics", "metrics-token-0123456789"); code != http.StatusNotFound || strings.Contains(body, "leadrelay_") {
			t.Errorf("env %v: /metrics = %d %q, want 404", env, code, body)
		}
	}
}
