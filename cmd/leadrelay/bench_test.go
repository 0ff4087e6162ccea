package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dbtest"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
	"github.com/truenester/leadrelay/testkit"
)

// BenchmarkDelivery measures the pipeline end to end, through the real
// program (`leadrelay serve`, LISTEN on, the default sweep): the time from
// the intake's 201 to the alert arriving at a Slack peer, for leads posted
// at 50/s and as fast as 16 clients can post; then the dispatcher's
// throughput on a backlog, in deliveries per second. `make bench-delivery`
// runs it; the figures are printed, never asserted.
func BenchmarkDelivery(b *testing.B) {
	for range b.N {
		fmt.Println("delivery: time from the intake's 201 to the alert at the Slack peer")
		fmt.Printf("%-22s %8s %8s %9s %9s %9s\n", "load", "leads", "leads/s", "p50", "p99", "max")
		for _, load := range []struct {
			name        string
			rate        int // leads per second; 0: as fast as the clients go
			concurrency int
			duration    time.Duration
		}{
			{"50 leads/s", 50, 4, 10 * time.Second},
			{"max (16 clients)", 0, 16, 10 * time.Second},
		} {
			latencyRun(b, load.name, load.rate, load.concurrency, load.duration)
		}
		backlogRun(b, 20000)
	}
}

var benchName = regexp.MustCompile(`Bench [0-9]+`)

func latencyRun(b *testing.B, name string, rate, concurrency int, duration time.Duration) {
	slack := notifierstest.NewSlack(b)
	base, stop := startServeEnv(b, map[string]string{
		"DATABASE_URL":          dbtest.NewURL(b),
		"SLACK_WEBHOOK_URL":     slack.URL,
		"RATE_LIMIT_PER_MINUTE": "1000000",
		"RATE_LIMIT_BURST":      "1000000",
		"LOG_LEVEL":             "error",
	})
	defer stop()

	var mu sync.Mutex
	answered := map[string]time.Time{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}, Timeout: 10 * time.Second}
	var ticks <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		ticks = t.C
	}
	next := make(chan int)
	go func() {
		defer close(next)
		end := time.After(duration)
		for i := 0; ; i++ {
			if ticks != nil {
				select {
				case <-ticks:
				case <-end:
					return
				}
			}
			select {
			case next <- i:
			case <-end:
				return
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				lead := fmt.Sprintf("Bench %06d", i)
				body := fmt.Sprintf(`{"name": %q, "email": "bench%d@example.com", "message": "benchmark lead"}`, lead, i)
				res, err := client.Post(base+"/api/submit-contact", "application/json", strings.NewReader(body))
				if err != nil {
					b.Errorf("post: %v", err)
					return
				}
				at := time.Now()
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					b.Errorf("post: %d", res.StatusCode)
					return
				}
				mu.Lock()
				answered[lead] = at
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	posted := time.Since(start)
	msgs := slack.WaitFor(b, len(answered), time.Minute)

	var latencies []time.Duration
	for _, m := range msgs {
		lead := benchName.FindString(string(m.Body))
		if at, ok := answered[lead]; ok {
			// The alert may beat the 201 to the client: NOTIFY fires at commit.
			latencies = append(latencies, max(0, m.Received.Sub(at)))
		}
	}
	slices.Sort(latencies)
	fmt.Printf("%-22s %8d %8.0f %9s %9s %9s\n", name, len(answered), float64(len(answered))/posted.Seconds(),
		pct(latencies, 0.50), pct(latencies, 0.99), pct(latencies, 1))
}

// backlogRun saves leads with the dispatcher off, then starts a replica and
// times it until every alert reached both Slack and Telegram.
func backlogRun(b *testing.B, leads int) {
	ctx := context.Background()
	url := dbtest.NewURL(b)
	db := testkit.Connect(b, url)
	if _, err := db.Exec(ctx, `insert into conversations (form, name, email)
		select 'contact_form', 'Backlog ' || g, 'backlog' || g || '@example.com' from generate_series(1, $1) g`, leads); err != nil {
		b.Fatal(err)
	}
	slack, telegram := notifierstest.NewSlack(b), notifierstest.NewTelegram(b)
	start := time.Now()
	_, stop := startServeEnv(b, map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"TELEGRAM_BOT_TOKEN":    telegram.Token,
		"TELEGRAM_CHAT_ID":      telegram.ChatID,
		"TELEGRAM_API_BASE_URL": telegram.BaseURL,
		"LOG_LEVEL":             "error",
	})
	defer stop()
	slack.WaitFor(b, leads, 5*time.Minute)
	telegram.WaitFor(b, leads, 5*time.Minute)
	elapsed := time.Since(start)
	fmt.Printf("backlog: %d leads to Slack and Telegram: %d deliveries in %s = %.0f deliveries/s (one replica, start-up included)\n",
		leads, 2*leads, elapsed.Round(time.Millisecond), float64(2*leads)/elapsed.Seconds())
}

func pct(sorted []time.Duration, p float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	i := min(len(sorted)-1, int(p*float64(len(sorted))))
	return fmt.Sprintf("%.1fms", float64(sorted[i].Microseconds())/1000)
}
