package console_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/edge/console"
	"github.com/truenester/leadrelay/edge/server"
	"github.com/truenester/leadrelay/ops/health"
	"github.com/truenester/leadrelay/supabase"
)

const adminKey = "console-test-admin-key-0123456789"

// testBundle is the service (server.New with the console) on a fresh database.
type testBundle struct {
	url     string
	db      *pgxpool.Pool
	dbURL   string
	console *console.Console
	hub     *console.Hub
	opts    []func(*bundleOptions)
}

type bundleOptions struct {
	supabase    *console.Supabase
	listen      bool
	poolSize    int32           // the admin pool's connections; 0: pgxpool's default
	dbTimeout   time.Duration   // the console's deadline on each database call; 0: its default
	lockTimeout string          // the admin pool's lock_timeout; "": the server's
	clock       clockwork.Clock // the console's clock; nil: the real one
}

func setup(t testing.TB, opts ...func(*bundleOptions)) *testBundle {
	t.Helper()
	return serve(t, dbtest.NewURL(t), opts)
}

// replica starts another replica of b's service, as a second machine behind the load
// balancer: on b's database, with a pool, a console (its renewals and event streams), a
// Supabase client and a server of its own, made with b's options (a clock they set is
// shared, as replicas' clocks agree).
func (b *testBundle) replica(t testing.TB) *testBundle {
	t.Helper()
	return serve(t, b.dbURL, b.opts)
}

