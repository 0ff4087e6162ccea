package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/sla"
)

type sessionKey struct{}

// signedIn returns the request's session, or ErrUnauthorized. A Supabase admin's session
// whose access token has expired, or expires within renewBefore, is renewed first; one that
// cannot be renewed is ended (a *sessionEnded error, which says why).
func (c *Console) signedIn(r *http.Request) (string, Session, error) {
	cookie, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", Session{}, ErrUnauthorized
	}
	now := c.Clock.Now()
	sess, err := c.store.Session(r.Context(), cookie.Value, now)
	if err == nil && !sess.AccessExpiresAt.IsZero() && !now.Before(sess.AccessExpiresAt.Add(-renewBefore)) {
		sess, err = c.renew(r.Context(), cookie.Value, sess, now)
	}
	return cookie.Value, sess, err
}

// renewBefore is how long before its access token expires a Supabase admin's session is
// renewed; renewRetry is how long a session whose renewal found the Auth API away waits
// before the next try while its access token still works, so a Supabase outage costs one
// call per session every renewRetry, not one per request.
const (
	renewBefore = 2 * time.Minute
	renewRetry  = 30 * time.Second
)

// sessionEnded is a session that could not be renewed and was ended; reason (a key of
// signedOutReasons) tells the admin why.
type sessionEnded struct {
	reason string
	err    error
}

func (e *sessionEnded) Error() string   { return "session ended (" + e.reason + "): " + e.err.Error() }
func (e *sessionEnded) Unwrap() []error { return []error{ErrUnauthorized, e.err} }

// Why a session was ended, as the sign-in page says it.
var signedOutReasons = map[string]string{
	"refused":     "Your Supabase session has ended (signed out elsewhere, or its refresh token expired or was revoked): sign in again.",
	"not_admin":   "You were signed out: your Supabase account is no longer an admin (app_metadata.role is not \"admin\").",
	"unavailable": "You were signed out: Supabase did not answer when your session had to be renewed. Sign in again, or with the admin key.",
}

// renewals keeps one renewal per session at a time on this replica, and when the last one
// found the Auth API away.
type renewals struct {
	mu       sync.Mutex
	inflight map[string]chan struct{} // by the session's token hash
	notUntil map[string]time.Time
}

// begin claims the renewal of session key at now: ok, or the renewal under way (wait), or
// nil and false while a failed try's renewRetry runs (unless the access token expired).
func (rn *renewals) begin(key string, now time.Time, expired bool) (wait <-chan struct{}, ok bool) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if ch, busy := rn.inflight[key]; busy {
		return ch, false
	}
	if until, failed := rn.notUntil[key]; failed && now.Before(until) && !expired {
		return nil, false
	}
	if rn.inflight == nil {
		rn.inflight, rn.notUntil = map[string]chan struct{}{}, map[string]time.Time{}
	}
	rn.inflight[key] = make(chan struct{})
	return nil, true
}

// end ends the renewal of key; unavailable says it found the Auth API away.
func (rn *renewals) end(key string, now time.Time, unavailable bool) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	close(rn.inflight[key])
	delete(rn.inflight, key)
	for k, until := range rn.notUntil {
		if !now.Before(until) {
			delete(rn.notUntil, k)
		}
	}
	if unavailable {
		rn.notUntil[key] = now.Add(renewRetry)
	} else {
		delete(rn.notUntil, key)
	}
}

