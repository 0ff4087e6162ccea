package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/edge/console"
)

// BenchmarkLeadsList measures the leads list at 1,000,000 leads: the query of each filter
// through the Store, and the whole page (GET /admin/leads, the SLA banner included) through
// the server, as the server spends it (the handler's time, over loopback). It prints the
// medians and the plans of the main queries. `make bench-console` runs it.
func BenchmarkLeadsList(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a million leads")
	}
	bundle := setup(b)
	ctx := context.Background()
	db := bundle.db
	fill(b, db, 1_000_000)

	store := bundle.console.Store()
	now := time.Now()
	first, err := store.Leads(ctx, console.Filter{Limit: 50}, now)
	if err != nil {
		b.Fatal(err)
	}
	// A cursor deep in the list: the 500,000th lead.
	var deepAt time.Time
	var deepID string
	if err := db.QueryRow(ctx, "select created_at, id from conversations order by created_at desc, id desc offset 500000 limit 1").Scan(&deepAt, &deepID); err != nil {
		b.Fatal(err)
	}
	deep := console.CursorFor(deepAt, deepID)
	filters := []struct {
		name string
		f    console.Filter
	}{
		{"first page", console.Filter{}},
		{"second page", console.Filter{After: first.Next}},
		{"page at lead 500,000", console.Filter{After: deep}},
		{"status=new", console.Filter{Status: "new"}},
		{"quality=hot", console.Filter{Quality: "hot"}},
		{"source=chatbot", console.Filter{Source: "chatbot"}},
		{"sla=breached", console.Filter{SLA: "breached"}},
		{"sla=approaching", console.Filter{SLA: "approaching"}},
		{"sla=waiting", console.Filter{SLA: "waiting"}},
		{"assignee=unassigned&status=contacted", console.Filter{Assignee: "unassigned", Status: "contacted"}},
		{"q=person 123456 (one lead)", console.Filter{Query: "person 123456"}},
		{"q=p77@ (an email piece)", console.Filter{Query: "p77@"}},
		{"q=+97150 (a phone prefix, most leads)", console.Filter{Query: "+97150"}},
	}
	const runs = 7
	for _, c := range filters {
		f := c.f
		if bad := f.Check(); bad != nil {
			b.Fatalf("%s: %v", c.name, bad)
		}
		var times []time.Duration
		var n int
		for range runs {
			start := time.Now()
			page, err := store.Leads(ctx, f, now)
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			times = append(times, time.Since(start))
			n = len(page.Leads)
		}
		slices.Sort(times)
		fmt.Printf("leads list %-40s %3d leads  median %8s  max %8s\n", c.name, n, times[runs/2].Round(10*time.Microsecond), times[runs-1].Round(10*time.Microsecond))
	}

	// The whole page through the server: sign in, then GET /admin/leads.
	br := bundle.browser(b)
	br.signIn(adminKey)
	for _, path := range []string{"/admin/leads", "/admin/leads?quality=hot&sla=breached", "/admin/leads?q=person%20123456", "/admin/leads?after=" + deep} {
		var times []time.Duration
		for range runs {
			start := time.Now()
			res, err := br.Get(bundle.url + path)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("%s: %d", path, res.StatusCode)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		fmt.Printf("GET %-48s median %8s  max %8s (whole page over loopback, banner included)\n", path, times[runs/2].Round(10*time.Microsecond), times[runs-1].Round(10*time.Microsecond))
	}

	for _, q := range []struct{ name, sql string }{
		{"first page", `select id from conversations c order by c.created_at desc, c.id desc limit 51`},
		{"page at lead 500,000", fmt.Sprintf(`select id from conversations c where (c.created_at, c.id) < ('%s'::timestamptz, '%s'::uuid) order by c.created_at desc, c.id desc limit 51`, deepAt.Format(time.RFC3339Nano), deepID)},
		{"search", `select id from conversations c where lower(coalesce(c.name, '') || ' ' || coalesce(c.email, '') || ' ' || coalesce(c.phone, '')) like '%person 123456%' order by c.created_at desc, c.id desc limit 51`},
	} {
		rows, err := db.Query(ctx, "explain (analyze, buffers, costs off) "+q.sql)
		if err != nil {
			b.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				b.Fatal(err)
			}
			plan = append(plan, "    "+line)
		}
		rows.Close()
		fmt.Printf("plan of %s:\n%s\n", q.name, strings.Join(plan, "\n"))
	}
	for range b.N {
	}
}

// fill inserts n leads over the last 60 days, with the triggers off (what they write is not
// what the list reads), in batches, then analyzes.
func fill(b *testing.B, db *pgxpool.Pool, n int) {
	ctx := context.Background()
	start := time.Now()
	for _, sql := range []string{
		"alter table public.conversations disable trigger user",
		fmt.Sprintf(`insert into public.conversations (form, source, name, email, phone, quality, lead_score, status,
				created_at, updated_at, sla_response_deadline, sla_warning_at, first_response_at, sla_breached, sla_breached_at)
			select (array['contact_form', 'chatbot'])[1 + g %% 2]::public.lead_form,
			       (array['website', 'chatbot', 'google', 'facebook'])[1 + g %% 4],
			       'Person ' || g, 'p' || g || '@example.com', '+97150' || lpad(g::text, 7, '0'),
			       q.quality, 50, s.status,
			       t.created, t.created,
			       t.created + q.win, t.created + q.win / 2,
			       case when s.status in ('contacted', 'qualified', 'converted') then t.created + interval '10 minutes' end,
			       g %% 7 = 0 and s.status = 'new' and t.created + q.win < now(),
			       case when g %% 7 = 0 and s.status = 'new' and t.created + q.win < now() then t.created + q.win end
			  from generate_series(1, %d) g
			  cross join lateral (select now() - (g::bigint * 5184) * interval '1 millisecond' as created) t
			  cross join lateral (select (array['hot', 'warm', 'cold'])[1 + g %% 3]::public.lead_quality as quality,
			                             (array[interval '15 minutes', interval '1 hour', interval '24 hours'])[1 + g %% 3] as win) q
			  cross join lateral (select (array['new', 'contacted', 'qualified', 'converted', 'closed', 'new', 'new', 'spam'])[1 + g %% 8]::public.conversation_status as status) s`, n),
		"alter table public.conversations enable trigger user",
		"analyze public.conversations",
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			b.Fatalf("fill: %v\n%s", err, sql)
		}
	}
	fmt.Printf("filled %d leads in %s\n", n, time.Since(start).Round(time.Second))
}