// serve starts the service on the database at dbURL.
func serve(t testing.TB, dbURL string, opts []func(*bundleOptions)) *testBundle {
	t.Helper()
	var o bundleOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	poolConfig, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if o.poolSize > 0 {
		poolConfig.MaxConns = o.poolSize
	}
	if o.lockTimeout != "" {
		poolConfig.ConnConfig.RuntimeParams["lock_timeout"] = o.lockTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := console.NewHub(logger)
	if o.listen {
		listenCtx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { hub.Listen(listenCtx, dbURL, nil, nil) })
		t.Cleanup(func() { stop(); wg.Wait() })
	}
	c := console.New(console.Deps{DB: pool, Logger: logger, AdminKey: adminKey, Hub: hub, Supabase: o.supabase, DBTimeout: o.dbTimeout, Clock: o.clock})
	cfg, err := config.LoadEdge(func(k string) string {
		return map[string]string{"ADMIN_API_KEY": adminKey, "RATE_LIMIT_PER_MINUTE": "10000", "RATE_LIMIT_BURST": "1000"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Deps{Logger: logger, DB: pool, Schema: supabase.FS, Edge: cfg, Console: c}))
	t.Cleanup(srv.Close)
	t.Cleanup(c.EndStreams)
	return &testBundle{url: srv.URL, db: pool, dbURL: dbURL, console: c, hub: hub, opts: opts}
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
type browser struct {
	*http.Client
	t    testing.TB
	base string
}

func (b *testBundle) browser(t testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{
		Client: &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		t: t, base: b.url,
	}
}

// at is the same browser (its cookies) sending its requests to replica b, as the load
// balancer may send any of them to any replica.
func (br *browser) at(b *testBundle) *browser {
	return &browser{Client: br.Client, t: br.t, base: b.url}
}

// cookie returns the value of the browser's cookie name for /admin; "" without one.
func (br *browser) cookie(name string) string {
	br.t.Helper()
	for _, c := range br.Jar.Cookies(mustURL(br.t, br.base+"/admin")) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (br *browser) get(path string) (*http.Response, string) {
	br.t.Helper()
	return br.read(br.Get(br.base + path))
}

func (br *browser) post(path string, form url.Values) (*http.Response, string) {
	br.t.Helper()
	return br.read(br.PostForm(br.base+path, form))
}

// read returns the answer with its body, failing the test on any error.
func (br *browser) read(res *http.Response, err error) (*http.Response, string) {
	br.t.Helper()
	if err != nil {
		br.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		br.t.Fatal(err)
	}
	return res, string(body)
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%.2000s", page)
	}
	return m[1]
}

// signIn signs the browser in with the key and returns the session's CSRF token.
func (br *browser) signIn(key string) (*http.Response, string) {
	br.t.Helper()
	_, page := br.get("/admin/login")
	res, body := br.post("/admin/login", url.Values{"csrf_token": {csrfOf(br.t, page)}, "method": {"key"}, "key": {key}, "next": {"/admin/leads"}})
	if res.StatusCode != http.StatusSeeOther {
		return res, body
	}
	_, page = br.get("/admin/leads")
	return res, csrfOf(br.t, page)
}

// insertLead saves a lead straight into the database, the triggers doing the rest;
// created is how long ago it arrived.
func insertLead(t *testing.T, db *pgxpool.Pool, name, email, phone, quality string, created time.Duration) string {
	t.Helper()
	var id string
	var em, ph *string
	if email != "" {
		em = &email
	}
	if phone != "" {
		ph = &phone
	}
	var q *string
	if quality != "" {
		q = &quality
	}
	err := db.QueryRow(context.Background(), `insert into conversations (form, source, name, email, phone, quality, created_at)
		values ('chatbot', 'chatbot', $1, $2, $3, $4::lead_quality, now() - $5::interval) returning id`,
		name, em, ph, q, created).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSignInSetsASessionCookieAndSignOutEndsIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := b.browser(t)

	// Signed out, a page sends to the sign-in page; a fragment or the stream says 401.
	res, _ := br.get("/admin/leads?status=new")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/login?next=%2Fadmin%2Fleads%3Fstatus%3Dnew" {
		t.Fatalf("signed out: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	for _, path := range []string{"/admin/banner", "/admin/live", "/admin/leads?fragment=list"} {
		if res, _ := br.get(path); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("signed out, %s: %d, want 401", path, res.StatusCode)
		}
	}

	// A wrong key, and a form without its CSRF cookie, sign nobody in.
	if res, body := br.signIn("wrong-key-0123456789012345"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not the admin key") {
		t.Fatalf("wrong key: %d\n%.500s", res.StatusCode, body)
	}
	stranger := b.browser(t)
	if res, _ := stranger.post("/admin/login", url.Values{"csrf_token": {"forged"}, "method": {"key"}, "key": {adminKey}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without the form's CSRF cookie: %d, want 403", res.StatusCode)
	}

	res, csrf := br.signIn(adminKey)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/leads" {
		t.Fatalf("sign in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "leadrelay_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/admin" || cookie.MaxAge <= 0 || cookie.Secure {
		t.Fatalf("session cookie on 127.0.0.1: %+v; want HttpOnly, SameSite=Lax, Path=/admin, an expiry, not Secure", cookie)
	}
	if cookie.MaxAge > int(console.KeySessionTTL.Seconds()) {
		t.Errorf("the session lasts %ds, more than %s", cookie.MaxAge, console.KeySessionTTL)
	}
	if res, body := br.get("/admin/leads"); res.StatusCode != http.StatusOK || !strings.Contains(body, "Sign out") {
		t.Fatalf("signed in, the leads page: %d", res.StatusCode)
	}

	// Signing out ends the session itself: the old cookie opens nothing.
	old := br.Jar.Cookies(mustURL(t, b.url+"/admin"))
	if res, _ := br.post("/admin/logout", url.Values{"csrf_token": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.StatusCode)
	}
	replay := b.browser(t)
	replay.Jar.SetCookies(mustURL(t, b.url+"/admin"), old)
	if res, _ := replay.get("/admin/leads"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the cookie of a signed-out session still opens the console: %d", res.StatusCode)
	}
}

func TestTheSessionCookieIsSecureOutsideLocalhost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for host, secure := range map[string]bool{"admin.truenester.com": true, "localhost:8080": false, "127.0.0.1:8080": false, "[::1]:8080": false} {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		do := func(method, path string, form url.Values) *http.Response {
			req, err := http.NewRequest(method, b.url+path, strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = host
			if form != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			for _, c := range jar.Cookies(mustURL(t, b.url+path)) {
				req.AddCookie(c)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		res := do("GET", "/admin/login", nil)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var loginCookie *http.Cookie
		for _, c := range res.Cookies() {
			loginCookie = c
		}
		req, err := http.NewRequest("POST", b.url+"/admin/login", strings.NewReader(url.Values{"csrf_token": {csrfOf(t, string(body))}, "method": {"key"}, "key": {adminKey}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: loginCookie.Name, Value: loginCookie.Value})
		res, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		var session *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == "leadrelay_session" {
				session = c
			}
		}
		if session == nil || session.Secure != secure {
			t.Errorf("host %s: session cookie %+v; want Secure=%v", host, session, secure)
		}
	}
}

// A state-changing request without the session, or without its CSRF token, changes nothing.
func TestWithoutTheSessionOrTheCSRFTokenNothingChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lead := insertLead(t, b.db, "Csrf Target", "csrf@example.com", "", "hot", 20*time.Minute)
	br := b.browser(t)
	_, csrf := br.signIn(adminKey)
	other := b.browser(t)
	_, otherCSRF := other.signIn(adminKey)

	snapshot := func() string {
		var s string
		err := b.db.QueryRow(context.Background(), `select c.status || '/' || c.quality || '/' || coalesce(c.assigned_to::text, '-')
			|| '/' || (select count(*) from conversation_timeline t where t.conversation_id = c.id)
			|| '/' || (select count(*) from chat_messages m where m.conversation_id = c.id)
			|| '/' || (select count(*) from follow_up_tasks f where f.conversation_id = c.id)
			from conversations c where c.id = $1`, lead).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	actions := map[string]url.Values{
		"contacted": {},
		"status":    {"status": {"closed"}},
		"quality":   {"quality": {"cold"}},
		"assignee":  {"assignee": {"6f1c2a9e-0000-4000-8000-000000000001"}},
		"notes":     {"body": {"a note"}},
		"replies":   {"body": {"a reply"}},
		"followups": {"follow_up_date": {time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")}},
	}
	anonymous := b.browser(t)
	for action, form := range actions {
		path := "/admin/leads/" + lead + "/" + action
		if res, _ := anonymous.post(path, form); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d, want 401", action, res.StatusCode)
		}
		if res, _ := br.post(path, form); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s without the CSRF token: %d, want 403", action, res.StatusCode)
		}
		withWrong := url.Values{"csrf_token": {otherCSRF}}
		for k, v := range form {
			withWrong[k] = v
		}
		if res, _ := br.post(path, withWrong); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s with another session's CSRF token: %d, want 403", action, res.StatusCode)
		}
	}
	for _, path := range []string{"/admin/deliveries/replay", "/admin/logout"} {
		if res, _ := br.post(path, url.Values{}); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s without the CSRF token: %d, want 403", path, res.StatusCode)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("refused requests changed the lead: %s -> %s", before, after)
	}
	// The same request with the token works (so the refusals above were about the token).
	if res, body := br.post("/admin/leads/"+lead+"/contacted", url.Values{"csrf_token": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("mark contacted with the token: %d\n%.500s", res.StatusCode, body)
	}
	if after := snapshot(); !strings.HasPrefix(after, "contacted/") {
		t.Fatalf("mark contacted did not change the status: %s", after)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var leadRow = regexp.MustCompile(`<tr class="lead-row" data-lead="([0-9a-f-]{36})">`)

func leadIDs(page string) []string {
	var ids []string
	for _, m := range leadRow.FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestTheLeadsListFiltersSearchesAndPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// 7 leads, a minute apart, newest last; two HOT ones; one answered.
	var ids []string
	for i := range 7 {
		quality := "cold"
		if i%3 == 0 {
			quality = "hot"
		}
		ids = append(ids, insertLead(t, b.db, fmt.Sprintf("Person %d", i), fmt.Sprintf("p%d@example.com", i), fmt.Sprintf("+9715000000%d", i), quality, time.Duration(10-i)*time.Minute))
	}
	if _, err := b.db.Exec(context.Background(), "update conversations set status = 'contacted' where id = $1", ids[1]); err != nil {
		t.Fatal(err)
	}
	br := b.browser(t)
	br.signIn(adminKey)
	newestFirst := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, ids[i])
		}
		return out
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"", newestFirst(6, 5, 4, 3, 2, 1, 0)},
		{"quality=hot", newestFirst(6, 3, 0)},
		{"status=contacted", newestFirst(1)},
		{"sla=answered", newestFirst(1)},
		// HOT leads 10, 7 and 4 minutes old have 15 minutes: none is breached; only the
		// 10-minute-old one is past its warning (halfway, at 7.5 minutes).
		{"sla=approaching", newestFirst(0)},
		{"sla=breached", nil},
		{"q=person%205", newestFirst(5)},
		{"q=P4%40EXAMPLE", newestFirst(4)},
		{"q=%2B97150000003", newestFirst(3)},
		{"q=100%25", nil},
		{"source=chatbot&assignee=unassigned&quality=cold&status=new", newestFirst(5, 4, 2)},
	}
	for _, c := range cases {
		res, page := br.get("/admin/leads?" + c.query)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%.500s", c.query, res.StatusCode, page)
		}
		if got := leadIDs(page); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: leads %v, want %v", c.query, got, c.want)
		}
	}
	if res, body := br.get("/admin/leads?status=lost&sla=soon"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "status must be one of") {
		t.Errorf("bad filters: %d\n%.300s", res.StatusCode, body)
	}

	// The HTML pager: "Older leads" links carry the filters, two leads a page.
	nextLink := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	var paged []string
	path := "/admin/leads?quality=cold&limit=2"
	for range 10 {
		_, page := br.get(path)
		paged = append(paged, leadIDs(page)...)
		m := nextLink.FindStringSubmatch(page)
		if m == nil {
			break
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
		if !strings.Contains(path, "quality=cold") || !strings.Contains(path, "limit=2") {
			t.Fatalf("the next page's link lost the filters: %s", path)
		}
	}
	if want := newestFirst(5, 4, 2, 1); strings.Join(paged, ",") != strings.Join(want, ",") {
		t.Errorf("the HTML pages held %v, want %v", paged, want)
	}

	// Keyset pages through the JSON API: 3, 3, then 1, no lead twice, none missed, even
	// with a lead arriving between the pages.
	seen := map[string]bool{}
	after := ""
	for page := 0; ; page++ {
		var got console.Page
		apiGet(t, b.url+"/admin/api/leads?limit=3&after="+after, &got)
		for _, l := range got.Leads {
			if seen[l.ID] {
				t.Fatalf("lead %s on two pages", l.ID)
			}
			seen[l.ID] = true
		}
		if page == 0 {
			insertLead(t, b.db, "Late Arrival", "late@example.com", "", "", 0)
		}
		if got.Next == "" {
			break
		}
		after = got.Next
	}
	if len(seen) != 7 {
		t.Fatalf("the pages held %d leads, want the 7 that were there when paging began", len(seen))
	}
}

func TestTheBannerListsApproachingAndBreachedLeadsSoonestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	breached := insertLead(t, b.db, "Long Breached", "", "+971501111111", "hot", 40*time.Minute)  // deadline 25 min ago
	recent := insertLead(t, b.db, "Just Breached", "just@example.com", "", "hot", 16*time.Minute) // 1 min ago
	approaching := insertLead(t, b.db, "Nearly Due", "near@example.com", "", "hot", 10*time.Minute)
	insertLead(t, b.db, "Fresh", "fresh@example.com", "", "hot", time.Minute)          // not yet warned
	insertLead(t, b.db, "Answered", "answered@example.com", "", "hot", 40*time.Minute) // answered below
	if _, err := b.db.Exec(context.Background(), "update conversations set status = 'contacted' where name = 'Answered'"); err != nil {
		t.Fatal(err)
	}
	br := b.browser(t)
	br.signIn(adminKey)
	_, banner := br.get("/admin/banner")
	alert := regexp.MustCompile(`<li class="alert (breached|approaching)" data-lead="([0-9a-f-]{36})">`)
	var got []string
	for _, m := range alert.FindAllStringSubmatch(banner, -1) {
		got = append(got, m[1]+":"+m[2])
	}
	want := []string{"breached:" + breached, "breached:" + recent, "approaching:" + approaching}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("banner alerts %v, want %v\n%s", got, want, banner)
	}
	for _, s := range []string{`href="tel:&#43;971501111111"`, `href="mailto:just@example.com"`, "/admin/leads/" + recent + "/contacted", "3 leads waiting"} {
		if !strings.Contains(banner, s) {
			t.Errorf("the banner lacks %s", s)
		}
	}
	// Every page carries it.
	for _, path := range []string{"/admin/leads", "/admin/leads/" + approaching, "/admin/deliveries", "/admin/report"} {
		if _, page := br.get(path); !strings.Contains(page, `data-lead="`+breached+`"`) || !strings.Contains(page, `id="banner"`) {
			t.Errorf("%s has no SLA banner", path)
		}
	}
}

