package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/edge/server"
)

func TestSubmitContactSavesTheLeadItsEventAndTimeline(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	got := b.post(t, "/api/submit-contact", `{
		"name": "Jane Doe",
		"email": "Jane.Doe@Example.com",
		"phone": "050 123 4567",
		"message": "Is the villa in Arabian Ranches still available?",
		"source": "contact_page",
		"metadata": {"utm_source": "google", "utm_campaign": "spring", "referrer": "https://google.com/", "landing_page": "/villas", "country": "AE", "visits": 12345678901234567890},
		"device_info": {"browser": "Safari", "os": "iOS", "device_type": "mobile"},
		"property_id": "not-a-field-of-this-form",
		"favourite_colour": "blue"
	}`).lead(t, http.StatusCreated)

	var (
		form, name, email, phone, message, source, quality string
		metadata, deviceInfo                               map[string]any
		propertyID                                         *string
		deadline                                           time.Time
	)
	err := b.db.QueryRow(context.Background(), `
		select form::text, name, email, phone, message, source, quality::text, metadata, device_info, property_id, sla_response_deadline
		  from conversations where id = $1`, got.ID).
		Scan(&form, &name, &email, &phone, &message, &source, &quality, &metadata, &deviceInfo, &propertyID, &deadline)
	if err != nil {
		t.Fatalf("the lead %s is not in the database: %v", got.ID, err)
	}
	if form != "contact_form" || name != "Jane Doe" || email != "jane.doe@example.com" || phone != "+971501234567" ||
		message != "Is the villa in Arabian Ranches still available?" || source != "contact_page" {
		t.Errorf("stored %q %q %q %q %q %q", form, name, email, phone, message, source)
	}
	if metadata["utm_source"] != "google" || metadata["country"] != "AE" || deviceInfo["os"] != "iOS" {
		t.Errorf("metadata %v, device_info %v", metadata, deviceInfo)
	}
	// Numbers pass through as written, not rounded through a float.
	if n := b.count(t, "select count(*) from conversations where id = $1 and metadata->>'visits' = '12345678901234567890'", got.ID); n != 1 {
		t.Errorf("metadata.visits was not kept as written: %v", metadata["visits"])
	}
	if propertyID != nil {
		t.Errorf("property_id %q stored from a contact form", *propertyID)
	}
	if got.Quality != quality || !got.SLAResponseDeadline.Equal(deadline) {
		t.Errorf("answer %+v, stored quality %s deadline %s", got, quality, deadline)
	}
	b.assertEventAndTimeline(t, got.ID)
	if n := b.count(t, "select count(*) from chat_messages where conversation_id = $1 and sender_type = 'customer' and content = 'Is the villa in Arabian Ranches still available?'", got.ID); n != 1 {
		t.Errorf("%d customer messages, want the form's message", n)
	}
}

func TestPropertyInquirySavesThePropertyAndScoresTheLead(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	got := b.post(t, "/api/property-inquiry", `{
		"name": "Omar", "phone": "+971 50 765 4321", "message": "Can I view it this weekend?",
		"property_id": "4217", "property_title": "3BR villa, Arabian Ranches",
		"budget": "2500000", "timeline": "ASAP", "financing": "cash",
		"metadata": {"country": "AE"}
	}`).lead(t, http.StatusCreated)
	if got.Quality != "hot" {
		t.Errorf("quality %q, want hot (phone, property, short timeline, cash)", got.Quality)
	}
	var form, propertyID, propertyTitle, budget, timeline, financing string
	err := b.db.QueryRow(context.Background(), `
		select form::text, property_id, property_title, budget, timeline, financing from conversations where id = $1`, got.ID).
		Scan(&form, &propertyID, &propertyTitle, &budget, &timeline, &financing)
	if err != nil {
		t.Fatal(err)
	}
	if form != "property_inquiry" || propertyID != "4217" || propertyTitle != "3BR villa, Arabian Ranches" ||
		budget != "2500000" || timeline != "ASAP" || financing != "cash" {
		t.Errorf("stored %q %q %q %q %q %q", form, propertyID, propertyTitle, budget, timeline, financing)
	}
	b.assertEventAndTimeline(t, got.ID)
}

func TestChatbotLeadSavesTheTranscriptInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	got := b.post(t, "/api/chatbot/leads", `{
		"session_id": "sess-81f2", "name": "Priya", "email": "priya@example.in", "quality": "warm",
		"messages": [
			{"role": "user", "content": "Hi, I'm looking for a 2-bed in Marina", "at": "2026-11-24T10:00:00Z"},
			{"role": "assistant", "content": "Happy to help! What is your budget?", "at": "2026-11-24T10:00:05Z"},
			{"role": "user", "content": "Around 2M AED"}
		]
	}`).lead(t, http.StatusCreated)
	if got.Quality != "warm" {
		t.Errorf("quality %q, want the bot's warm", got.Quality)
	}
	rows, err := b.db.Query(context.Background(),
		"select sender_type::text || ': ' || content from chat_messages where conversation_id = $1 order by seq", got.ID)
	if err != nil {
		t.Fatal(err)
	}
	transcript, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"customer: Hi, I'm looking for a 2-bed in Marina",
		"bot: Happy to help! What is your budget?",
		"customer: Around 2M AED",
	}
	if strings.Join(transcript, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(transcript, "\n"), strings.Join(want, "\n"))
	}
	var sessionID string
	if err := b.db.QueryRow(context.Background(), "select session_id from conversations where id = $1", got.ID).Scan(&sessionID); err != nil || sessionID != "sess-81f2" {
		t.Errorf("session_id %q (%v)", sessionID, err)
	}
	b.assertEventAndTimeline(t, got.ID)
}

func TestARetryWithTheSameIdempotencyKeyReturnsTheFirstLead(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	body := `{"name": "Sam", "email": "sam@example.com", "message": "Call me"}`
	first := b.post(t, "/api/submit-contact", body, "Idempotency-Key", "form-7f3a").lead(t, http.StatusCreated)
	again := b.post(t, "/api/submit-contact", body, "Idempotency-Key", "form-7f3a").lead(t, http.StatusOK)
	// The key in the body is the same key.
	inBody := b.post(t, "/api/submit-contact", `{"name": "Sam", "email": "sam@example.com", "message": "Call me", "idempotency_key": "form-7f3a"}`).lead(t, http.StatusOK)
	if again.ID != first.ID || inBody.ID != first.ID {
		t.Errorf("ids %s, %s, %s: want one lead", first.ID, again.ID, inBody.ID)
	}
	if n := b.count(t, "select count(*) from conversations"); n != 1 {
		t.Errorf("%d leads, want 1", n)
	}
	if n := b.count(t, "select count(*) from lead_events where event_type = 'lead.created'"); n != 1 {
		t.Errorf("%d lead.created events, want 1", n)
	}
}

func TestConcurrentRetriesMakeOneLead(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	const retries = 10
	answers := make([]answer, retries)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range retries {
		wg.Go(func() {
			<-start
			answers[i] = b.post(t, "/api/chatbot/leads",
				`{"session_id": "s1", "phone": "+447700900123", "messages": [{"role": "user", "content": "hello"}]}`,
				"Idempotency-Key", "chat-s1-lead")
		})
	}
	close(start)
	wg.Wait()
	created, ids := 0, map[string]bool{}
	for _, a := range answers {
		if a.status == http.StatusCreated {
			created++
		}
		status := http.StatusOK
		if a.status == http.StatusCreated {
			status = http.StatusCreated
		}
		ids[a.lead(t, status).ID] = true
	}
	if created != 1 || len(ids) != 1 {
		t.Errorf("%d answers were 201 and %d distinct ids; want one 201 and one id", created, len(ids))
	}
	if n := b.count(t, "select count(*) from conversations"); n != 1 {
		t.Errorf("%d leads, want 1", n)
	}
	if n := b.count(t, "select count(*) from chat_messages"); n != 1 {
		t.Errorf("%d chat messages, want 1", n)
	}
}

