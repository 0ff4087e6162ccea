package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
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
	// AccessExpiresAt is when a Supabase admin's access token expires, before which the
	// session is renewed with its refresh token (zero: nothing to renew).
	AccessExpiresAt time.Time
	refresh         []byte // the refresh token, sealed under the cookie's token
}

// The sessions' lifetimes: a key's session lasts a working day, and so does a Supabase
// admin's whose access token is renewed (each renewal checks that the user is still an
// admin, so a revoked admin role is honoured within the access token's hour); without a
// refresh token it lasts as long as its access token.
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

// refreshKey is the key that seals a session's refresh token: derived from the cookie's
// token, which the database never sees (it keeps tokenHash, a different digest).
func refreshKey(token string) cipher.AEAD {
	key := sha256.Sum256([]byte("leadrelay console refresh token\x00" + token))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

func sealRefresh(token, refresh string) []byte {
	aead := refreshKey(token)
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return aead.Seal(nonce, nonce, []byte(refresh), tokenHash(token))
}

func openRefresh(token string, sealed []byte) (string, error) {
	aead := refreshKey(token)
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("sealed refresh token too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], tokenHash(token))
	if err != nil {
		return "", fmt.Errorf("open the refresh token: %w", err)
	}
	return string(plain), nil
}

// CreateSession starts a session for actor: until expires (at most MaxSessionTTL from now),
// or, with a Supabase refresh token, for MaxSessionTTL, renewed before expires (the access
// token's expiry). It returns the cookie's token.
func (s *Store) CreateSession(ctx context.Context, actor Actor, now, expires time.Time, refreshToken string) (token string, sess Session, err error) {
	token = newToken()
	sess = Session{Actor: actor, CSRF: newToken(), ExpiresAt: expires}
	var accessExpires *time.Time
	var sealed []byte
	if refreshToken != "" {
		sess.AccessExpiresAt, sess.ExpiresAt = expires, now.Add(MaxSessionTTL)
		accessExpires, sealed = &sess.AccessExpiresAt, sealRefresh(token, refreshToken)
	}
	if limit := now.Add(MaxSessionTTL); sess.ExpiresAt.After(limit) {
		sess.ExpiresAt = limit
	}
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
			(token_hash, csrf_token, actor_kind, actor_id, actor_email, created_at, expires_at, access_expires_at, refresh_token)
			values ($1::bytea, $2::text, $3::text, $4::text, $5::text, $6::timestamptz, $7::timestamptz, $8::timestamptz, $9::bytea)`,
			tokenHash(token), sess.CSRF, actor.Kind, actor.ID, email, now, sess.ExpiresAt, accessExpires, sealed)
		return err
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("create session: %w", err)
	}
	sess.refresh = sealed
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
	var accessExpires *time.Time
	err = s.db.QueryRow(ctx, `select csrf_token, actor_kind, actor_id, actor_email, expires_at, access_expires_at, refresh_token
		from leadrelay_private.console_sessions where token_hash = $1::bytea and expires_at > $2::timestamptz`,
		tokenHash(token), now).Scan(&sess.CSRF, &sess.Actor.Kind, &sess.Actor.ID, &email, &sess.ExpiresAt, &accessExpires, &sess.refresh)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrUnauthorized
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up session: %w", err)
	}
	if email != nil {
		sess.Actor.Email = *email
	}
	if accessExpires != nil {
		sess.AccessExpiresAt = *accessExpires
	}
	return sess, nil
}

// RenewSession stores a renewal of sess (of token) by g: its new access token's expiry and
// refresh token. It returns false, changing nothing, when the session ended or another
// request renewed it first (its refresh token is no longer sess's).
func (s *Store) RenewSession(ctx context.Context, token string, sess Session, g Grant) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var email *string
	if g.Actor.Email != "" {
		email = &g.Actor.Email
	}
	tag, err := s.db.Exec(ctx, `update leadrelay_private.console_sessions
		set access_expires_at = $3::timestamptz, refresh_token = $4::bytea, actor_email = $5::text
		where token_hash = $1::bytea and refresh_token = $2::bytea`,
		tokenHash(token), sess.refresh, g.ExpiresAt, sealRefresh(token, g.RefreshToken), email)
	if err != nil {
		return false, fmt.Errorf("renew session: %w", err)
	}
	return tag.RowsAffected() == 1, nil
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
	signedOutCookie = "leadrelay_signed_out" // why a session was ended, for the sign-in page
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