// A lead's transcript shows what the visitor wrote: the chat's messages, or the form's
// message where no chat message holds it, or, with neither, that there is none.
func TestTheTranscriptShowsTheFormsMessageOrTheChatsOrSaysThereIsNone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	submit := func(payload string) string {
		var answer struct{ ID string }
		var raw []byte
		if err := b.db.QueryRow(context.Background(), "select public.submit_lead($1::jsonb)", payload).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &answer); err != nil {
			t.Fatal(err)
		}
		return answer.ID
	}
	form := submit(`{"form": "contact_form", "email": "form@example.com", "message": "Is the villa still free?"}`)
	chat := submit(`{"form": "chatbot", "phone": "+971501234567", "messages": [{"role": "user", "content": "Two bedrooms in the Marina?"}]}`)
	silent := submit(`{"form": "contact_form", "email": "silent@example.com"}`)
	// A lead written by another way (PostgREST, the demo data) may have its message and no
	// chat message.
	var inserted string
	if err := b.db.QueryRow(context.Background(), `insert into conversations (form, email, message)
		values ('contact_form', 'direct@example.com', 'Can I see it on Sunday?') returning id`).Scan(&inserted); err != nil {
		t.Fatal(err)
	}
	br := b.browser(t)
	br.signIn(adminKey)
	transcript := regexp.MustCompile(`(?s)<h2>Transcript</h2>(.*?)</ol>`)
	for _, c := range []struct {
		lead, want string
	}{
		{form, "Is the villa still free?"},
		{chat, "Two bedrooms in the Marina?"},
		{silent, "No message."},
		{inserted, "Can I see it on Sunday?"},
	} {
		_, page := br.get("/admin/leads/" + c.lead)
		m := transcript.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("lead %s: no transcript on its page:\n%.3000s", c.lead, page)
		}
		items := strings.Count(m[1], "<li")
		if !strings.Contains(m[1], c.want) || items != 1 {
			t.Errorf("lead %s: the transcript has %d items, want one saying %q:\n%s", c.lead, items, c.want, m[1])
		}
	}
}

// A lead's page says why its alerts are not on its deliveries, and every page's banner says
// when alerts are not going out: an event due for longer than a sweep waits while no replica
// delivers (none running has a channel), which both stop saying once one announces a
// channel; and, processed without a delivery, the lead's page says they went to no channel
// (as leadrelay dev shows them). An event just created is not called stalled (a replica
// opens it within its doorbell or sweep).
func TestALeadsPageAndTheBannerSayWhyAlertsAreNotSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lead := insertLead(t, b.db, "Unsent Lead", "unsent@example.com", "", "", 0)
	br := b.browser(t)
	br.signIn(adminKey)
	deliveries := regexp.MustCompile(`(?s)<h2>Deliveries</h2>(.*?)</table>`)
	const note = "1 alert of this lead waits: no replica is delivering alerts now"
	const banner = "Alerts are not going out: no replica is delivering them now (none running has a channel configured). 1 waits in the outbox"
	// says checks the lead page's deliveries (want in them, the note or not) and the banner.
	says := func(when string, stalled bool, want string) {
		t.Helper()
		_, page := br.get("/admin/leads/" + lead)
		m := deliveries.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s: no deliveries on the lead's page:\n%.3000s", when, page)
		}
		text := strings.Join(strings.Fields(m[1]), " ")
		if !strings.Contains(text, want) || strings.Contains(text, note) != stalled {
			t.Errorf("%s: the deliveries say %q, want %q (and the note %q: %v)", when, text, want, note, stalled)
		}
		_, fragment := br.get("/admin/banner")
		words := strings.Join(strings.Fields(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(fragment, "")), " ")
		if said := strings.Contains(words, banner); said != stalled {
			t.Errorf("%s: the banner says %q, want the stalled line: %v", when, fragment, stalled)
		}
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := b.db.Exec(context.Background(), sql, args...); err != nil {
			t.Fatal(err)
		}
	}

	says("just created, no replica running", false, "No delivery yet.")
	exec(`update lead_events set available_at = available_at - interval '31 seconds' where conversation_id = $1`, lead)
	says("due for 31 s, no replica running", true, "No delivery yet.")
	exec(`select public.announce_replica('replica-a', '{slack}', now())`)
	says("a replica with Slack running", false, "No delivery yet.")
	exec(`select public.announce_replica('replica-a', '{slack}', now() - interval '1 hour')`)
	says("the replica gone", true, "No delivery yet.")
	exec(`select count(*) from public.claim_console_events(10, now())`)
	says("shown by leadrelay dev", false, "No delivery: this lead's alerts went to no channel")
}

