package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Actor is who acts in the console or the admin API: the holder of ADMIN_API_KEY, or a
// Supabase user whose token says app_metadata.role = admin.
type Actor struct {
	Kind  string `json:"kind"`  // ActorAdminKey or ActorSupabase
	ID    string `json:"id"`    // "admin key", or the Supabase user's id
	Email string `json:"email"` // the Supabase user's email; "" for the key
}

// The kinds of actor.
const (
	ActorAdminKey = "admin_key"
	ActorSupabase = "supabase"
)

// AdminKeyActor is the actor of everything done with ADMIN_API_KEY.
var AdminKeyActor = Actor{Kind: ActorAdminKey, ID: "admin key"}

// Name is how the console shows the actor.
func (a Actor) Name() string {
	if a.Email != "" {
		return a.Email
	}
	return a.ID
}

// ErrUnauthorized says a credential is missing, wrong or expired.
var ErrUnauthorized = errors.New("unauthorized")

// KeyMatches says whether token is the admin key, in constant time. An empty key matches
// nothing.
func KeyMatches(key, token string) bool {
	return key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(token)) == 1
}

// Session is a signed-in browser.
type Session struct {
	Actor     Actor
	CSRF      string
	ExpiresAt time.Time
}

// The sessions' lifetimes: a key's session lasts a working day; a Supabase user's lasts as
// long as their access token, so a revoked admin role is honoured within the hour.
const (
	KeySessionTTL = 12 * time.Hour
	MaxSessionTTL = 12 * time.Hour
)

// newToken returns 32 random bytes as text.
func newToken() string { return rand.Text() + rand.Text() }

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateSession starts a session for actor until expires (at most MaxSessionTTL from now);
// it returns the cookie's token.
func (s *Store) CreateSession(ctx context.Context, actor Actor, now, expires time.Time) (token string, sess Session, err error) {
	if limit := now.Add(MaxSessionTTL); expires.After(limit) {
		expires = limit
	}
	token = newToken()
	sess = Session{Actor: actor, CSRF: newToken(), ExpiresAt: expires}
	var email *string
	if actor.Email != "" {
		email = &actor.Email
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "delete from leadrelay_private.console_sessions where expires_at < $1::timestamptz", now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `insert into leadrelay_private.console_sessions
			(token_hash, csrf_token, actor_kind, actor_id, actor_email, created_at, expires_at)
			values ($1::bytea, $2::text, $3::text, $4::text, $5::text, $6::timestamptz, $7::timestamptz)`,
			tokenHash(token), sess.CSRF, actor.Kind, actor.ID, email, now, expires)
		return err
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	return token, sess, nil
}

// Session returns the live session of token at now, or ErrUnauthorized.
func (s *Store) Session(ctx context.Context, token string, now time.Time) (_ Session, err error) {
	if token == "" || len(token) > 200 {
		return Session{}, ErrUnauthorized
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	var sess Session
	var email *string
	err = s.db.QueryRow(ctx, `select csrf_token, actor_kind, actor_id, actor_email, expires_at
		from leadrelay_private.console_sessions where token_hash = $1::bytea and expires_at > $2::timestamptz`,
		tokenHash(token), now).Scan(&sess.CSRF, &sess.Actor.Kind, &sess.Actor.ID, &email, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrUnauthorized
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up session: %w", err)
	}
	if email != nil {
		sess.Actor.Email = *email
	}
	return sess, nil
}

// EndSession signs a session out.
func (s *Store) EndSession(ctx context.Context, token string) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	if _, err := s.db.Exec(ctx, "delete from leadrelay_private.console_sessions where token_hash = $1::bytea", tokenHash(token)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// The console's cookies. The session cookie is sent only to /admin; the sign-in form's
// CSRF cookie only to /admin/login.
const (
	sessionCookie   = "leadrelay_session"
	loginCSRFCookie = "leadrelay_login_csrf"
	csrfField       = "csrf_token"
	csrfHeader      = "X-CSRF-Token"
	sessionPath     = "/admin"
	loginPath       = "/admin/login"
	loginCSRFMaxAge = 3600
)

// secureCookies says whether cookies must be Secure: everywhere but on localhost, where a
// developer runs `make run` over plain HTTP.
func secureCookies(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return false
	}
	return true
}

func setSessionCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time, now time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    token,
		Path:     sessionPath,
		Expires:  expires,
		MaxAge:   int(expires.Sub(now).Seconds()),
		HttpOnly: true,
		Secure:   secureCookies(r),
		// Lax: a link to a lead from a Slack alert opens signed in; a form posted from
		// another site carries no cookie (and no CSRF token either).
		SameSite: http.SameSiteLaxMode,
	})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: secureCookies(r), SameSite: http.SameSiteLaxMode})
}

// validCSRF says whether the request carries the session's CSRF token, in the form or in
// the X-CSRF-Token header.
func validCSRF(r *http.Request, want string) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