func TestTheSameLeadTwiceWithoutAKeyIsOneLead(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	body := `{"name": "Lee", "email": "lee@example.com", "message": "Interested in Downtown"}`
	first := b.post(t, "/api/submit-contact", body).lead(t, http.StatusCreated)
	// A double click: same person, same message, moments later (the email's
	// case and spacing differ, the stored values do not).
	second := b.post(t, "/api/submit-contact", `{"name": "Lee", "email": " LEE@example.com ", "message": "Interested in Downtown"}`).lead(t, http.StatusOK)
	if second.ID != first.ID {
		t.Errorf("second submission made lead %s, want %s", second.ID, first.ID)
	}
	other := b.post(t, "/api/submit-contact", `{"name": "Lee", "email": "lee@example.com", "message": "And a flat in Marina?"}`).lead(t, http.StatusCreated)
	if other.ID == first.ID {
		t.Error("a different message was taken for a duplicate")
	}
	if n := b.count(t, "select count(*) from conversations"); n != 2 {
		t.Errorf("%d leads, want 2", n)
	}
}

func TestMalformedJSONIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, body := range []string{``, `{"name": "Jo"`, `{"name": "Jo",}`, `[{"name": "Jo"}]`, `"Jo"`, `null`, `{} {}`, `{"name": "Jo"} x`} {
		b.post(t, "/api/submit-contact", body).error(t, http.StatusBadRequest, "malformed_json")
	}
	if n := b.count(t, "select count(*) from conversations"); n != 0 {
		t.Errorf("%d leads saved from malformed bodies", n)
	}
}

func TestEveryFieldOfTheWrongTypeIsNamed(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	e := b.post(t, "/api/chatbot/leads", `{
		"email": 42, "phone": ["050"], "name": {"first": "A"}, "metadata": "utm=x", "device_info": [1],
		"quality": 3, "session_id": true,
		"messages": [{"role": "user", "content": "hi"}, {"role": 1, "content": false, "at": 5}, "hello"]
	}`).error(t, http.StatusBadRequest, "invalid_lead")
	want := map[string]string{
		"email": "must be a string", "phone": "must be a string", "name": "must be a string",
		"metadata": "must be a JSON object", "device_info": "must be a JSON object",
		"quality": "must be a string", "session_id": "must be a string",
		"messages[1].role": "must be a string", "messages[1].content": "must be a string", "messages[1].at": "must be a string",
		"messages[2]": "must be an object",
	}
	assertFields(t, e, want)

	e = b.post(t, "/api/property-inquiry", `{"email": "a@b.co", "property_id": 4217, "budget": {"min": 1}}`).
		error(t, http.StatusBadRequest, "invalid_lead")
	// As submit_lead has it, for PostgREST's callers too: text, not numbers.
	assertFields(t, e, map[string]string{"property_id": "must be a string", "budget": "must be a string"})

	e = b.post(t, "/api/chatbot/leads", `{"email": "a@b.co", "messages": {"role": "user"}}`).error(t, http.StatusBadRequest, "invalid_lead")
	assertFields(t, e, map[string]string{"messages": "must be an array"})

	e = b.post(t, "/api/submit-contact", `{"email": "a@b.co", "name": "nul\u0000here", "metadata": {"ref": "x\u0000"}}`).error(t, http.StatusBadRequest, "invalid_lead")
	assertFields(t, e, map[string]string{"name": "must not contain the NUL character", "metadata": "must not contain the NUL character"})

	if n := b.count(t, "select count(*) from conversations"); n != 0 {
		t.Errorf("%d leads saved from invalid bodies", n)
	}
}

func TestEveryInvalidValueIsNamed(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	e := b.post(t, "/api/property-inquiry", fmt.Sprintf(`{
		"name": %q, "email": "not-an-email", "phone": "12", "budget": %q
	}`, strings.Repeat("n", 201), strings.Repeat("9", 301))).error(t, http.StatusBadRequest, "invalid_lead")
	for _, field := range []string{"name", "email", "phone", "contact", "property_id", "budget"} {
		if e.Error.Fields[field] == "" {
			t.Errorf("field %s not named in %v", field, e.Error.Fields)
		}
	}

	e = b.post(t, "/api/chatbot/leads", `{
		"email": "ok@example.com", "quality": "boiling",
		"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "  ", "at": "2026-13-45 25:00"}]
	}`).error(t, http.StatusBadRequest, "invalid_lead")
	for _, field := range []string{"quality", "messages[0].role", "messages[1].content", "messages[1].at"} {
		if e.Error.Fields[field] == "" {
			t.Errorf("field %s not named in %v", field, e.Error.Fields)
		}
	}

	e = b.post(t, "/api/submit-contact", `{"email": "ok@example.com", "idempotency_key": "a"}`, "Idempotency-Key", "b").
		error(t, http.StatusBadRequest, "invalid_lead")
	assertFields(t, e, map[string]string{"idempotency_key": "differs from the Idempotency-Key header"})

	if n := b.count(t, "select count(*) from conversations"); n != 0 {
		t.Errorf("%d leads saved from invalid bodies", n)
	}
}

