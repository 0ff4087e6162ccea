package console_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/edge/console"
)

const (
	anonKey   = "anon-key-of-the-test-project"
	jwtSecret = "super-secret-jwt-token-with-at-least-32-characters"
	adminID   = "5d3c1a7e-0b9f-4c61-9a53-2f0e7b1c4d21"
	agentID   = "8e2f4b6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
)

// authPeer speaks the Supabase Auth API's protocol, as far as the console uses it: the
// password and refresh_token grants of the token endpoint (apikey header, JSON body; 400
// invalid_credentials for a wrong password) and the project's JWKS. It signs HS256 with the
// JWT secret, or ES256 with its key (kid "test-key") when es256 is set, tokens that last an
// hour from now().
//
// Its refresh tokens rotate as GoTrue's do (github.com/supabase/auth, internal/tokens/
// service.go, RefreshTokenGrant, with refresh token rotation on and Supabase's reuse interval
// of 10 s): each sign-in is an Auth session whose refresh tokens form one family, each
// token's child replacing it. The active token (the session's newest one not revoked) is
// spent once: it is revoked and a child is issued. A revoked token that is the active one's
// parent gets the active token back, at any time (its user lost the answer, or asked twice at
// once). Another revoked token is swapped for a new child within reuseInterval of its
// revocation; after it, reuse is detected: every token of its session is revoked and the
// answer is 400 refresh_token_already_used. An unknown token (signed out: GoTrue deletes
// the session) is 400 refresh_token_not_found.
type authPeer struct {
	*httptest.Server
	es256 bool
	key   *ecdsa.PrivateKey
	now   func() time.Time // nil: the real time

	mu        sync.Mutex
	requests  int
	refreshes int
	tokens    map[string]*peerToken // the refresh tokens, by their text
	sessions  int                   // Auth sessions started
	roles     map[string]string     // a user's app_metadata.role, where it changed
	away      string                // the refresh grant's refusal while the Auth API is away: "unavailable" (503) or "conflict" (409); "": it answers
	gate      *refreshGate          // holds the next refresh requests; nil: none
}

// reuseInterval is GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL as Supabase sets it.
const reuseInterval = 10 * time.Second

// peerToken is a refresh token as GoTrue's auth.refresh_tokens keeps it.
type peerToken struct {
	email   string
	session int       // the Auth session (a sign-in) whose family it is of
	serial  int       // its order of issue (GoTrue's id)
	parent  string    // the token it replaced; "" for a sign-in's first
	revoked bool      // spent, or revoked with its family
	updated time.Time // when it was last revoked (GoTrue's updated_at)
}

type peerUser struct {
	id, password, role string
}

var peerUsers = map[string]peerUser{
	"admin@truenester.com": {adminID, "correct horse", "admin"},
	"agent@truenester.com": {agentID, "battery staple", ""},
}