// renew renews sess (of token) with the Auth API's refresh_token grant: one call, bounded by
// the Supabase client's timeout, made to its end even if the browser goes away. While its
// access token works, a renewal that finds the Auth API away keeps the session (the next try
// after renewRetry); a refused one, or one whose access token has expired, ends it.
func (c *Console) renew(ctx context.Context, token string, sess Session, now time.Time) (Session, error) {
	expired := !now.Before(sess.AccessExpiresAt)
	key := string(tokenHash(token))
	wait, ok := c.renewals.begin(key, now, expired)
	if !ok {
		if wait == nil || !expired {
			return sess, nil // the access token still works
		}
		select {
		case <-wait: // another request renewed it, or ended it
		case <-ctx.Done():
			return Session{}, ctx.Err()
		}
		return c.store.Session(ctx, token, c.Clock.Now())
	}
	ctx = context.WithoutCancel(ctx)
	g, err := c.refresh(ctx, token, sess)
	unavailable := err != nil && !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrNotAdmin)
	defer c.renewals.end(key, now, unavailable)
	if err == nil {
		// Stored unless another replica renewed it first: either way the row is current. (If
		// the database fails here, the refresh token sent is spent; the Auth API still takes
		// it once more, answering with the one that replaced it.)
		if _, err := c.store.RenewSession(ctx, token, sess, g); err != nil {
			return Session{}, err
		}
		return c.store.Session(ctx, token, c.Clock.Now())
	}
	if unavailable && !expired {
		c.Logger.WarnContext(ctx, "console: renewing a Supabase session failed; its access token still works, the next try is later",
			"actor_id", sess.Actor.ID, "retry_in", renewRetry, "err", err)
		return sess, nil
	}
	// The Auth API away past the access token's expiry: another replica may have renewed the
	// session meanwhile. A refusal, though, is the Auth API's word on the whole session, never
	// a race lost: GoTrue answers the token just replaced (the active one's parent) with the
	// active one, and refuses a token only when its session has ended or, a reuse detected,
	// has been revoked with every refresh token, the one another replica stored included.
	if unavailable {
		if again, err := c.store.Session(ctx, token, c.Clock.Now()); err == nil && again.AccessExpiresAt.After(sess.AccessExpiresAt) {
			return again, nil
		}
	}
	if err := c.endSession(ctx, token); err != nil {
		return Session{}, err
	}
	reason := "refused"
	switch {
	case errors.Is(err, ErrNotAdmin):
		reason = "not_admin"
	case unavailable:
		reason = "unavailable"
	}
	c.Logger.InfoContext(ctx, "console: a Supabase session could not be renewed; signed out", "actor_id", sess.Actor.ID, "reason", reason, "err", err)
	return Session{}, &sessionEnded{reason: reason, err: err}
}

// refresh asks the Auth API to renew sess, whose user it must remain.
func (c *Console) refresh(ctx context.Context, token string, sess Session) (Grant, error) {
	if c.Supabase == nil {
		return Grant{}, fmt.Errorf("%w: Supabase sign-in is no longer configured", ErrUnauthorized)
	}
	refreshToken, err := openRefresh(token, sess.refresh)
	if err != nil {
		return Grant{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	g, err := c.Supabase.Refresh(ctx, refreshToken)
	if err == nil && g.Actor.ID != sess.Actor.ID {
		return Grant{}, fmt.Errorf("%w: the refreshed token is another user's", ErrUnauthorized)
	}
	return g, err
}

// signedOut answers a request whose session was just ended (err is a *sessionEnded): the
// session cookie goes, the sign-in page, next shown, says why, and so does the returned
// text. For any other err it does nothing and returns "".
func signedOut(w http.ResponseWriter, r *http.Request, err error) (why string) {
	var ended *sessionEnded
	if !errors.As(err, &ended) {
		return ""
	}
	clearCookie(w, r, sessionCookie, sessionPath)
	http.SetCookie(w, &http.Cookie{
		Name: signedOutCookie, Value: ended.reason, Path: loginPath, MaxAge: loginCSRFMaxAge,
		HttpOnly: true, Secure: secureCookies(r), SameSite: http.SameSiteLaxMode,
	})
	return signedOutReasons[ended.reason]
}

// page serves a page to a signed-in admin; anyone else is sent to the sign-in page (or,
// for fragments and the event stream, answered 401).
func (c *Console) page(h func(w http.ResponseWriter, r *http.Request, s Session) error) http.Handler {
	return c.handle(func(w http.ResponseWriter, r *http.Request) error {
		_, sess, err := c.signedIn(r)
		if errors.Is(err, ErrUnauthorized) {
			signedOut(w, r, err)
			if r.URL.Query().Get("fragment") != "" || r.URL.Path == "/admin/live" || r.URL.Path == "/admin/banner" {
				return &pageError{status: http.StatusUnauthorized, msg: "signed out"}
			}
			http.Redirect(w, r, loginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return nil
		}
		if err != nil {
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)), sess)
	})
}

// maxFormBytes bounds an action's form.
const maxFormBytes = 64 << 10

// action serves a state-changing request: it needs a session and that session's CSRF
// token; without either nothing happens.
func (c *Console) action(h func(w http.ResponseWriter, r *http.Request, s Session) error) http.Handler {
	return c.handle(func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return badRequest("the form could not be read: %v", err)
		}
		_, sess, err := c.signedIn(r)
		if errors.Is(err, ErrUnauthorized) {
			msg := "You are signed out: sign in again, then repeat what you did."
			if why := signedOut(w, r, err); why != "" {
				msg = why + " Then repeat what you did."
			}
			return &pageError{status: http.StatusUnauthorized, msg: msg}
		}
		if err != nil {
			return err
		}
		if !validCSRF(r, sess.CSRF) {
			return &pageError{status: http.StatusForbidden, msg: "This form is stale or came from another site (no valid CSRF token): reload the page and try again."}
		}
		return h(w, r, sess)
	})
}