// assertEventAndTimeline checks that the lead's lead.created event and its
// "created" timeline entry were written with it, once each.
func (b *testBundle) assertEventAndTimeline(t *testing.T, leadID string) {
	t.Helper()
	if n := b.count(t, "select count(*) from lead_events where conversation_id = $1 and event_type = 'lead.created'", leadID); n != 1 {
		t.Errorf("%d lead.created events, want 1", n)
	}
	if n := b.count(t, "select count(*) from conversation_timeline where conversation_id = $1 and event_type = 'created'", leadID); n != 1 {
		t.Errorf("%d timeline entries, want 1", n)
	}
}

func assertFields(t *testing.T, e apiError, want map[string]string) {
	t.Helper()
	if len(e.Error.Fields) != len(want) {
		t.Errorf("fields %v, want %v", e.Error.Fields, want)
	}
	for k, v := range want {
		if e.Error.Fields[k] != v {
			t.Errorf("fields[%q] = %q, want %q", k, e.Error.Fields[k], v)
		}
	}
}

func TestABodyOver64KiBIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	big := `{"email": "a@b.co", "message": "` + strings.Repeat("x", 64<<10) + `"}`
	// Announced by Content-Length, refused before it is read.
	b.post(t, "/api/submit-contact", big).error(t, http.StatusRequestEntityTooLarge, "body_too_large")
	// Streamed without a length: refused once 64 KiB have been read.
	req, err := http.NewRequest(http.MethodPost, b.url+"/api/submit-contact", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if req.ContentLength != 0 {
		t.Fatalf("request has a length %d; the test needs a streamed body", req.ContentLength)
	}
	do(t, req).error(t, http.StatusRequestEntityTooLarge, "body_too_large")
	// Just under the limit is fine.
	justUnder := `{"email": "a@b.co", "message": "hi", "metadata": {"pad": "` + strings.Repeat("x", 7000) + `"}, "pad": "` +
		strings.Repeat("y", 64<<10-7200) + `"}`
	b.post(t, "/api/submit-contact", justUnder).lead(t, http.StatusCreated)
}

func TestABodyThatIsNotJSONIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=iso-8859-1", "application/jsonx"} {
		b.post(t, "/api/submit-contact", `{"email": "a@b.co"}`, "Content-Type", ct).error(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
	}
	b.post(t, "/api/submit-contact", `{"email": "a@b.co"}`, "Content-Type", "application/json; charset=UTF-8").lead(t, http.StatusCreated)
}

func TestTooManyRequestsFromOneAddressGet429(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "1", "RATE_LIMIT_BURST": "2"})
	for i := range 2 {
		b.post(t, "/api/submit-contact", fmt.Sprintf(`{"email": "r%d@example.com"}`, i)).lead(t, http.StatusCreated)
	}
	// Not behind a trusted proxy, a forged X-Forwarded-For changes nothing.
	a := b.post(t, "/api/submit-contact", `{"email": "r3@example.com"}`, "X-Forwarded-For", "203.0.113.9")
	a.error(t, http.StatusTooManyRequests, "rate_limited")
	if s := assertRetryAfter(t, a); s > 60 {
		t.Errorf("Retry-After %d, want at most the 60 seconds a token takes", s)
	}
	if n := b.count(t, "select count(*) from conversations"); n != 2 {
		t.Errorf("%d leads, want the 2 allowed", n)
	}
	// Health checks are not limited.
	if a := do(t, testkit.NewRequest(t, http.MethodGet, b.url+"/healthz")); a.status != http.StatusOK {
		t.Errorf("/healthz: %d", a.status)
	}
}

