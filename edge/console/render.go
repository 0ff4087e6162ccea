package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/truenester/leadrelay/sla"
)

// view is what every template gets.
type view struct {
	Title   string
	Message string
	Session Session
	Now     time.Time
	Live    bool // the page listens to the event stream

	// sign-in
	CSRF          string
	Next          string
	KeyLogin      bool
	SupabaseLogin bool

	// banner
	Alerts     []sla.Alert
	AlertCount int
	Stalled    int // events no running replica can deliver (Store.Stalled)

	// leads
	Filter Filter
	Page   Page

	// lead
	Lead *Lead

	// deliveries
	Deliveries     []Delivery
	DeliveryFilter DeliveryFilter

	// report
	Report   *report
	From, To time.Time
	ToDate   string // the last day the report covers, for the form

	Statuses, Qualities, Channels, SLAStates []string
}

// StalledCapped says that Stalled is its bound (maxStalledCount): there may be more.
func (v *view) StalledCapped() bool { return v.Stalled >= maxStalledCount }

var funcs = template.FuncMap{
	"str": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(now, t time.Time) string { return humanDuration(now.Sub(t)) + " ago" },
	// countdown is what console.js's tick writes in a .countdown element: "… left" before the
	// deadline, after it "breached … ago", or "… ago" where the element is data-short.
	"countdown": func(now, deadline time.Time, short bool) string {
		switch {
		case deadline.After(now):
			return humanDuration(deadline.Sub(now)) + " left"
		case short:
			return humanDuration(now.Sub(deadline)) + " ago"
		}
		return "breached " + humanDuration(now.Sub(deadline)) + " ago"
	},
	"upper": strings.ToUpper,
	"title": func(s string) string {
		s = strings.ReplaceAll(s, "_", " ")
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"slaState":  func(l LeadRow, now time.Time) string { return l.SLAState(now) },
	"slug":      func(s string) string { return strings.ReplaceAll(s, " ", "-") },
	"leadTitle": leadTitle,
	"replayForm": func(csrf, eventID, back string) replayForm {
		return replayForm{CSRF: csrf, EventID: eventID, Return: back}
	},
	"alertTitle": func(a sla.Alert) string { return contactName(a.Name, a.Email, a.Phone, a.ConversationID[:8]) },
	"tel": func(p *string) template.URL {
		if p == nil {
			return ""
		}
		var b strings.Builder
		for _, r := range *p {
			if r >= '0' && r <= '9' || r == '+' && b.Len() == 0 {
				b.WriteRune(r)
			}
		}
		return template.URL("tel:" + b.String())
	},
	"mailto": func(p *string) template.URL {
		if p == nil {
			return ""
		}
		return template.URL("mailto:" + strings.ReplaceAll(*p, "?", "%3F"))
	},
	"json": func(raw json.RawMessage) string {
		var buf bytes.Buffer
		if json.Indent(&buf, raw, "", "  ") != nil {
			return string(raw)
		}
		return buf.String()
	},
	"emptyJSON": func(raw json.RawMessage) bool {
		s := strings.TrimSpace(string(raw))
		return s == "" || s == "{}" || s == "null"
	},
	// query is the list's query string with key set to value; its parts are escaped here,
	// so it is a trusted URL piece (html/template would escape the & and = again).
	"query": func(f Filter, key, value string) template.URL {
		q := map[string]string{"status": f.Status, "quality": f.Quality, "source": f.Source, "assignee": f.Assignee, "sla": f.SLA, "q": f.Query}
		if f.Limit != 0 && f.Limit != DefaultPageSize {
			q["limit"] = fmt.Sprint(f.Limit)
		}
		q[key] = value
		var parts []string
		for _, k := range []string{"status", "quality", "source", "assignee", "sla", "q", "limit", "after"} {
			if v := q[k]; v != "" {
				parts = append(parts, k+"="+template.URLQueryEscaper(v))
			}
		}
		return template.URL(strings.Join(parts, "&"))
	},
	"seconds": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return humanDuration(time.Duration(*f * float64(time.Second)))
	},
	"pct": func(n, d int64) string {
		if d == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(d))
	},
}