// The event stream announces a lead within a second of its commit, fed by LISTEN.
func TestTheEventStreamAnnouncesANewLead(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *bundleOptions) { o.listen = true })
	br := b.browser(t)
	br.signIn(adminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream := br.stream(ctx)
	waitFor(t, "the stream to subscribe", func() bool { return b.hub.Subscribers() == 1 })
	// A lead committed before the hub's LISTEN is in effect would be announced only as a
	// refresh of everything: wait until its connection has listened on its last channel.
	testkit.WaitForQuery(t, b.db, 10*time.Second, "the hub to listen",
		`select exists (select from pg_stat_activity where datname = current_database()
		   and query = 'listen leadrelay_console' and state = 'idle')`)
	var lead string
	committed := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for lead == "" || time.Now().Before(deadline) {
		if lead == "" {
			lead = insertLead(t, b.db, "Live Lead", "live@example.com", "", "", 0)
			committed = time.Now()
		}
		e := stream.next()
		if e == `lead {"id":"`+lead+`"}` {
			t.Logf("announced %s after its commit", time.Since(committed).Round(time.Millisecond))
			return
		}
	}
	t.Fatal("the new lead was never announced")
}

// eventStream is a browser's open event stream (/admin/live).
type eventStream struct {
	t      testing.TB
	ctx    context.Context
	events chan string // "<event> <data>", or "ping" for a heartbeat; closed when the stream ends
	ended  error       // once events is closed, why: nil when the server ended the stream
}

// stream opens the browser's event stream, read until ctx ends, and reads its hello.
func (br *browser) stream(ctx context.Context) *eventStream {
	br.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", br.base+"/admin/live", nil)
	if err != nil {
		br.t.Fatal(err)
	}
	client := *br.Client
	client.Timeout = 0
	res, err := client.Do(req)
	if err != nil {
		br.t.Fatal(err)
	}
	br.t.Cleanup(func() { res.Body.Close() })
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		br.t.Fatalf("the event stream: %d, content type %q", res.StatusCode, ct)
	}
	s := &eventStream{t: br.t, ctx: ctx, events: make(chan string, 16)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var event, got string
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
				continue
			case strings.HasPrefix(line, "data: "):
				got = event + " " + strings.TrimPrefix(line, "data: ")
			case line == ": ping":
				got = "ping"
			default:
				continue
			}
			select {
			case s.events <- got:
			case <-ctx.Done():
				return
			}
		}
		s.ended = sc.Err()
	}()
	if e := s.next(); !strings.HasPrefix(e, "hello") {
		br.t.Fatalf("first event %q, want hello", e)
	}
	return s
}

// next returns the stream's next event.
func (s *eventStream) next() string {
	s.t.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			s.t.Fatalf("the stream ended (%v)", s.ended)
		}
		return e
	case <-s.ctx.Done():
		s.t.Fatal("no event within the deadline")
	}
	return ""
}

// end checks that the stream ends (the server closes it) without sending anything more.
func (s *eventStream) end(what string) {
	s.t.Helper()
	for e := range s.events {
		s.t.Errorf("%s: the stream sent %q", what, e)
	}
	if s.ended != nil {
		s.t.Errorf("%s: the stream did not end: %v", what, s.ended)
	}
}

// Signing out ends the session's event streams on this replica at once: every tab's stream
// ends without sending anything more, while another session's stream goes on.
func TestSigningOutEndsTheSessionsEventStreams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin, other := b.browser(t), b.browser(t)
	_, csrf := admin.signIn(adminKey)
	other.signIn(adminKey)
	tabs := []*eventStream{admin.stream(ctx), admin.stream(ctx)}
	watching := other.stream(ctx)

	if res, _ := admin.post("/admin/logout", url.Values{"csrf_token": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.StatusCode)
	}
	b.hub.Publish(console.Change{All: true})
	if e := watching.next(); e != `change {"all":true}` {
		t.Errorf("the other session's stream got %q, want the change", e)
	}
	for i, tab := range tabs {
		tab.end(fmt.Sprintf("tab %d after sign-out", i+1))
	}
}

// Every heartbeat (on the injected clock) a stream reads its session again: a session signed
// out on another replica (its row gone, as that replica's sign-out leaves it) ends its stream
// here at the next heartbeat, without the heartbeat's ping, while a stream whose session
// stands gets the ping and goes on until its session expires.
func TestAnEventStreamEndsAtTheHeartbeatAfterItsSessionEndedElsewhere(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now())
	b := setup(t, func(o *bundleOptions) { o.clock = clock })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	gone, stays := b.browser(t), b.browser(t)
	gone.signIn(adminKey)
	stays.signIn(adminKey)
	ending, going := gone.stream(ctx), stays.stream(ctx)
	if err := clock.BlockUntilContext(ctx, 2); err != nil { // both streams' heartbeats
		t.Fatal(err)
	}

	token := gone.cookie("leadrelay_session")
	tag, err := b.db.Exec(ctx, "delete from leadrelay_private.console_sessions where token_hash = sha256(convert_to($1::text, 'UTF8'))", token)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("sign the session out elsewhere: %v, %d rows", err, tag.RowsAffected())
	}
	clock.Advance(console.Heartbeat)
	if e := going.next(); e != "ping" {
		t.Errorf("the standing session's stream at the heartbeat: %q, want a ping", e)
	}
	ending.end("the heartbeat after the session was signed out elsewhere")

	clock.Advance(console.KeySessionTTL)
	going.end("the heartbeat after the session expired")
}

func apiGet(t *testing.T, url string, dst any) {
	t.Helper()
	req := testkit.NewRequest(t, "GET", url)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, err := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %d %s (%v)", url, res.StatusCode, body, err)
	}
	if err := json.NewDecoder(res.Body).Decode(dst); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 30*time.Second, what, testkit.Until(cond))
}

