// Package metrics is leadrelay's Prometheus metrics (client_golang). What
// happens in this process (HTTP requests, delivery attempts, SLA leadership)
// is counted as it happens; what is the database's (the outbox's depth and
// oldest waiting event, the SLA warnings and breaches) is read with one
// bounded query, at most once a second however many scrapers ask, so a
// scrape costs the same at any table size.
package metrics

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/truenester/leadrelay"
)

// WaitingCap bounds the count of waiting events a scrape makes: beyond it,
// the gauge says WaitingCap (the oldest event's age still tells how far
// behind delivery is).
const WaitingCap = 10000

// Options says what the metrics can see.
type Options struct {
	DB       *pgxpool.Pool       // the database's figures; nil: none
	Leader   func() bool         // whether this replica runs the SLA jobs; nil: no leader gauge
	Channels []leadrelay.Channel // the configured channels, whose delivery series start at 0
	Version  string              // for leadrelay_build_info
	Commit   string              // for leadrelay_build_info
	Now      func() time.Time    // nil: time.Now
	// DBTimeout bounds each read of the database's figures, waiting for a connection
	// included (0: DefaultDBTimeout); past it the scrape says leadrelay_database_up 0.
	DBTimeout time.Duration
}

// DefaultDBTimeout bounds a read of the database's figures when Options says nothing:
// short, so a scrape answers well within a scraper's own timeout.
const DefaultDBTimeout = 2 * time.Second

// Metrics holds the registry and the instruments the other packages feed.
// Its methods are safe for concurrent use; a nil *Metrics records nothing.
type Metrics struct {
	registry         *prometheus.Registry
	requests         *prometheus.HistogramVec
	deliveries       *prometheus.CounterVec
	retries          *prometheus.CounterVec
	attemptDurations *prometheus.HistogramVec
}

// New registers every metric.
func New(o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leadrelay_http_request_duration_seconds",
			Help:    "HTTP requests answered, by method, route and status, and how long each took.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadrelay_deliveries_total",
			Help: "Deliveries that ended on this replica, by channel and outcome (sent, failed).",
		}, []string{"channel", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadrelay_delivery_retries_total",
			Help: "Failed delivery attempts that will be retried, by channel.",
		}, []string{"channel"}),
		attemptDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leadrelay_delivery_attempt_duration_seconds",
			Help:    "Delivery attempts, by channel and outcome (sent, retry, failed), and how long each took.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"channel", "outcome"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.deliveries, m.retries, m.attemptDurations,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "leadrelay_build_info",
			Help:        "Always 1; the labels say which build runs.",
			ConstLabels: prometheus.Labels{"version": o.Version, "commit": o.Commit},
		}, func() float64 { return 1 }),
	)
	for _, c := range o.Channels {
		m.deliveries.WithLabelValues(string(c), "sent")
		m.deliveries.WithLabelValues(string(c), "failed")
		m.retries.WithLabelValues(string(c))
	}
	if o.Leader != nil {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "leadrelay_sla_leader",
			Help: "1 while this replica holds the SLA leader lease and runs the SLA jobs, else 0.",
		}, func() float64 {
			if o.Leader() {
				return 1
			}
			return 0
		}))
	}
	if o.DB != nil {
		if o.DBTimeout == 0 {
			o.DBTimeout = DefaultDBTimeout
		}
		m.registry.MustRegister(newDatabaseCollector(o.DB, o.Now, o.DBTimeout))
	}
	return m
}

// Handler answers a scrape in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Registry is for tests that read or lint the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveRequest records one answered HTTP request.
func (m *Metrics) ObserveRequest(method, route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Observe(took.Seconds())
}