func newAuthPeer(t testing.TB, es256 bool) *authPeer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &authPeer{es256: es256, key: key, tokens: map[string]*peerToken{}}
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, status int, body string) {
		w.WriteHeader(status)
		if _, err := io.WriteString(w, body); err != nil {
			t.Error(err)
		}
	}
	mux.HandleFunc("POST /auth/v1/token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests++
		p.mu.Unlock()
		if r.Header.Get("apikey") != anonKey {
			answer(w, http.StatusUnauthorized, `{"message":"Invalid API key"}`)
			return
		}
		var body struct {
			Email, Password string
			RefreshToken    string `json:"refresh_token"`
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil {
			answer(w, http.StatusBadRequest, `{"code":400,"error_code":"bad_json","msg":"Could not parse request body as JSON"}`)
			return
		}
		var email, refresh string
		switch r.URL.Query().Get("grant_type") {
		case "password":
			u, ok := peerUsers[body.Email]
			if !ok || u.password != body.Password {
				answer(w, http.StatusBadRequest, `{"code":400,"error_code":"invalid_credentials","msg":"Invalid login credentials"}`)
				return
			}
			email, refresh = body.Email, p.signIn(body.Email)
		case "refresh_token":
			p.mu.Lock()
			p.refreshes++
			gate := p.gate.take()
			p.mu.Unlock()
			if !gate.hold(r) {
				return // the console gave up
			}
			var code string
			email, refresh, code = p.refresh(body.RefreshToken)
			switch code {
			case "":
			case "unavailable":
				answer(w, http.StatusServiceUnavailable, `{"message":"upstream unavailable"}`)
				return
			case "conflict":
				answer(w, http.StatusConflict, `{"code":409,"error_code":"conflict","msg":"a concurrent refresh holds the session"}`)
				return
			case "validation_failed":
				answer(w, http.StatusBadRequest, `{"code":400,"error_code":"validation_failed","msg":"Refresh token is not valid"}`)
				return
			case "refresh_token_not_found":
				answer(w, http.StatusBadRequest, `{"code":400,"error_code":"refresh_token_not_found","msg":"Invalid Refresh Token: Refresh Token Not Found"}`)
				return
			case "refresh_token_already_used":
				answer(w, http.StatusBadRequest, `{"code":400,"error_code":"refresh_token_already_used","msg":"Invalid Refresh Token: Already Used"}`)
				return
			}
		default:
			answer(w, http.StatusBadRequest, `{"code":400,"error_code":"validation_failed","msg":"unsupported_grant_type"}`)
			return
		}
		u := peerUsers[email]
		p.mu.Lock()
		if role, ok := p.roles[email]; ok {
			u.role = role
		}
		p.mu.Unlock()
		token := p.sign(t, email, u, time.Hour, p.issuer(), "authenticated")
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(map[string]any{
			"access_token": token, "token_type": "bearer", "expires_in": 3600,
			"refresh_token": refresh, "user": map[string]any{"id": u.id, "email": email},
		}); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("GET /auth/v1/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.RawURLEncoding
		if err := json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "test-key", "alg": "ES256", "use": "sig",
			"x": b64.EncodeToString(p.key.X.FillBytes(make([]byte, 32))),
			"y": b64.EncodeToString(p.key.Y.FillBytes(make([]byte, 32))),
		}}}); err != nil {
			t.Error(err)
		}
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *authPeer) issuer() string { return p.URL + "/auth/v1" }

func (p *authPeer) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// signIn starts an Auth session for email and returns its first refresh token.
func (p *authPeer) signIn(email string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sessions++
	return p.issue(email, p.sessions, "")
}

// issue makes a refresh token of session, replacing parent. p.mu is held.
func (p *authPeer) issue(email string, session int, parent string) string {
	refresh := "r-" + rand.Text()
	p.tokens[refresh] = &peerToken{email: email, session: session, serial: len(p.tokens) + 1, parent: parent}
	return refresh
}

// active is session's active refresh token: its newest one not revoked; "" when it has
// none. p.mu is held.
func (p *authPeer) active(session int) string {
	var active string
	serial := 0
	for text, tok := range p.tokens {
		if tok.session == session && !tok.revoked && tok.serial > serial {
			active, serial = text, tok.serial
		}
	}
	return active
}

// refresh is GoTrue's refresh_token grant: the user and the refresh token it answers with,
// or the error code it refuses with (p.away while the Auth API is away).
func (p *authPeer) refresh(refresh string) (email, issued, code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.away != "" {
		return "", "", p.away
	}
	if len(refresh) < 12 {
		return "", "", "validation_failed"
	}
	tok, ok := p.tokens[refresh]
	if !ok {
		return "", "", "refresh_token_not_found"
	}
	now := p.clock()
	if tok.revoked {
		if active := p.active(tok.session); active != "" && p.tokens[active].parent == refresh {
			return tok.email, active, ""
		}
		if now.After(tok.updated.Add(reuseInterval)) {
			for _, other := range p.tokens {
				if other.session == tok.session && !other.revoked {
					other.revoked, other.updated = true, now
				}
			}
			return "", "", "refresh_token_already_used"
		}
	}
	tok.revoked, tok.updated = true, now
	return tok.email, p.issue(tok.email, tok.session, refresh), ""
}

// accepts says whether refresh is the active refresh token of its Auth session: the one the
// Auth API renews, and whose use is no reuse.
func (p *authPeer) accepts(refresh string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok, ok := p.tokens[refresh]
	return ok && p.active(tok.session) == refresh
}