// humanDuration says a duration as public.duration_text (10_lead_rules.sql) writes it on the
// timeline, so a countdown reads like the entries beside it ("14 min 32 s", "1 day 6 h"), but
// without the sign: the templates put "left" or "ago" around it. TestHumanDurationIsDurationText
// holds it to the SQL; console.js's span says the same in the browser, where countdowns tick.
func humanDuration(d time.Duration) string {
	s := int64(d.Abs() / time.Second)
	amounts := [4]int64{s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60}
	units := [4]string{" day", " h", " min", " s"}
	for i, n := range amounts {
		if n == 0 {
			continue
		}
		said := fmt.Sprintf("%d%s", n, units[i])
		if i == 0 && n > 1 {
			said += "s"
		}
		if i < len(amounts)-1 && amounts[i+1] > 0 {
			said += fmt.Sprintf(" %d%s", amounts[i+1], units[i+1])
		}
		return said
	}
	return "0 s"
}

// parsePages parses each page with the layout and the shared fragments.
func parsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html"))
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "leads", "lead", "deliveries", "report", "error"} {
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	pages[""] = base
	return pages
}

func (v *view) fill() {
	v.Statuses, v.Qualities, v.Channels, v.SLAStates = Statuses, Qualities, Channels, SLAStates
}

// render writes a whole page (the layout around the page's "content").
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	v.fill()
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.Logger.ErrorContext(r.Context(), "render console page", "page", page, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// renderPage is render with the SLA banner loaded.
func (c *Console) renderPage(w http.ResponseWriter, r *http.Request, page string, v *view) error {
	if err := c.loadBanner(r.Context(), v); err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, page, v)
	return nil
}

// renderFragment writes one fragment, for the live updates.
func (c *Console) renderFragment(w http.ResponseWriter, name string, v *view) error {
	v.fill()
	var buf bytes.Buffer
	if err := c.pages[""].ExecuteTemplate(&buf, name, v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = buf.WriteTo(w)
	return nil
}

// report is the SLA report's chart and table: one bar per quality and source, split into
// answered in time, breached and the rest (still waiting, or answered with no deadline
// missed yet).
type report struct {
	Rows   []reportRow
	Width  int
	Height int
	Max    int64
}

type reportRow struct {
	sla.SummaryRow
	Label                      string
	Y                          int
	InTimeW, BreachedW, OtherW float64
	BreachedX, OtherX          float64
}

const (
	chartLabelWidth = 190
	chartBarWidth   = 420
	chartRowHeight  = 28
)

func newReport(rows []sla.SummaryRow) *report {
	sort.SliceStable(rows, func(i, j int) bool {
		qi, qj := qualityRank(rows[i].Quality), qualityRank(rows[j].Quality)
		if qi != qj {
			return qi < qj
		}
		return rows[i].Source < rows[j].Source
	})
	rep := &report{Width: chartLabelWidth + chartBarWidth + 60, Height: chartRowHeight*len(rows) + 10}
	for _, r := range rows {
		rep.Max = max(rep.Max, r.Leads)
	}
	for i, r := range rows {
		scale := 0.0
		if rep.Max > 0 {
			scale = float64(chartBarWidth) / float64(rep.Max)
		}
		other := max(r.Leads-r.AnsweredInTime-r.Breached, 0)
		row := reportRow{
			SummaryRow: r,
			Label:      strings.ToUpper(r.Quality) + " · " + r.Source,
			Y:          i*chartRowHeight + 5,
			InTimeW:    round1(float64(r.AnsweredInTime) * scale),
			BreachedW:  round1(float64(r.Breached) * scale),
			OtherW:     round1(float64(other) * scale),
		}
		row.BreachedX = chartLabelWidth + row.InTimeW
		row.OtherX = row.BreachedX + row.BreachedW
		rep.Rows = append(rep.Rows, row)
	}
	return rep
}

func qualityRank(q string) int {
	for i, v := range Qualities {
		if v == q {
			return i
		}
	}
	return len(Qualities)
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// replayForm is what the "replayForm" template needs.
type replayForm struct{ CSRF, EventID, Return string }