// back redirects after an action: to the form's "return" path when it is one of the
// console's, else to fallback.
func back(w http.ResponseWriter, r *http.Request, fallback string) {
	to := r.PostFormValue("return")
	if !strings.HasPrefix(to, "/admin") || strings.HasPrefix(to, "//") || strings.ContainsAny(to, "\\\r\n") {
		to = fallback
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// safeNext is the page to go to after signing in: one of the console's, else the list.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, loginPath) {
		return "/admin/leads"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) error {
	_, _, err := c.signedIn(r)
	if err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	problem := signedOut(w, r, err)
	if cookie, err := r.Cookie(signedOutCookie); problem == "" && err == nil {
		problem = signedOutReasons[cookie.Value] // a known reason, or nothing
		clearCookie(w, r, signedOutCookie, loginPath)
	}
	c.renderLogin(w, r, http.StatusOK, problem)
	return nil
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	token := newToken()
	http.SetCookie(w, &http.Cookie{
		Name: loginCSRFCookie, Value: token, Path: loginPath, MaxAge: loginCSRFMaxAge,
		HttpOnly: true, Secure: secureCookies(r), SameSite: http.SameSiteStrictMode,
	})
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostFormValue("next")
	}
	c.render(w, r, status, "login", &view{
		Title: "Sign in", Message: problem, CSRF: token, Next: safeNext(next),
		KeyLogin: c.AdminKey != "", SupabaseLogin: c.Supabase != nil,
	})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return badRequest("the form could not be read: %v", err)
	}
	cookie, err := r.Cookie(loginCSRFCookie)
	if err != nil || !validCSRF(r, cookie.Value) {
		c.renderLogin(w, r, http.StatusForbidden, "The sign-in form expired or came from another site: try again.")
		return nil
	}
	now := c.Clock.Now()
	var g Grant
	switch r.PostFormValue("method") {
	case "key":
		if !KeyMatches(c.AdminKey, r.PostFormValue("key")) {
			c.Logger.InfoContext(r.Context(), "console sign-in refused", "method", "key")
			c.renderLogin(w, r, http.StatusUnauthorized, "That is not the admin key.")
			return nil
		}
		g = Grant{Actor: AdminKeyActor, ExpiresAt: now.Add(KeySessionTTL)}
	case "supabase":
		if c.Supabase == nil {
			return badRequest("Supabase sign-in is not configured")
		}
		g, err = c.Supabase.SignIn(r.Context(), strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password"))
		switch {
		case errors.Is(err, ErrUnauthorized):
			c.renderLogin(w, r, http.StatusUnauthorized, "Wrong email or password.")
			return nil
		case errors.Is(err, ErrNotAdmin):
			c.renderLogin(w, r, http.StatusForbidden, "This account is not an admin (app_metadata.role is not \"admin\").")
			return nil
		case err != nil:
			c.Logger.ErrorContext(r.Context(), "supabase sign-in failed", "err", err)
			c.renderLogin(w, r, http.StatusBadGateway, "Supabase did not answer as expected; try again, or sign in with the admin key.")
			return nil
		}
	default:
		return badRequest("method must be key or supabase")
	}
	token, sess, err := c.store.CreateSession(r.Context(), g.Actor, now, g.ExpiresAt, g.RefreshToken)
	if err != nil {
		return err
	}
	c.Logger.InfoContext(r.Context(), "console sign-in", "actor_kind", g.Actor.Kind, "actor_id", g.Actor.ID)
	clearCookie(w, r, loginCSRFCookie, loginPath)
	setSessionCookie(w, r, token, sess.ExpiresAt, now)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}