func TestBehindFlyEachClientAddressHasItsOwnBucket(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "1", "RATE_LIMIT_BURST": "1", "TRUST_PROXY_HEADERS": "fly"})
	b.post(t, "/api/submit-contact", `{"email": "f1@example.com"}`, "Fly-Client-IP", "198.51.100.1").lead(t, http.StatusCreated)
	b.post(t, "/api/submit-contact", `{"email": "f2@example.com"}`, "Fly-Client-IP", "198.51.100.1").error(t, http.StatusTooManyRequests, "rate_limited")
	b.post(t, "/api/submit-contact", `{"email": "f3@example.com"}`, "Fly-Client-IP", "198.51.100.2").lead(t, http.StatusCreated)
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestAnUnreachableDatabaseGets503WithRetryAfter(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?connect_timeout=5", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := setupWithPool(t, pool, nil)
	a := b.post(t, "/api/submit-contact", `{"email": "down@example.com", "phone": "+971501234567"}`, "Idempotency-Key", "k1")
	a.error(t, http.StatusServiceUnavailable, "database_unavailable")
	assertRetryAfter(t, a)
	if logs := b.logs.String(); strings.Contains(logs, "down@example.com") || strings.Contains(logs, "501234567") {
		t.Errorf("the log holds the lead's contact:\n%s", logs)
	}
	if a := do(t, testkit.NewRequest(t, http.MethodGet, b.url+"/readyz")); a.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %d, want 503", a.status)
	}
	// The lead's 503 is a failed request; /readyz's is a state, logged as a warning.
	levels := map[string]string{}
	for _, rec := range logLines(t, b.logs) {
		if rec["status"] == float64(http.StatusServiceUnavailable) && rec["msg"] != "request" { // not the access line
			levels[rec["path"].(string)] = rec["level"].(string)
		}
	}
	if levels["/api/submit-contact"] != "ERROR" || levels["/readyz"] != "WARN" {
		t.Errorf("the 503s' log levels: %v, want ERROR for the lead and WARN for /readyz", levels)
	}
}

func TestAPoolWithNoFreeConnectionGets503AndARetryGetsOneLead(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(dbtest.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := setupWithPool(t, pool, nil, func(d *server.Deps) { d.DBTimeout = 200 * time.Millisecond })

	busy, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"email": "busy@example.com", "message": "hello"}`
	a := b.post(t, "/api/submit-contact", body, "Idempotency-Key", "busy-1")
	a.error(t, http.StatusServiceUnavailable, "database_unavailable")
	assertRetryAfter(t, a)
	busy.Release()

	// The retry, through a server on the same pool with the usual deadline
	// (200 ms is too short for a first call on a loaded machine).
	retry := setupWithPool(t, pool, nil)
	retry.post(t, "/api/submit-contact", body, "Idempotency-Key", "busy-1").lead(t, http.StatusCreated)
	if n := b.count(t, "select count(*) from conversations"); n != 1 {
		t.Errorf("%d leads, want 1", n)
	}
}

// postHeldAtTheTimeline posts body with key through b while the timeline is locked through
// db (holdAtTheTimeline): the answer to come, the waiting backend's pid, and release.
func postHeldAtTheTimeline(t *testing.T, b *testBundle, db *pgxpool.Pool, body, key string) (<-chan answer, int32, func()) {
	t.Helper()
	done := make(chan answer, 1)
	pid, release := holdAtTheTimeline(t, db, func() {
		go func() { done <- b.post(t, "/api/submit-contact", body, "Idempotency-Key", key) }()
	})
	return done, pid, release
}

// holdAtTheTimeline locks the timeline through db, calls send (which starts a submission in
// the background), and returns once submit_lead, having inserted the lead and its event,
// waits for that lock: the waiting backend's pid, and release, which lets the lock go.
func holdAtTheTimeline(t *testing.T, db *pgxpool.Pool, send func()) (int32, func()) {
	t.Helper()
	ctx := testkit.Context(t)
	locker, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locker.Rollback(context.Background()) })
	if _, err := locker.Exec(ctx, "lock table conversation_timeline in exclusive mode"); err != nil {
		t.Fatal(err)
	}
	send()
	var pid int32
	testkit.WaitFor(t, 30*time.Second, "submit_lead to wait for the timeline lock", func() (bool, error) {
		err := db.QueryRow(ctx, `select pid from pg_stat_activity
			where datname = current_database() and query like '%submit_lead%' and wait_event_type = 'Lock' and pid <> pg_backend_pid()`).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	})
	release := func() {
		t.Helper()
		if err := locker.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return pid, release
}

// A client that hangs up while its lead waits on a lock is no failure of the service's: the
// server logs it as a warning, not as a failed request at ERROR.
func TestAClientThatHangsUpIsLoggedAsAWarning(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	clientCtx, hangUp := context.WithCancel(testkit.Context(t))
	req, err := http.NewRequestWithContext(clientCtx, http.MethodPost, b.url+"/api/submit-contact", strings.NewReader(`{"email": "gone@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sent := make(chan error, 1)
	holdAtTheTimeline(t, b.db, func() {
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
			}
			sent <- err
		}()
	})
	hangUp()
	if err := <-sent; err == nil {
		t.Fatal("the request got an answer after its client hung up")
	}
	var line map[string]any
	testkit.WaitFor(t, 30*time.Second, "the server to log the abandoned request", func() (bool, error) {
		for _, rec := range logLines(t, b.logs) {
			if rec["path"] == "/api/submit-contact" && rec["msg"] != "request" { // not the access line
				line = rec
				return true, nil
			}
		}
		return false, nil
	})
	if line["level"] != "WARN" || line["msg"] != "the client went away before the answer" {
		t.Errorf("the abandoned request's log line: %v, want a warning that the client went away", line)
	}
}