// Where LISTEN is off (a pooler in transaction mode), the hub polls the timeline: a new lead
// and a change to another are announced all the same.
func TestThePollAnnouncesWhatLISTENWould(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.hub.Poll(ctx, b.db, 50*time.Millisecond, 0, nil, nil) })
	t.Cleanup(func() { stop(); wg.Wait() })
	changes, unsubscribe := b.hub.Subscribe()
	defer unsubscribe()
	old := insertLead(t, b.db, "Older Lead", "older@example.com", "", "", time.Hour)
	next := func(what string, match func(console.Change) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case c := <-changes:
				if match(c) {
					return
				}
			case <-deadline:
				t.Fatalf("the poll never announced %s", what)
			}
		}
	}
	fresh := insertLead(t, b.db, "Polled Lead", "polled@example.com", "", "", 0)
	next("the new lead", func(c console.Change) bool { return c.NewLead == fresh })
	if _, err := b.db.Exec(context.Background(), "update conversations set status = 'contacted' where id = $1", old); err != nil {
		t.Fatal(err)
	}
	next("the older lead's change", func(c console.Change) bool { return slices.Contains(c.IDs, old) })
}

// The poll's every look has a deadline (the admin timeout, on the injected clock), waiting
// for a connection of the admin pool included, and the poll is a health part as LISTEN's
// is, whose failure counts only while it lasts. With the pool's one connection taken (here
// by the test, for as long as it likes), a look gives up at its deadline and /readyz stays
// ready (one slow admin query does not take the replica out of the intake's rotation); the
// next look failing too, past interval + timeout since the first began, makes /readyz name
// the part (logged once); and with the connection free, the next look makes the replica
// ready again and announces the lead created meanwhile.
func TestAFailedPollCountsForReadinessOnlyWhileTheLooksKeepFailing(t *testing.T) {
	t.Parallel()
	// The timeout longer than the interval, as DB_ADMIN_TIMEOUT (10s) is longer than the
	// poll's second: the bound is 3s.
	const interval, timeout = time.Second, 2 * time.Second
	b := setup(t, func(o *bundleOptions) { o.poolSize = 1 })
	clock := clockwork.NewFakeClock()
	var logs testkit.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	parts := health.New(logger, clock)
	readyz := readiness(t, b.dbURL, parts, clock)
	hub := console.NewHub(logger)
	changes, unsubscribe := hub.Subscribe()
	defer unsubscribe()
	ctx, stop := context.WithCancel(testkit.Context(t))
	var running sync.WaitGroup
	defer func() { stop(); running.Wait() }()
	running.Go(func() { hub.Poll(ctx, b.db, interval, timeout, parts, clock) })
	state := func() string { return parts.States()[console.LivePart] }
	tick := func() {
		t.Helper()
		if err := clock.BlockUntilContext(ctx, 1); err != nil { // the poll's ticker
			t.Fatal(err)
		}
		clock.Advance(interval)
	}
	// A look waits for a connection: its deadline is on the clock beside the ticker.
	lookWaits := func() {
		t.Helper()
		if err := clock.BlockUntilContext(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}

	// The first look, at once, reads where to start.
	waitFor(t, "the poll to work", func() bool { return state() == "ok" })
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz with the poll working: %d %s", code, body)
	}
	conn, err := b.db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release := sync.OnceFunc(conn.Release) // the pool closes only once it is back
	defer release()

	// One look fails at its deadline: 2s since it began, within the bound.
	tick()
	lookWaits()
	clock.Advance(timeout)
	waitFor(t, "the failed look to be logged", func() bool { return strings.Contains(logs.String(), "console poll failed;") })
	if code, body := readyz(); code != http.StatusOK || state() != "ok" {
		t.Fatalf("/readyz after one failed look: %d %s (the part: %s), want 200 and ok", code, body, state())
	}
	if why := hub.Paused(); why != "" {
		t.Fatalf("after one failed look the browsers are told %q, want nothing", why)
	}

	// The next look (at once: its tick came while the first waited) fails too, 4s since the
	// first began.
	lookWaits()
	clock.Advance(timeout)
	waitFor(t, "the failing looks to be named", func() bool { return state() != "ok" })
	code, body := readyz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, console.LivePart+": console poll failing for 4s (bound 3s)") || !strings.Contains(body, "DB_ADMIN_TIMEOUT") {
		t.Fatalf("/readyz after looks failing for 4s: %d %s, want 503 naming %s for its timeout", code, body, console.LivePart)
	}
	if why := hub.Paused(); why != "the database does not answer this replica's looks" {
		t.Fatalf("with the looks failing the browsers are told %q", why)
	}

	// The next look gets the connection once it is free, and works.
	lookWaits()
	release()
	fresh := insertLead(t, b.db, "Late Lead", "late@example.com", "", "", 0)
	waitFor(t, "the poll to work again", func() bool { return state() == "ok" })
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz with the poll working again: %d %s", code, body)
	}
	if why := hub.Paused(); why != "" {
		t.Fatalf("with the poll working again the browsers are told %q", why)
	}
	tick() // a look after the lead's commit, if the last one came before it
	waitFor(t, "the lead created while the pool was taken", func() bool {
		select {
		case c := <-changes:
			return c.NewLead == fresh
		default:
			return false
		}
	})
	for line, want := range map[string]int{
		"console poll failed;":                            1, // the run's first failure
		"console poll failed again":                       1, // each retry, at debug
		"health: " + console.LivePart + " is not working": 1,
		"health: " + console.LivePart + " works again":    1,
	} {
		if n := strings.Count(logs.String(), line); n != want {
			t.Errorf("%q logged %d times, want %d:\n%s", line, n, want, logs.String())
		}
	}
}

