package console_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/truenester/leadrelay/edge/console"
)

const (
	anonKey   = "anon-key-of-the-test-project"
	jwtSecret = "super-secret-jwt-token-with-at-least-32-characters"
	adminID   = "5d3c1a7e-0b9f-4c61-9a53-2f0e7b1c4d21"
	agentID   = "8e2f4b6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
)

// authPeer speaks the Supabase Auth API's protocol, as far as the console uses it: the
// password grant of the token endpoint (apikey header, JSON body, 400 invalid_credentials
// for a wrong password) and the project's JWKS. It signs HS256 with the JWT secret, or
// ES256 with its key (kid "test-key") when es256 is set.
type authPeer struct {
	*httptest.Server
	es256 bool
	key   *ecdsa.PrivateKey

	mu       sync.Mutex
	requests int
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
	p := &authPeer{es256: es256, key: key}
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
		if r.URL.Query().Get("grant_type") != "password" {
			answer(w, http.StatusBadRequest, `{"code":400,"error_code":"validation_failed","msg":"unsupported_grant_type"}`)
			return
		}
		var body struct{ Email, Password string }
		if json.NewDecoder(r.Body).Decode(&body) != nil {
			answer(w, http.StatusBadRequest, `{"code":400,"error_code":"bad_json","msg":"Could not parse request body as JSON"}`)
			return
		}
		u, ok := peerUsers[body.Email]
		if !ok || u.password != body.Password {
			answer(w, http.StatusBadRequest, `{"code":400,"error_code":"invalid_credentials","msg":"Invalid login credentials"}`)
			return
		}
		token := p.sign(t, body.Email, u, time.Hour, p.issuer(), "authenticated")
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(map[string]any{
			"access_token": token, "token_type": "bearer", "expires_in": 3600,
			"refresh_token": "r-" + u.id, "user": map[string]any{"id": u.id, "email": body.Email},
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

func (p *authPeer) sign(t testing.TB, email string, u peerUser, ttl time.Duration, iss, aud string) string {
	now := time.Now()
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
			if sessionTTL <= 0 || sessionTTL > 3600 {
				t.Errorf("a Supabase session lasts %ds; want at most the access token's hour", sessionTTL)
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