// revoked says whether every refresh token of refresh's Auth session is revoked, as reuse
// detection leaves them.
func (p *authPeer) revoked(refresh string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok, ok := p.tokens[refresh]
	return ok && p.active(tok.session) == ""
}

// refreshGate holds refresh requests where they arrive, before the Auth API reads its state,
// until the test releases them: as a slow network or a paused replica would, so that the
// test, not the scheduler, decides when the Auth API sees each request.
type refreshGate struct {
	left     int // requests still to hold; p.mu guards it
	arrived  chan struct{}
	released chan struct{}
	once     sync.Once
}

// holdRefreshes holds the next n refresh requests at the gate it returns.
func (p *authPeer) holdRefreshes(t testing.TB, n int) *refreshGate {
	g := &refreshGate{left: n, arrived: make(chan struct{}, n), released: make(chan struct{})}
	t.Cleanup(g.release)
	p.mu.Lock()
	p.gate = g
	p.mu.Unlock()
	return g
}

// take returns g when it holds the request now arriving (nil otherwise). p.mu is held.
func (g *refreshGate) take() *refreshGate {
	if g == nil || g.left == 0 {
		return nil
	}
	g.left--
	return g
}

// hold holds r until g is released; false when r's client gave up first.
func (g *refreshGate) hold(r *http.Request) bool {
	if g == nil {
		return true
	}
	g.arrived <- struct{}{}
	select {
	case <-g.released:
		return true
	case <-r.Context().Done():
		return false
	}
}

// wait waits until n requests are held.
func (g *refreshGate) wait(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for range n {
		select {
		case <-g.arrived:
		case <-deadline:
			t.Fatalf("fewer than %d refresh requests reached the Auth API", n)
		}
	}
}

func (g *refreshGate) release() { g.once.Do(func() { close(g.released) }) }

func (p *authPeer) sign(t testing.TB, email string, u peerUser, ttl time.Duration, iss, aud string) string {
	now := p.clock()
	claims := jwt.MapClaims{
		"sub": u.id, "email": email, "role": "authenticated", "aud": aud, "iss": iss,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
		"app_metadata": map[string]any{"provider": "email", "role": u.role},
	}
	var token string
	var err error
	if p.es256 {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		tok.Header["kid"] = "test-key"
		token, err = tok.SignedString(p.key)
	} else {
		token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(jwtSecret))
	}
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func withSupabase(p *authPeer, secret string) func(*bundleOptions) {
	return func(o *bundleOptions) {
		o.supabase = console.NewSupabase(console.SupabaseConfig{URL: p.URL, AnonKey: anonKey, JWTSecret: secret}, nil, time.Now)
	}
}

// withSupabaseOn signs admins in through p with the HS256 secret, the console and p on clock.
func withSupabaseOn(p *authPeer, clock *clockwork.FakeClock) func(*bundleOptions) {
	p.now = clock.Now
	return func(o *bundleOptions) {
		o.supabase = console.NewSupabase(console.SupabaseConfig{URL: p.URL, AnonKey: anonKey, JWTSecret: jwtSecret}, nil, clock.Now)
		o.clock = clock
	}
}

func (br *browser) signInSupabase(email, password string) (*http.Response, string) {
	br.t.Helper()
	_, page := br.get("/admin/login")
	return br.post("/admin/login", url.Values{"csrf_token": {csrfOf(br.t, page)}, "method": {"supabase"}, "email": {email}, "password": {password}})
}