// readiness returns a /readyz of a server on its own pool of the database at dbURL (not
// the admin pool a test may hold), whose background parts are parts.
func readiness(t *testing.T, dbURL string, parts *health.Registry, clock clockwork.Clock) func() (int, string) {
	t.Helper()
	pool, err := pgxpool.New(testkit.Context(t), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg, err := config.LoadEdge(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Its check of the database within a bound no load reaches, not the default 2s (its
	// first opens a connection): what this test reads from /readyz is the parts' state.
	srv := httptest.NewServer(server.New(server.Deps{Logger: logger, DB: pool, Schema: supabase.FS, Edge: cfg, Health: parts, Clock: clock,
		ReadyTimeout: time.Minute}))
	t.Cleanup(srv.Close)
	probe := &browser{Client: &http.Client{Timeout: 20 * time.Second}, t: t, base: srv.URL}
	return func() (int, string) {
		t.Helper()
		res, body := probe.get("/readyz")
		return res.StatusCode, body
	}
}

// apiDo sends a JSON admin API request with the admin key and decodes the answer.
func apiDo(t *testing.T, method, url, body string, want int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, res.StatusCode, raw, want)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s %s: the answer is not a JSON object: %v: %s", method, url, err, raw)
	}
	return got
}

// Every action of the JSON admin API, each on the lead's timeline by the admin key.
func TestTheJSONAdminAPIActs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lead := insertLead(t, b.db, "Json Lead", "json@example.com", "+971500000001", "warm", time.Minute)
	base := b.url + "/admin/api/leads/" + lead
	if got := apiDo(t, "POST", base+"/contacted", "", 200); got["changed"] != true {
		t.Errorf("contacted: %v", got)
	}
	apiDo(t, "POST", base+"/status", `{"status":"qualified"}`, 200)
	apiDo(t, "POST", base+"/status", `{"status":"won"}`, 400)
	apiDo(t, "POST", base+"/quality", `{"quality":"hot"}`, 200)
	apiDo(t, "POST", base+"/assignee", `{"assignee":"6f1c2a9e-0000-4000-8000-000000000001"}`, 200)
	apiDo(t, "POST", base+"/assignee", `{}`, 400)
	apiDo(t, "POST", base+"/assignee", `{"assignee":null}`, 200)
	apiDo(t, "POST", base+"/assignee", `{"assignee":"6f1c2a9e-0000-4000-8000-000000000002"}`, 200)
	apiDo(t, "POST", base+"/notes", `{"body":"Wants a viewing on Saturday"}`, 201)
	apiDo(t, "POST", base+"/notes", `{"body":"  "}`, 400)
	apiDo(t, "POST", base+"/replies", `{"body":"Saturday at 10 works"}`, 201)
	apiDo(t, "POST", base+"/notes", `{"body":"x","unknown":1}`, 400)
	task := apiDo(t, "POST", base+"/followups", fmt.Sprintf(`{"follow_up_date":%q,"notes":"Confirm the viewing"}`, time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)), 201)["id"].(string)
	apiDo(t, "POST", b.url+"/admin/api/followups/"+task+"/complete", "", 200)
	apiDo(t, "POST", b.url+"/admin/api/followups/"+task+"/cancel", "", 409)
	apiDo(t, "POST", b.url+"/admin/api/followups/00000000-0000-4000-8000-000000000000/complete", "", 404)
	apiDo(t, "POST", b.url+"/admin/api/leads/00000000-0000-4000-8000-000000000000/notes", `{"body":"x"}`, 404)
	apiDo(t, "GET", b.url+"/admin/api/leads?sla=soon", "", 400)

	var lead2 console.Lead
	apiGet(t, base, &lead2)
	if lead2.Status != "qualified" || lead2.Quality != "hot" || lead2.AssignedTo == nil || len(lead2.Messages) != 1 || len(lead2.FollowUps) != 1 {
		t.Fatalf("the lead after the actions: status %s, quality %s, assignee %v, %d messages, %d follow-ups",
			lead2.Status, lead2.Quality, lead2.AssignedTo, len(lead2.Messages), len(lead2.FollowUps))
	}
	kinds := map[string]int{}
	for _, e := range lead2.Entries {
		if e.ActorID != nil && *e.ActorID == "admin key" {
			kinds[e.EventType]++
		}
	}
	for _, k := range []string{"status_changed", "quality_changed", "assigned", "note", "message", "first_response", "followup_scheduled", "followup_completed"} {
		if kinds[k] == 0 {
			t.Errorf("no %s entry by the admin key on the timeline: %v", k, kinds)
		}
	}

	// Deliveries: a failed one is listed and replayed.
	if _, err := b.db.Exec(context.Background(), `insert into notification_logs (lead_event_id, conversation_id, channel, status, attempts, last_error)
		select id, conversation_id, 'telegram', 'failed', 4, 'telegram: 400' from lead_events where conversation_id = $1 and event_type = 'lead.created'`, lead); err != nil {
		t.Fatal(err)
	}
	list := apiDo(t, "GET", b.url+"/admin/api/deliveries?channel=telegram", "", 200)["deliveries"].([]any)
	if len(list) != 1 {
		t.Fatalf("failed telegram deliveries: %v", list)
	}
	apiDo(t, "GET", b.url+"/admin/api/deliveries?channel=pigeon", "", 400)
	if got := apiDo(t, "POST", b.url+"/admin/api/deliveries/replay", `{"channel":"slack"}`, 202); got["channels_queued"] != float64(0) {
		t.Errorf("replay of slack's failures: %v", got)
	}
	if got := apiDo(t, "POST", b.url+"/admin/api/deliveries/replay", `{"channel":"telegram"}`, 202); got["channels_queued"] != float64(1) {
		t.Errorf("replay of telegram's failures: %v", got)
	}
}

// With every connection of the admin pool taken (here by the test, for as long as it likes),
// a console page, a console action and the JSON admin API each answer 503 with Retry-After
// once their deadline passes, instead of waiting for a connection for ever; with a
// connection free again they answer as usual.
func TestAdminRequestsGiveUpOnABusyPoolWith503(t *testing.T) {
	t.Parallel()
	const size = 2
	b := setup(t, func(o *bundleOptions) { o.poolSize, o.dbTimeout = size, time.Second })
	lead := insertLead(t, b.db, "Busy Lead", "busy@example.com", "", "warm", time.Minute)
	// Signed in on another replica of the same database with the console's defaults, whose
	// calls have the default deadline: the sign-in's calls are not what this test is about,
	// and a loaded machine can take longer than a second over them. The session holds on
	// every replica.
	br := b.browser(t)
	res, csrf := br.at(serve(t, b.dbURL, nil)).signIn(adminKey)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}

	ctx := testkit.Context(t)
	var held []*pgxpool.Conn
	for range size {
		conn, err := b.db.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	api := func(method, path string) *http.Response {
		req := testkit.NewRequest(t, method, b.url+path)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if res.StatusCode == http.StatusServiceUnavailable && (json.Unmarshal(raw, &e) != nil || e.Error.Code != "database_unavailable") {
			t.Errorf("%s %s: 503 %s, want the code database_unavailable", method, path, raw)
		}
		return res
	}
	page := func(res *http.Response, _ string) *http.Response { return res }
	for what, res := range map[string]*http.Response{
		"the leads page":        page(br.get("/admin/leads")),
		"the leads list":        page(br.get("/admin/leads?fragment=list")),
		"mark contacted":        page(br.post("/admin/leads/"+lead+"/contacted", url.Values{"csrf_token": {csrf}})),
		"GET /admin/api/leads":  api(http.MethodGet, "/admin/api/leads"),
		"POST .../contacted":    api(http.MethodPost, "/admin/api/leads/"+lead+"/contacted"),
		"GET /admin/sla/alerts": api(http.MethodGet, "/admin/sla/alerts"),
	} {
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "2" {
			t.Errorf("%s with the admin pool taken: %d, Retry-After %q; want 503, 2", what, res.StatusCode, res.Header.Get("Retry-After"))
		}
	}

	for _, conn := range held {
		conn.Release()
	}
	var status string
	if err := b.db.QueryRow(ctx, "select status::text from conversations where id = $1", lead).Scan(&status); err != nil || status != "new" {
		t.Errorf("the lead after the refused actions: %s %v, want still new", status, err)
	}
	waitFor(t, "the leads page with the pool free", func() bool { res, _ := br.get("/admin/leads"); return res.StatusCode == http.StatusOK })
}