// endSession signs the session of token out, and ends its event streams on this replica
// at once (a stream on another replica ends at its next heartbeat).
func (c *Console) endSession(ctx context.Context, token string) error {
	c.streams.end(token)
	return c.store.EndSession(ctx, token)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ Session) error {
	token, _, _ := c.signedIn(r)
	if err := c.endSession(r.Context(), token); err != nil {
		return err
	}
	clearCookie(w, r, sessionCookie, sessionPath)
	http.Redirect(w, r, loginPath, http.StatusSeeOther)
	return nil
}

func filterFromQuery(q url.Values) Filter {
	f := Filter{
		Status: q.Get("status"), Quality: q.Get("quality"), Source: strings.TrimSpace(q.Get("source")),
		Assignee: q.Get("assignee"), SLA: q.Get("sla"), Query: q.Get("q"), After: q.Get("after"),
	}
	if v := q.Get("limit"); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &f.Limit); err != nil {
			f.Limit = -1 // Check names it
		}
	}
	return f
}

func (c *Console) leadsPage(w http.ResponseWriter, r *http.Request, s Session) error {
	f := filterFromQuery(r.URL.Query())
	if f.Assignee == "me" {
		f.Assignee = s.Actor.ID
		if s.Actor.Kind != ActorSupabase {
			return badRequest("the admin key is nobody: filter by a user id instead of \"me\"")
		}
	}
	if bad := f.Check(); bad != nil {
		return badRequest("bad filter: %s", describe(bad))
	}
	now := c.Clock.Now()
	start := time.Now()
	page, err := c.store.Leads(r.Context(), f, now)
	if err != nil {
		return err
	}
	w.Header().Set("Server-Timing", fmt.Sprintf("db;dur=%.1f", float64(time.Since(start).Microseconds())/1000))
	v := &view{Title: "Leads", Session: s, Now: now, Filter: f, Page: page, Live: f.After == ""}
	if r.URL.Query().Get("fragment") == "list" {
		return c.renderFragment(w, "leadList", v)
	}
	return c.renderPage(w, r, "leads", v)
}

func describe(bad map[string]string) string {
	var parts []string
	for k, v := range bad {
		parts = append(parts, k+" "+v)
	}
	return strings.Join(parts, "; ")
}

// bannerLimit is how many alerts the banner lists; the rest are counted.
const bannerLimit = 5

func (c *Console) bannerFragment(w http.ResponseWriter, r *http.Request, s Session) error {
	v := &view{Session: s, Now: c.Clock.Now()}
	if err := c.loadBanner(r.Context(), v); err != nil {
		return err
	}
	return c.renderFragment(w, "banner", v)
}