func TestSupabaseAdminsSignInAndActAsThemselves(t *testing.T) {
	t.Parallel()
	for _, es256 := range []bool{false, true} {
		name := map[bool]string{false: "HS256 with the JWT secret", true: "ES256 with the project's JWKS"}[es256]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			peer := newAuthPeer(t, es256)
			secret := jwtSecret
			if es256 {
				secret = "" // asymmetric keys: the JWKS is the only way
			}
			b := setup(t, withSupabase(peer, secret))
			lead := insertLead(t, b.db, "Supabase Lead", "sb@example.com", "", "hot", 20*time.Minute)

			// Wrong password, and a user who is no admin, are refused.
			if res, body := b.browser(t).signInSupabase("admin@truenester.com", "wrong"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password") {
				t.Fatalf("wrong password: %d", res.StatusCode)
			}
			if res, body := b.browser(t).signInSupabase("agent@truenester.com", "battery staple"); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "not an admin") {
				t.Fatalf("a user who is not an admin: %d", res.StatusCode)
			}

			br := b.browser(t)
			res, _ := br.signInSupabase("admin@truenester.com", "correct horse")
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("admin sign-in: %d", res.StatusCode)
			}
			var sessionTTL int
			for _, c := range res.Cookies() {
				if c.Name == "leadrelay_session" {
					sessionTTL = c.MaxAge
				}
			}
			// The session is renewed with the refresh token (each renewal checks the admin
			// role), so it lasts the working day a key's does.
			if sessionTTL <= 3600 || sessionTTL > int(console.MaxSessionTTL.Seconds()) {
				t.Errorf("a Supabase session lasts %ds; want more than the access token's hour, at most %s", sessionTTL, console.MaxSessionTTL)
			}
			_, page := br.get("/admin/leads/" + lead)
			if !strings.Contains(page, "admin@truenester.com") {
				t.Errorf("the page does not show who is signed in")
			}
			if res, body := br.post("/admin/leads/"+lead+"/notes", url.Values{"csrf_token": {csrfOf(t, page)}, "body": {"Called, no answer"}}); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("add note: %d %.300s", res.StatusCode, body)
			}
			if res, _ := br.post("/admin/leads/"+lead+"/contacted", url.Values{"csrf_token": {csrfOf(t, page)}}); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("mark contacted: %d", res.StatusCode)
			}
			rows, err := b.db.Query(context.Background(), `select event_type::text, actor_type::text, actor_id, metadata ->> 'actor_email'
				from conversation_timeline where conversation_id = $1 and event_type in ('note', 'status_changed') order by created_at, event_type`, lead)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var kind, actorType, actorID string
				var email *string
				if err := rows.Scan(&kind, &actorType, &actorID, &email); err != nil {
					t.Fatal(err)
				}
				e := ""
				if email != nil {
					e = *email
				}
				got = append(got, kind+" "+actorType+" "+actorID+" "+e)
			}
			rows.Close()
			want := []string{"note agent " + adminID + " admin@truenester.com", "status_changed agent " + adminID + " admin@truenester.com"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("timeline entries %q, want %q", got, want)
			}
		})
	}
}