// An admin action that waits on a row lock past its lock timeout (DB_LOCK_TIMEOUT; here the
// lead's row, locked by the test as another transaction would hold it) answers 503 with
// Retry-After, in the console and in the JSON admin API, not a 500: nothing was changed, and
// the same action once the lock is gone does its work, once.
//
// Only the refused actions run under the test's 100ms: the lead, the sign-in and the action
// once the lock is gone go through another replica of the database, with the server's
// lock_timeout. A commit that NOTIFYs (a new lead, a timeline entry) waits for PostgreSQL's
// one NOTIFY queue lock, shared by every database of the server, and that wait counts
// against lock_timeout: at load, inserting the lead under 100ms failed ("canceling
// statement due to lock timeout") with no row locked by anyone.
func TestAnActionThatWaitsOnARowLockPastItsTimeoutIs503(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *bundleOptions) { o.lockTimeout = "100ms" })
	other := serve(t, b.dbURL, nil)
	lead := insertLead(t, other.db, "Locked Lead", "locked@example.com", "", "warm", time.Minute)
	br := b.browser(t)
	res, csrf := br.at(other).signIn(adminKey)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	ctx := testkit.Context(t)
	holder := testkit.Connect(t, b.dbURL)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "select 1 from conversations where id = $1 for update", lead); err != nil {
		t.Fatal(err)
	}

	page, body := br.post("/admin/leads/"+lead+"/contacted", url.Values{"csrf_token": {csrf}})
	if page.StatusCode != http.StatusServiceUnavailable || page.Header.Get("Retry-After") != "2" || !strings.Contains(body, "try again in a moment") {
		t.Errorf("mark contacted in the console with the lead locked: %d, Retry-After %q; want 503, 2, and a page that says to try again", page.StatusCode, page.Header.Get("Retry-After"))
	}
	req := testkit.NewRequest(t, http.MethodPost, b.url+"/admin/api/leads/"+lead+"/contacted")
	req.Header.Set("Authorization", "Bearer "+adminKey)
	api, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(api.Body)
	api.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if api.StatusCode != http.StatusServiceUnavailable || api.Header.Get("Retry-After") != "2" || json.Unmarshal(raw, &e) != nil || e.Error.Code != "database_unavailable" {
		t.Errorf("POST /admin/api/leads/.../contacted with the lead locked: %d, Retry-After %q, %s; want 503, 2, database_unavailable", api.StatusCode, api.Header.Get("Retry-After"), raw)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	if got := apiDo(t, "POST", other.url+"/admin/api/leads/"+lead+"/contacted", "", 200); got["changed"] != true {
		t.Errorf("mark contacted once the lock is gone: %v", got)
	}
	var status string
	var entries int
	if err := b.db.QueryRow(ctx, `select c.status::text, (select count(*) from conversation_timeline t where t.conversation_id = c.id and t.event_type = 'status_changed')
		from conversations c where c.id = $1`, lead).Scan(&status, &entries); err != nil || status != "contacted" || entries != 1 {
		t.Errorf("the lead after the action: status %s, %d status_changed entries, %v; want contacted, 1", status, entries, err)
	}
}

