package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/ops/metrics"
	"github.com/truenester/leadrelay/sla"
)

// newMetrics is serve's metrics: the database's figures from pool, the
// leader gauge from the SLA engine once engine holds it.
func newMetrics(st settings, pool *pgxpool.Pool, engine *atomic.Pointer[sla.Engine]) *metrics.Metrics {
	v, rev := buildVersion()
	var channels []leadrelay.Channel
	for _, s := range st.senders {
		channels = append(channels, leadrelay.Channel(s.Channel()))
	}
	slices.Sort(channels)
	return metrics.New(metrics.Options{
		DB:       pool,
		Channels: channels,
		Version:  v,
		Commit:   rev,
		Leader: func() bool {
			e := engine.Load()
			return e != nil && e.Status().Leader
		},
	})
}

// serveMetrics serves /metrics on METRICS_ADDR, when set, behind
// METRICS_TOKEN when that is set too. The returned stop closes it.
func serveMetrics(cfg config.Edge, m *metrics.Metrics, logger *slog.Logger) (stop func(), err error) {
	switch {
	case cfg.MetricsAddr == "" && cfg.MetricsToken == "":
		logger.Info("metrics off: set METRICS_ADDR (an address of their own, e.g. :9091) or METRICS_TOKEN (a Bearer token on PORT)")
		return func() {}, nil
	case cfg.MetricsAddr == "":
		logger.Info("metrics on /metrics behind METRICS_TOKEN")
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Guard(cfg.MetricsToken, m.Handler()))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("metrics on their own address", "addr", ln.Addr().String(), "token", cfg.MetricsToken != "")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