func (c *Console) loadBanner(ctx context.Context, v *view) error {
	alerts, err := c.store.Alerts(ctx, v.Now)
	if err != nil {
		return err
	}
	v.AlertCount = len(alerts)
	if len(alerts) > bannerLimit {
		alerts = alerts[:bannerLimit]
	}
	v.Alerts = alerts
	if v.Stalled, err = c.store.Stalled(ctx); err != nil {
		return err
	}
	return nil
}

func (c *Console) leadPage(w http.ResponseWriter, r *http.Request, s Session) error {
	id := httprouter.ParamsFromContext(r.Context()).ByName("id")
	lead, err := c.store.Lead(r.Context(), id)
	if err != nil {
		return err
	}
	v := &view{Title: leadTitle(lead.LeadRow), Session: s, Now: c.Clock.Now(), Lead: lead, Live: true}
	if r.URL.Query().Get("fragment") == "lead" {
		return c.renderFragment(w, "leadMain", v)
	}
	return c.renderPage(w, r, "lead", v)
}

func leadTitle(l LeadRow) string {
	return contactName(l.Name, l.Email, l.Phone, "Lead "+l.ID[:8])
}

// contactName is how the console names a lead: by its name, else its email,
// else its phone, else by otherwise.
func contactName(name, email, phone *string, otherwise string) string {
	switch {
	case name != nil && *name != "":
		return *name
	case email != nil:
		return *email
	case phone != nil:
		return *phone
	}
	return otherwise
}

func (c *Console) leadAction(w http.ResponseWriter, r *http.Request, s Session) error {
	p := httprouter.ParamsFromContext(r.Context())
	id, action := p.ByName("id"), p.ByName("action")
	ctx, form := r.Context(), r.PostFormValue
	var err error
	switch action {
	case "contacted":
		_, err = c.store.MarkContacted(ctx, s.Actor, id)
	case "status":
		_, err = c.store.SetStatus(ctx, s.Actor, id, form("status"))
	case "quality":
		_, err = c.store.SetQuality(ctx, s.Actor, id, form("quality"))
	case "assignee":
		assignee := strings.TrimSpace(form("assignee"))
		if assignee == "me" {
			if s.Actor.Kind != ActorSupabase {
				return badRequest("the admin key is nobody: assign the lead to a user id")
			}
			assignee = s.Actor.ID
		}
		_, err = c.store.Assign(ctx, s.Actor, id, assignee)
	case "notes":
		_, err = c.store.AddNote(ctx, s.Actor, id, form("body"))
	case "replies":
		_, err = c.store.Reply(ctx, s.Actor, id, form("body"))
	case "followups":
		var f NewFollowUp
		f, err = followUpFromForm(r, c.Clock.Now())
		if err == nil {
			_, err = c.store.ScheduleFollowUp(ctx, s.Actor, id, f)
		}
	default:
		return &pageError{status: http.StatusNotFound, msg: "no such action: " + action}
	}
	if err != nil {
		return err
	}
	back(w, r, "/admin/leads/"+id)
	return nil
}

// followUpFromForm reads a follow-up from the lead page's form: a date and time in the
// browser's datetime-local form, with the browser's UTC offset in minutes (tz_offset, as
// JavaScript's getTimezoneOffset gives it; 0 without JavaScript, so the time is UTC).
func followUpFromForm(r *http.Request, now time.Time) (NewFollowUp, error) {
	loc := time.UTC
	if off := r.PostFormValue("tz_offset"); off != "" {
		var minutes int
		if _, err := fmt.Sscanf(off, "%d", &minutes); err != nil || minutes < -16*60 || minutes > 16*60 {
			return NewFollowUp{}, fmt.Errorf("%w: tz_offset must be minutes", ErrInvalid)
		}
		loc = time.FixedZone("browser", -minutes*60)
	}
	at, err := time.ParseInLocation("2006-01-02T15:04", r.PostFormValue("follow_up_date"), loc)
	if err != nil {
		return NewFollowUp{}, fmt.Errorf("%w: the follow-up's date and time (YYYY-MM-DDTHH:MM) are required", ErrInvalid)
	}
	if at.Before(now.Add(-24 * time.Hour)) {
		return NewFollowUp{}, fmt.Errorf("%w: the follow-up's date is in the past", ErrInvalid)
	}
	return NewFollowUp{FollowUpDate: at, Notes: strings.TrimSpace(r.PostFormValue("notes"))}, nil
}