// A submission whose backend is terminated while submit_lead waits (the server's FATAL
// answer) gets a 503, and nothing of it stays.
func TestALostConnectionMidTransactionLeavesNothingHalfWritten(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := testkit.Context(t)
	body := `{"email": "cut@example.com", "message": "hello"}`
	done, pid, release := postHeldAtTheTimeline(t, b, b.db, body, "cut-1")
	var killed bool
	if err := b.db.QueryRow(ctx, "select pg_terminate_backend($1)", pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate backend %d: %v %v", pid, killed, err)
	}
	a := <-done
	a.error(t, http.StatusServiceUnavailable, "database_unavailable")
	assertRetryAfter(t, a)
	release()
	for _, table := range []string{"conversations", "lead_events", "conversation_timeline", "chat_messages"} {
		if n := b.count(t, "select count(*) from "+table); n != 0 {
			t.Errorf("%d rows in %s after the failed call", n, table)
		}
	}
	// The website's retry with the same key saves the lead once.
	b.post(t, "/api/submit-contact", body, "Idempotency-Key", "cut-1").lead(t, http.StatusCreated)
	if n := b.count(t, "select count(*) from conversations"); n != 1 {
		t.Errorf("%d leads after the retry, want 1", n)
	}
}

// A submission whose connection to the database is lost mid-query (cut by the test while
// submit_lead waits on the timeline lock, so nothing decides by the clock; no answer from
// the server this time) gets a 503 with Retry-After: the database away, not a fault of the
// service. The retry with the same key gets the one lead, whether the cut call's backend,
// once the lock was gone, committed it (a 200) or not (a 201).
func TestALostConnectionMidQueryIsA503AndARetryGetsOneLead(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	url := dbtest.NewURL(t)
	link := testkit.NewProxy(t, url)
	cut, err := pgxpool.New(ctx, link.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cut.Close)
	b := setupWithPool(t, cut, nil)
	plain, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	other := setupWithPool(t, plain, nil)

	body := `{"email": "lost@example.com", "message": "hello"}`
	done, pid, release := postHeldAtTheTimeline(t, b, plain, body, "lost-1")
	link.Cut()
	a := <-done
	a.error(t, http.StatusServiceUnavailable, "database_unavailable")
	assertRetryAfter(t, a)

	release()
	testkit.WaitForQuery(t, plain, 30*time.Second, "the cut call's backend to end",
		"select not exists (select from pg_stat_activity where pid = $1)", pid)
	if retry := other.post(t, "/api/submit-contact", body, "Idempotency-Key", "lost-1"); retry.status != http.StatusOK && retry.status != http.StatusCreated {
		t.Fatalf("the retry: %d %s, want the lead, 200 or 201", retry.status, retry.body)
	}
	if n := other.count(t, "select count(*) from conversations"); n != 1 {
		t.Errorf("%d leads after the retry, want 1", n)
	}
}

// assertRetryAfter checks that a refusal says, in whole seconds, when to
// come back, and returns them.
func assertRetryAfter(t *testing.T, a answer) int {
	t.Helper()
	s, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || s < 1 {
		t.Errorf("Retry-After %q, want a whole number of seconds", a.header.Get("Retry-After"))
	}
	return s
}