// A call whose connection to the database is lost mid-query (here cut by the test while the
// call waits on a table lock, so nothing decides by the clock) is the database away, not a
// fault of the service: a console page, a console action and the JSON admin API each answer
// 503 with Retry-After, as for a busy pool, and the actions changed nothing. The deadline and
// the lock timeout are a minute, so the cut is what ends the calls.
func TestACallWhoseConnectionIsLostMidQueryIs503(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	link := testkit.NewProxy(t, dbURL)
	b := serve(t, link.URL, []func(*bundleOptions){func(o *bundleOptions) { o.dbTimeout, o.lockTimeout = time.Minute, "1min" }})
	other := serve(t, dbURL, nil)
	lead := insertLead(t, other.db, "Cut Lead", "cut@example.com", "", "warm", time.Minute)
	br := b.browser(t)
	res, csrf := br.signIn(adminKey)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	ctx := testkit.Context(t)
	holder := testkit.Connect(t, dbURL)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "lock table conversations in access exclusive mode"); err != nil {
		t.Fatal(err)
	}

	type answer struct {
		what       string
		status     int
		retryAfter string
		body       string
		err        error
	}
	answers := make(chan answer, 3)
	send := func(what string, client *http.Client, req *http.Request) {
		go func() {
			res, err := client.Do(req)
			if err != nil {
				answers <- answer{what: what, err: err}
				return
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			answers <- answer{what, res.StatusCode, res.Header.Get("Retry-After"), string(body), err}
		}()
	}
	send("the leads page", br.Client, testkit.NewRequest(t, http.MethodGet, b.url+"/admin/leads"))
	action, err := http.NewRequest(http.MethodPost, b.url+"/admin/leads/"+lead+"/contacted", strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	action.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	send("mark contacted in the console", br.Client, action)
	api := testkit.NewRequest(t, http.MethodPost, b.url+"/admin/api/leads/"+lead+"/contacted")
	api.Header.Set("Authorization", "Bearer "+adminKey)
	send("POST /admin/api/leads/.../contacted", http.DefaultClient, api)

	var waiting []int32
	waitFor(t, "the three calls to wait on the table lock", func() bool {
		err := other.db.QueryRow(ctx, `select coalesce(array_agg(pid), '{}') from pg_stat_activity
			where datname = current_database() and wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && len(waiting) == 3
	})
	link.Cut()
	for range 3 {
		a := <-answers
		switch {
		case a.err != nil:
			t.Errorf("%s: %v", a.what, a.err)
		case a.status != http.StatusServiceUnavailable || a.retryAfter != "2":
			t.Errorf("%s with its connection cut: %d, Retry-After %q; want 503, 2", a.what, a.status, a.retryAfter)
		case a.what == "POST /admin/api/leads/.../contacted" && !strings.Contains(a.body, `"database_unavailable"`):
			t.Errorf("%s: %s, want the code database_unavailable", a.what, a.body)
		case a.what != "POST /admin/api/leads/.../contacted" && !strings.Contains(a.body, "try again in a moment"):
			t.Errorf("%s: a page that does not say to try again:\n%.500s", a.what, a.body)
		}
	}

	// Once the lock is gone, the cut calls' backends find their client gone and end,
	// their transactions uncommitted.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.WaitForQuery(t, other.db, 30*time.Second, "the cut calls' backends to end",
		"select not exists (select from pg_stat_activity where pid = any($1))", waiting)
	var status string
	var entries int
	if err := other.db.QueryRow(ctx, `select c.status::text, (select count(*) from conversation_timeline t where t.conversation_id = c.id and t.event_type = 'status_changed')
		from conversations c where c.id = $1`, lead).Scan(&status, &entries); err != nil || status != "new" || entries != 0 {
		t.Errorf("the lead after the cut actions: status %s, %d status_changed entries, %v; want new, none", status, entries, err)
	}
}

// The console's LISTEN connection is a health part: while its link to the database is cut
// and every reconnection fails, the replica's health names it (and the loss is logged once,
// not once per try); once the link heals, the next try (on the injected clock) listens
// again, the part is ok, and the browsers are told to refresh everything.
func TestTheConsoleLISTENIsAHealthPart(t *testing.T) {
	t.Parallel()
	link := testkit.NewProxy(t, dbtest.NewURL(t))
	clock := clockwork.NewFakeClock()
	var logs testkit.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	parts := health.New(logger, clock)
	hub := console.NewHub(logger)
	changes, unsubscribe := hub.Subscribe()
	defer unsubscribe()
	ctx, stop := context.WithCancel(testkit.Context(t))
	var running sync.WaitGroup
	defer func() { stop(); running.Wait() }()
	running.Go(func() { hub.Listen(ctx, link.URL, parts, clock) })
	state := func() string { return parts.States()[console.LivePart] }
	refreshed := func(what string) {
		t.Helper()
		waitFor(t, what, func() bool {
			select {
			case c := <-changes:
				return c.All
			default:
				return false
			}
		})
	}

	waitFor(t, "the console's LISTEN to work", func() bool { return state() == "ok" })
	refreshed("refresh everything on the first LISTEN")
	link.Cut()
	waitFor(t, "the lost LISTEN to be named", func() bool { return state() != "ok" })
	// Reconnections fail while the link is down: each waits its backoff (at most a
	// minute) on the clock, then tries, and the part stays failing.
	for try := range 4 {
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := parts.Check(); err == nil || !strings.Contains(err.Error(), console.LivePart+": LISTEN connection lost") {
			t.Fatalf("health after %d failed tries: %v, want %s named", try, err, console.LivePart)
		}
		clock.Advance(time.Minute)
	}
	link.Heal()
	if err := clock.BlockUntilContext(ctx, 1); err != nil { // the fourth try failed, waiting again
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	waitFor(t, "the console's LISTEN to work again", func() bool { return state() == "ok" })
	refreshed("refresh everything once LISTEN is back")
	if err := parts.Check(); err != nil {
		t.Errorf("health once LISTEN is back: %v", err)
	}
	if n := strings.Count(logs.String(), "health: "+console.LivePart+" is not working"); n != 1 {
		t.Errorf("the loss was logged %d times, want once:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "health: "+console.LivePart+" works again"); n != 1 {
		t.Errorf("the recovery was logged %d times, want once:\n%s", n, logs.String())
	}
}

// A page whose live updates stopped says so: while the replica's LISTEN connection is lost,
// its event streams tell their browsers "paused" (with why), a stream opened meanwhile says
// it after its hello, and once the connection is back each stream says "resumed" before the
// "refresh everything" that catches up. Nothing is said while it works.
func TestAnEventStreamSaysWhileLiveUpdatesArePaused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	link := testkit.NewProxy(t, b.dbURL)
	clock := clockwork.NewFakeClock()
	ctx, stop := context.WithCancel(testkit.Context(t))
	var running sync.WaitGroup
	defer func() { stop(); running.Wait() }()
	running.Go(func() { b.hub.Listen(ctx, link.URL, nil, clock) })
	testkit.WaitForQuery(t, b.db, 10*time.Second, "the hub to listen",
		`select exists (select from pg_stat_activity where datname = current_database()
		   and query = 'listen leadrelay_console' and state = 'idle')`)

	br := b.browser(t)
	br.signIn(adminKey)
	streamCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	before := br.stream(streamCtx)
	waitFor(t, "the stream to subscribe", func() bool { return b.hub.Subscribers() == 1 })

	link.Cut()
	paused := `paused {"reason":"this replica has lost its connection to the database"}`
	before.skipTo(paused)
	if b.hub.Paused() == "" {
		t.Fatal("the hub's pause is not recorded")
	}
	during := br.stream(streamCtx)
	if e := during.next(); e != paused {
		t.Fatalf("a stream opened while paused: %q after hello, want %q", e, paused)
	}

	link.Heal()
	if err := clock.BlockUntilContext(ctx, 1); err != nil { // the backoff before the next try
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	for _, s := range []*eventStream{before, during} {
		s.skipTo("resumed {}")
		if e := s.next(); e != `change {"all":true}` {
			t.Fatalf("after resumed: %q, want refresh everything", e)
		}
	}
	if why := b.hub.Paused(); why != "" {
		t.Fatalf("the hub still says paused: %q", why)
	}
}

// skipTo reads s's events until want, failing on any other than "refresh everything" (a
// hub's first LISTEN announces one).
func (s *eventStream) skipTo(want string) {
	s.t.Helper()
	for {
		e := s.next()
		if e == want {
			return
		}
		if e != `change {"all":true}` {
			s.t.Fatalf("event %q before %q", e, want)
		}
	}
}

// A value the database refuses is the request's fault on a read as on an action: one mapping
// of the database's errors serves both, so a cursor whose time Postgres cannot hold (well
// formed, out of timestamptz's range) gets 400 from the leads list, the JSON API's and the
// console's, not a 500 that blames the service.
func TestAValueTheDatabaseRefusesIsA400OnReadsAsOnActions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	after := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d_%s", int64(-300_000_000_000_000_000), "00000000-0000-0000-0000-000000000001")))
	got := apiDo(t, "GET", b.url+"/admin/api/leads?after="+after, "", http.StatusBadRequest)
	if e, _ := got["error"].(map[string]any); e["code"] != "invalid_request" {
		t.Errorf("the JSON API's answer: %v, want the code invalid_request", got)
	}
	br := b.browser(t)
	br.signIn(adminKey)
	if res, body := br.get("/admin/leads?after=" + after); res.StatusCode != http.StatusBadRequest {
		t.Errorf("the console's leads page: %d, want 400\n%.500s", res.StatusCode, body)
	}
}

// The lead page writes its deadline's countdown in the words console.js's tick writes
// ("… left", "breached … ago"), so the text keeps its words when the script takes over.
func TestTheLeadPageSaysItsCountdownAsTheTickWill(t *testing.T) {
	t.Parallel()
	b := setup(t)
	waiting := insertLead(t, b.db, "Nearly Due", "near@example.com", "", "hot", 10*time.Minute)  // due in 5 min
	breached := insertLead(t, b.db, "Long Breached", "", "+971501111111", "hot", 40*time.Minute) // due 25 min ago
	br := b.browser(t)
	br.signIn(adminKey)
	countdown := regexp.MustCompile(`(?s)<p class="sla-line">.*?<span class="countdown" data-deadline="[^"]+">([^<]*)</span>`)
	for _, c := range []struct {
		lead string
		want *regexp.Regexp
	}{
		{waiting, regexp.MustCompile(`^[45] min( \d+ s)? left$`)},
		{breached, regexp.MustCompile(`^breached 2[45] min( \d+ s)? ago$`)},
	} {
		_, page := br.get("/admin/leads/" + c.lead)
		m := countdown.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("lead %s: no countdown on its SLA line:\n%.3000s", c.lead, page)
		}
		if !c.want.MatchString(m[1]) {
			t.Errorf("lead %s: the countdown says %q, want %s", c.lead, m[1], c.want)
		}
	}
}