func TestTheAdminAPITakesASupabaseAdminsTokenAndNoOtherToken(t *testing.T) {
	t.Parallel()
	peer := newAuthPeer(t, true)
	b := setup(t, withSupabase(peer, jwtSecret))
	lead := insertLead(t, b.db, "Api Lead", "api@example.com", "", "warm", time.Minute)
	other := newAuthPeer(t, true) // another project's key, same kid
	expired := peer.sign(t, "admin@truenester.com", peerUsers["admin@truenester.com"], -time.Hour, peer.issuer(), "authenticated")
	cases := []struct {
		name, token string
		status      int
	}{
		{"an admin's token", peer.sign(t, "admin@truenester.com", peerUsers["admin@truenester.com"], time.Hour, peer.issuer(), "authenticated"), http.StatusCreated},
		{"the admin key", adminKey, http.StatusCreated},
		{"a user who is not an admin", peer.sign(t, "agent@truenester.com", peerUsers["agent@truenester.com"], time.Hour, peer.issuer(), "authenticated"), http.StatusForbidden},
		{"an expired token", expired, http.StatusUnauthorized},
		{"another issuer", peer.sign(t, "admin@truenester.com", peerUsers["admin@truenester.com"], time.Hour, "https://evil.example/auth/v1", "authenticated"), http.StatusUnauthorized},
		{"another audience", peer.sign(t, "admin@truenester.com", peerUsers["admin@truenester.com"], time.Hour, peer.issuer(), "anon"), http.StatusUnauthorized},
		{"another project's key", other.sign(t, "admin@truenester.com", peerUsers["admin@truenester.com"], time.Hour, peer.issuer(), "authenticated"), http.StatusUnauthorized},
		{"an HS256 token signed with the anon key", hs256(t, anonKey), http.StatusUnauthorized},
	}
	for _, c := range cases {
		req, err := http.NewRequest("POST", b.url+"/admin/api/leads/"+lead+"/notes", strings.NewReader(`{"body":"from the API"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, res.StatusCode, body, c.status)
		}
	}
	var byAdmin, byKey int
	if err := b.db.QueryRow(context.Background(), `select count(*) filter (where actor_id = $2 and metadata ->> 'actor_email' = 'admin@truenester.com'),
		count(*) filter (where actor_id = 'admin key') from conversation_timeline where conversation_id = $1 and event_type = 'note'`, lead, adminID).Scan(&byAdmin, &byKey); err != nil {
		t.Fatal(err)
	}
	if byAdmin != 1 || byKey != 1 {
		t.Errorf("notes by the Supabase admin %d, by the key %d; want one each", byAdmin, byKey)
	}
}

// hs256 signs an admin's claims with a secret the service does not hold.
func hs256(t *testing.T, secret string) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": adminID, "aud": "authenticated", "exp": time.Now().Add(time.Hour).Unix(),
		"app_metadata": map[string]any{"role": "admin"},
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A Supabase admin's session is renewed with the refresh-token grant when its access token
// (an hour) is about to expire or has expired, on the console's clock, so the admin stays
// signed in for the working day; while the Auth API is away a token that still works is
// kept, with one try per session every 30 s, not one per request; a renewal that cannot be
// made ends the session, and the sign-in page says why: the Auth API away past the token's
// expiry, the refresh token refused (signed out elsewhere), the user no admin any more.
func TestSupabaseSessionsAreRenewedWithTheRefreshToken(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now())
	peer := newAuthPeer(t, false)
	b := setup(t, withSupabaseOn(peer, clock))
	lead := insertLead(t, b.db, "Renewed Lead", "renewed@example.com", "", "warm", time.Minute)
	refreshes := func() int { peer.mu.Lock(); defer peer.mu.Unlock(); return peer.refreshes }
	signIn := func() *browser {
		t.Helper()
		br := b.browser(t)
		if res, _ := br.signInSupabase("admin@truenester.com", "correct horse"); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("admin sign-in: %d", res.StatusCode)
		}
		return br
	}
	works := func(br *browser, when string, wantRefreshes int) {
		t.Helper()
		if res, _ := br.get("/admin/leads"); res.StatusCode != http.StatusOK {
			t.Fatalf("the leads page %s: %d, want 200", when, res.StatusCode)
		}
		if n := refreshes(); n != wantRefreshes {
			t.Fatalf("%d refresh grants %s, want %d", n, when, wantRefreshes)
		}
	}
	// signedOut checks that the session is gone and that the sign-in page says why.
	signedOut := func(br *browser, why string) {
		t.Helper()
		if n := countRows(t, b.db, "select count(*) from leadrelay_private.console_sessions where actor_id = $1", adminID); n != 0 {
			t.Errorf("%d sessions of the admin left, want none", n)
		}
		if res, page := br.get("/admin/login"); res.StatusCode != http.StatusOK || !strings.Contains(page, why) {
			t.Errorf("the sign-in page after the session ended: %d, does not say %q:\n%.1500s", res.StatusCode, why, page)
		}
		if res, _ := br.get("/admin/leads"); res.StatusCode != http.StatusSeeOther {
			t.Errorf("the leads page once signed out: %d, want a redirect to sign in", res.StatusCode)
		}
	}

	br := signIn()
	var accessExpires time.Time
	var sealed []byte
	if err := b.db.QueryRow(context.Background(), `select access_expires_at, refresh_token from leadrelay_private.console_sessions
		where actor_id = $1`, adminID).Scan(&accessExpires, &sealed); err != nil {
		t.Fatal(err)
	}
	if d := accessExpires.Sub(clock.Now()); d <= 59*time.Minute || d > time.Hour {
		t.Errorf("the session's access token expires in %s, want the hour the Auth API granted", d)
	}
	peer.mu.Lock()
	for refresh := range peer.tokens {
		if strings.Contains(string(sealed), refresh) || strings.Contains(string(sealed), strings.TrimPrefix(refresh, "r-")) {
			t.Errorf("the session table holds the refresh token in the clear")
		}
	}
	peer.mu.Unlock()

	clock.Advance(30 * time.Minute)
	works(br, "half an hour in", 0)
	clock.Advance(29 * time.Minute) // within renewBefore of the expiry
	works(br, "a minute before the access token expires", 1)
	clock.Advance(3 * time.Hour) // long past the renewed token's expiry
	works(br, "hours after the access token expired", 2)
	if res, page := br.get("/admin/leads/" + lead); res.StatusCode != http.StatusOK || !strings.Contains(page, "admin@truenester.com") {
		t.Errorf("a lead's page on the renewed session: %d", res.StatusCode)
	}

	// The Auth API away: a token that still works is kept, one try per 30 s.
	peer.mu.Lock()
	peer.away = "unavailable"
	peer.mu.Unlock()
	clock.Advance(59 * time.Minute)
	works(br, "with the Auth API away, a minute before expiry", 3)
	works(br, "again at once", 3)
	clock.Advance(31 * time.Second)
	works(br, "30 s later", 4)
	clock.Advance(2 * time.Minute) // the access token has expired: the session ends
	if res, _ := br.get("/admin/leads"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/login") {
		t.Fatalf("the leads page with the token expired and the Auth API away: %d %s, want a redirect to sign in", res.StatusCode, res.Header.Get("Location"))
	}
	if n := refreshes(); n != 5 {
		t.Errorf("%d refresh grants, want 5", n)
	}
	signedOut(br, "Supabase did not answer when your session had to be renewed")
	peer.mu.Lock()
	peer.away = ""
	peer.mu.Unlock()

	// Signed out elsewhere (every refresh token revoked): an action is refused, changing nothing.
	br = signIn()
	_, page := br.get("/admin/leads/" + lead)
	peer.mu.Lock()
	clear(peer.tokens) // GoTrue deletes a session signed out, its refresh tokens with it
	peer.mu.Unlock()
	clock.Advance(time.Hour)
	if res, body := br.post("/admin/leads/"+lead+"/contacted", url.Values{"csrf_token": {csrfOf(t, page)}}); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Your Supabase session has ended") {
		t.Errorf("an action with the refresh token revoked: %d, want 401 saying the session ended:\n%.1500s", res.StatusCode, body)
	}
	if n := countRows(t, b.db, "select count(*) from conversations where id = $1 and status = 'new'", lead); n != 1 {
		t.Error("the refused action changed the lead")
	}
	signedOut(br, "Your Supabase session has ended")

	// No longer an admin: a fragment answers 401, and the sign-in page says why.
	br = signIn()
	peer.mu.Lock()
	peer.roles = map[string]string{"admin@truenester.com": ""}
	peer.mu.Unlock()
	clock.Advance(time.Hour)
	if res, _ := br.get("/admin/leads?fragment=list"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a fragment once the user is no admin: %d, want 401", res.StatusCode)
	}
	signedOut(br, "no longer an admin")
}

// replicas is one Supabase admin signed in to two replicas of the console behind one load
// balancer: a and b, each with its own pool, console and Supabase client on one database,
// against one Auth API, all on one clock; br is the admin's browser (one cookie jar), at a
// and at b.
type replicas struct {
	clock    *clockwork.FakeClock
	peer     *authPeer
	a, b     *testBundle
	atA, atB *browser
}

func signedInOnTwoReplicas(t *testing.T) *replicas {
	t.Helper()
	r := &replicas{clock: clockwork.NewFakeClockAt(time.Now()), peer: newAuthPeer(t, false)}
	r.a = setup(t, withSupabaseOn(r.peer, r.clock))
	r.b = r.a.replica(t)
	r.atA = r.a.browser(t)
	r.atB = r.atA.at(r.b)
	if res, _ := r.atA.signInSupabase("admin@truenester.com", "correct horse"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %d", res.StatusCode)
	}
	return r
}

// refreshes is how many refresh grants the Auth API was asked for.
func (r *replicas) refreshes() int {
	r.peer.mu.Lock()
	defer r.peer.mu.Unlock()
	return r.peer.refreshes
}

// stored is the refresh token the admin's one session keeps, opened with its cookie.
func (r *replicas) stored(t *testing.T) string {
	t.Helper()
	var sealed []byte
	err := r.a.db.QueryRow(context.Background(), `select refresh_token from leadrelay_private.console_sessions
		where actor_id = $1 and token_hash = sha256(convert_to($2::text, 'UTF8'))`, adminID, r.atA.cookie("leadrelay_session")).Scan(&sealed)
	if err != nil {
		t.Fatalf("the admin's session: %v", err)
	}
	if n := countRows(t, r.a.db, "select count(*) from leadrelay_private.console_sessions where actor_id = $1", adminID); n != 1 {
		t.Fatalf("%d sessions of the admin, want one", n)
	}
	refresh, err := console.OpenRefresh(r.atA.cookie("leadrelay_session"), sealed)
	if err != nil {
		t.Fatal(err)
	}
	return refresh
}

// leads asks br for the leads page, in the background: the answer's status and body, or the
// error, come on the channel.
func leads(br *browser) <-chan string {
	answer := make(chan string, 1)
	go func() {
		res, err := br.Get(br.base + "/admin/leads")
		if err != nil {
			answer <- err.Error()
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		answer <- fmt.Sprintf("%d %s %v", res.StatusCode, res.Header.Get("Location"), err) + "\n" + string(body)
	}()
	return answer
}

// signedInPage checks an answer of leads: the leads page, of the admin.
func signedInPage(t *testing.T, replica, answer string) {
	t.Helper()
	if !strings.HasPrefix(answer, "200 ") || !strings.Contains(answer, "admin@truenester.com") {
		t.Errorf("the leads page at replica %s: %.300s, want 200 signed in as the admin", replica, answer)
	}
}

// Two replicas renew one session at once (each request at its replica finds the access token
// expiring, and each replica sends the same refresh token to the Auth API): GoTrue answers
// the first with a new refresh token and the second, the active token's parent, with that
// same active token, whether it comes at the same moment or long after the reuse interval.
// The admin stays signed in on both replicas; the session keeps one refresh token, the one
// the Auth API holds active; and the next renewal, an hour later, works.
func TestTwoReplicasRenewingOneSessionAtOnceKeepItSignedIn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		apart time.Duration // between the Auth API's answers to a and to b
	}{
		{"at the same moment", 0},
		{"the second after the reuse interval", reuseInterval + 20*time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := signedInOnTwoReplicas(t)
			signed := r.stored(t)
			r.clock.Advance(59 * time.Minute) // the access token expires within 2 minutes

			var atA, atB string
			if c.apart == 0 {
				gate := r.peer.holdRefreshes(t, 2)
				toA, toB := leads(r.atA), leads(r.atB)
				gate.wait(t, 2) // both replicas sent the refresh token
				gate.release()
				atA, atB = <-toA, <-toB
			} else {
				gate := r.peer.holdRefreshes(t, 1)
				toB := leads(r.atB)
				gate.wait(t, 1) // b sent it, and the Auth API has not seen it yet
				atA = <-leads(r.atA)
				r.clock.Advance(c.apart)
				gate.release()
				atB = <-toB
			}
			signedInPage(t, "a", atA)
			signedInPage(t, "b", atB)
			if n := r.refreshes(); n != 2 {
				t.Errorf("%d refresh grants, want one per replica", n)
			}
			renewed := r.stored(t)
			if renewed == signed || !r.peer.accepts(renewed) {
				t.Errorf("the session keeps a refresh token the Auth API does not hold active (renewed: %t)", renewed != signed)
			}

			r.clock.Advance(time.Hour)
			for _, at := range []struct {
				name string
				br   *browser
			}{{"b", r.atB}, {"a", r.atA}} {
				signedInPage(t, at.name, <-leads(at.br))
			}
			if n := r.refreshes(); n != 3 {
				t.Errorf("%d refresh grants after the next renewal, want 3", n)
			}
			if again := r.stored(t); again == renewed || !r.peer.accepts(again) {
				t.Errorf("the next renewal left a refresh token the Auth API does not hold active")
			}
		})
	}
}

// A replica whose refresh finds the Auth API away once the access token has expired keeps
// the session that another replica renewed meanwhile, instead of signing the admin out: away
// as a 503, or as the 409 GoTrue answers when a concurrent refresh holds the session's lock
// past its 5 s.
func TestAReplicaThatFindsTheAuthAPIAwayTakesTheRenewalAnotherMade(t *testing.T) {
	t.Parallel()
	for _, away := range []string{"unavailable", "conflict"} {
		t.Run(away, func(t *testing.T) {
			t.Parallel()
			r := signedInOnTwoReplicas(t)
			r.clock.Advance(61 * time.Minute) // the access token has expired
			gate := r.peer.holdRefreshes(t, 1)
			toB := leads(r.atB)
			gate.wait(t, 1)
			signedInPage(t, "a", <-leads(r.atA))
			r.peer.mu.Lock()
			r.peer.away = away
			r.peer.mu.Unlock()
			gate.release()
			signedInPage(t, "b", <-toB)
			if n := r.refreshes(); n != 2 {
				t.Errorf("%d refresh grants, want one per replica", n)
			}
			if !r.peer.accepts(r.stored(t)) {
				t.Error("the session keeps a refresh token the Auth API does not hold active")
			}
		})
	}
}

// A replica paused after it read the session, whose refresh reaches the Auth API after the
// session was renewed twice elsewhere: that token is no longer the active one's parent, and
// the reuse interval is long past, so GoTrue takes it for a stolen token, revokes the
// session's every refresh token, the one the console keeps included, and answers
// refresh_token_already_used. The console ends the session there and then: that replica
// answers with the sign-in page, which says why, the other replica finds the admin signed
// out, and nothing answers 500 or sends the browser round in a loop.
func TestARefreshTokenReuseTheAuthAPIDetectsSignsTheAdminOut(t *testing.T) {
	t.Parallel()
	r := signedInOnTwoReplicas(t)
	r.clock.Advance(59 * time.Minute)
	gate := r.peer.holdRefreshes(t, 1)
	atB := leads(r.atB)
	gate.wait(t, 1) // b is paused with the refresh token it read
	signedInPage(t, "a", <-leads(r.atA))
	r.clock.Advance(59 * time.Minute)
	signedInPage(t, "a", <-leads(r.atA))
	kept := r.stored(t)
	if !r.peer.accepts(kept) {
		t.Fatal("after two renewals at a, the session keeps a refresh token the Auth API does not hold active")
	}

	gate.release()
	answer := <-atB
	if !strings.HasPrefix(answer, "303 /admin/login?next=%2Fadmin%2Fleads ") {
		t.Errorf("b's answer to the refresh the Auth API took for a reuse: %.300s, want a redirect to sign in", answer)
	}
	if !r.peer.revoked(kept) {
		t.Error("the Auth API did not revoke the session's refresh tokens")
	}
	if n := countRows(t, r.a.db, "select count(*) from leadrelay_private.console_sessions where actor_id = $1", adminID); n != 0 {
		t.Errorf("%d sessions of the admin left, want none", n)
	}
	if res, page := r.atA.get("/admin/login?next=%2Fadmin%2Fleads"); res.StatusCode != http.StatusOK || !strings.Contains(page, "Your Supabase session has ended") {
		t.Errorf("the sign-in page at a: %d, does not say why the session ended:\n%.1500s", res.StatusCode, page)
	}
	for _, at := range []*browser{r.atA, r.atB} {
		if res, _ := at.get("/admin/leads"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/login") {
			t.Errorf("the leads page at %s once signed out: %d %q, want a redirect to sign in", at.base, res.StatusCode, res.Header.Get("Location"))
		}
		if res, page := at.get("/admin/login"); res.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
			t.Errorf("the sign-in page at %s: %d, want the form", at.base, res.StatusCode)
		}
	}
	if n := r.refreshes(); n != 3 {
		t.Errorf("%d refresh grants, want 3 (none once the session ended)", n)
	}
}

func countRows(t *testing.T, db *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