func (c *Console) followUpAction(w http.ResponseWriter, r *http.Request, s Session) error {
	p := httprouter.ParamsFromContext(r.Context())
	id, action := p.ByName("id"), p.ByName("action")
	lead, err := c.store.FollowUpLead(r.Context(), id)
	if err != nil {
		return err
	}
	switch action {
	case "complete":
		_, err = c.store.CompleteFollowUp(r.Context(), s.Actor, id)
	case "cancel":
		_, err = c.store.CancelFollowUp(r.Context(), s.Actor, id)
	default:
		return &pageError{status: http.StatusNotFound, msg: "no such action: " + action}
	}
	if err != nil {
		return err
	}
	back(w, r, "/admin/leads/"+lead)
	return nil
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request, s Session) error {
	var n int
	var err error
	if event := r.PostFormValue("event_id"); event != "" {
		n, err = c.store.ReplayEvent(r.Context(), s.Actor, event)
	} else {
		n, err = c.store.ReplayFailed(r.Context(), s.Actor, r.PostFormValue("channel"))
	}
	if err != nil {
		return err
	}
	if n > 0 {
		c.Doorbell()
	}
	back(w, r, "/admin/deliveries")
	return nil
}

func (c *Console) deliveriesPage(w http.ResponseWriter, r *http.Request, s Session) error {
	q := r.URL.Query()
	f := DeliveryFilter{Channel: q.Get("channel"), Status: q.Get("status")}
	if bad := f.Check(); bad != nil {
		return badRequest("bad filter: %s", describe(bad))
	}
	list, err := c.store.OpenDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	v := &view{Title: "Deliveries", Session: s, Now: c.Clock.Now(), Deliveries: list, DeliveryFilter: f, Live: true}
	if q.Get("fragment") == "deliveries" {
		return c.renderFragment(w, "deliveryList", v)
	}
	return c.renderPage(w, r, "deliveries", v)
}

func (c *Console) reportPage(w http.ResponseWriter, r *http.Request, s Session) error {
	q := r.URL.Query()
	now := c.Clock.Now()
	from, to, err := reportPeriod(q.Get("from"), q.Get("to"), now)
	if err != nil {
		return badRequest("%v", err)
	}
	rows, err := c.store.Summary(r.Context(), from, to)
	if err != nil {
		return err
	}
	v := &view{Title: "SLA report", Session: s, Now: now, Report: newReport(rows), From: from, To: to,
		ToDate: to.Add(-time.Nanosecond).UTC().Format(time.DateOnly)}
	return c.renderPage(w, r, "report", v)
}

// reportPeriod reads the report form's dates (YYYY-MM-DD, UTC; to is included): by default
// the 30 days up to now.
func reportPeriod(from, to string, now time.Time) (time.Time, time.Time, error) {
	end := now
	if to != "" {
		t, err := time.Parse(time.DateOnly, to)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("to=%q is not a date (2026-11-01)", to)
		}
		end = t.AddDate(0, 0, 1)
	}
	start := end.AddDate(0, 0, -30)
	if from != "" {
		t, err := time.Parse(time.DateOnly, from)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("from=%q is not a date (2026-11-01)", from)
		}
		start = t
	}
	return start, end, sla.CheckPeriod(start, end)
}