// DeliveryAttempted records one attempt on one channel and what it led to:
// a sent or failed delivery, or a retry.
func (m *Metrics) DeliveryAttempted(channel leadrelay.Channel, status leadrelay.DeliveryStatus, took time.Duration) {
	if m == nil {
		return
	}
	outcome := string(status)
	switch status {
	case leadrelay.DeliverySent, leadrelay.DeliveryFailed:
		m.deliveries.WithLabelValues(string(channel), outcome).Inc()
	case leadrelay.DeliveryPending:
		outcome = "retry"
		m.retries.WithLabelValues(string(channel)).Inc()
	}
	m.attemptDurations.WithLabelValues(string(channel), outcome).Observe(took.Seconds())
}

// databaseCollector reads the database's figures: one bounded query
// (leadrelay_private.metrics_snapshot), reused for a second so that many
// scrapers cost one query.
type databaseCollector struct {
	db      *pgxpool.Pool
	now     func() time.Time
	timeout time.Duration

	up, waiting, oldest, warnings, breaches *prometheus.Desc

	mu       sync.Mutex
	readAt   time.Time
	snapshot snapshot
	err      error
}

type snapshot struct {
	waiting, warnings, breaches int64
	oldest                      float64
}

func newDatabaseCollector(db *pgxpool.Pool, now func() time.Time, timeout time.Duration) *databaseCollector {
	return &databaseCollector{
		db:      db,
		now:     now,
		timeout: timeout,
		up: prometheus.NewDesc("leadrelay_database_up",
			"1 when the last read of the database's figures succeeded, else 0 (and the figures below are absent).", nil, nil),
		waiting: prometheus.NewDesc("leadrelay_outbox_events_waiting",
			"Outbox events not yet processed (due, retrying or claimed), counted up to 10000.", nil, nil),
		oldest: prometheus.NewDesc("leadrelay_outbox_oldest_waiting_seconds",
			"Age of the oldest outbox event not yet processed; 0 when none waits.", nil, nil),
		warnings: prometheus.NewDesc("leadrelay_sla_warnings_total",
			"Leads warned of their SLA deadline, in the whole database (every replica reports the same total).", nil, nil),
		breaches: prometheus.NewDesc("leadrelay_sla_breaches_total",
			"Leads that breached their SLA as public.sla_lead_outcomes defines it (declared by the engine or answered late; spam excluded), in the whole database.", nil, nil),
	}
}

func (c *databaseCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.waiting, c.oldest, c.warnings, c.breaches} {
		ch <- d
	}
}

func (c *databaseCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.read()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(s.waiting))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.oldest)
	ch <- prometheus.MustNewConstMetric(c.warnings, prometheus.CounterValue, float64(s.warnings))
	ch <- prometheus.MustNewConstMetric(c.breaches, prometheus.CounterValue, float64(s.breaches))
}

// read returns the figures, from the database at most once a second.
func (c *databaseCollector) read() (snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && time.Since(c.readAt) < time.Second {
		return c.snapshot, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var s snapshot
	err := c.db.QueryRow(ctx, "select events_waiting, oldest_waiting_seconds, sla_warnings, sla_breaches from leadrelay_private.metrics_snapshot($1::timestamptz, $2::integer)",
		c.now(), WaitingCap).Scan(&s.waiting, &s.oldest, &s.warnings, &s.breaches)
	c.readAt, c.snapshot, c.err = time.Now(), s, err
	return s, err
}

// Refused is what a scrape without the token is told, with 401 and Challenge.
const (
	Refused   = "metrics need Authorization: Bearer $METRICS_TOKEN"
	Challenge = `Bearer realm="metrics"` // the WWW-Authenticate header
)

// Authorized says whether r bears token (Authorization: Bearer); an empty
// token lets everyone in (a listen address of its own, private).
func Authorized(token string, r *http.Request) bool {
	return token == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) == 1
}

// Guard serves h only to requests Authorized by token, refusing the others
// in plain text: METRICS_ADDR's port, Prometheus' alone. (The service's own
// port answers its refusals in its JSON.)
func Guard(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Authorized(token, r) {
			w.Header().Set("WWW-Authenticate", Challenge)
			http.Error(w, Refused, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
