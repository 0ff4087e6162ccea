package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// serve with METRICS_ADDR: the scrape is on that address, with the leader
// gauge and the requests the service answered; the public port has none.
func TestServeMetricsOnTheirOwnAddress(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base, stop := startServeEnv(t, map[string]string{"DATABASE_URL": dbtest.NewURL(t), "METRICS_ADDR": addr})
	if got := status(t, base+"/metrics"); got != http.StatusNotFound {
		t.Errorf("/metrics on the public port = %d, want 404", got)
	}
	var body string
	// The replica becomes the SLA leader within a lease, and the database's figures are
	// read: under their bound (metrics.DefaultDBTimeout, 2s), which a loaded machine's
	// first read, opening the metrics pool's connection, can exceed, and a scrape then
	// says leadrelay_database_up 0 until a read within it.
	testkit.WaitFor(t, wait, "the scrape to show this replica leading, with the database's figures", func() (bool, error) {
		res, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		body = string(b)
		return strings.Contains(body, "leadrelay_sla_leader 1") && strings.Contains(body, "leadrelay_database_up 1"), err
	})
	for _, want := range []string{
		"leadrelay_sla_leader 1",
		`leadrelay_http_request_duration_seconds_count{method="GET",route="/metrics",status="404"} 1`,
		"leadrelay_build_info{",
		"leadrelay_database_up 1",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %q:\n%s", want, body)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
