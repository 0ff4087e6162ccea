package console

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SupabaseConfig is how the console signs TrueNester's admins in with their Supabase
// accounts: SUPABASE_URL, SUPABASE_ANON_KEY, and SUPABASE_JWT_SECRET (the project's HS256
// secret; without it, tokens are checked against the project's JWKS, for asymmetric keys).
type SupabaseConfig struct {
	URL       string // https://<ref>.supabase.co
	AnonKey   string
	JWTSecret string
}

// Enabled says whether Supabase sign-in is configured.
func (c SupabaseConfig) Enabled() bool { return c.URL != "" && c.AnonKey != "" }

// SupabaseConfigFromEnv reads the Supabase settings and names every bad one.
func SupabaseConfigFromEnv(getenv func(string) string) (SupabaseConfig, error) {
	c := SupabaseConfig{
		URL:       strings.TrimRight(getenv("SUPABASE_URL"), "/"),
		AnonKey:   getenv("SUPABASE_ANON_KEY"),
		JWTSecret: getenv("SUPABASE_JWT_SECRET"),
	}
	var errs []error
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("SUPABASE_URL=%q is not an http(s) URL", c.URL))
		}
	}
	if c.AnonKey != "" && c.URL == "" {
		errs = append(errs, errors.New("SUPABASE_ANON_KEY is set but SUPABASE_URL is not"))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("SUPABASE_JWT_SECRET is shorter than 32 characters; copy it from the project's API settings"))
	}
	return c, errors.Join(errs...)
}

// Supabase signs admins in through the Supabase Auth API and verifies their access tokens.
type Supabase struct {
	cfg  SupabaseConfig
	http *http.Client
	now  func() time.Time

	mu        sync.Mutex
	keys      map[string]crypto.PublicKey // the JWKS, by kid
	fetchedAt time.Time
}

// NewSupabase returns a Supabase client; nil when sign-in is not configured.
func NewSupabase(cfg SupabaseConfig, client *http.Client, now func() time.Time) *Supabase {
	if cfg.URL == "" {
		return nil
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Supabase{cfg: cfg, http: client, now: now}
}

// ErrNotAdmin says a valid user is not an admin (app_metadata.role is not "admin").
var ErrNotAdmin = errors.New("not an admin")

// Grant is what the Auth API's token endpoint grants, verified: the admin, when the access
// token expires, and the refresh token that renews it.
type Grant struct {
	Actor        Actor
	ExpiresAt    time.Time
	RefreshToken string
}

// SignIn exchanges an email and password for an access token at the Auth API's token
// endpoint (the password grant) and verifies it.
func (s *Supabase) SignIn(ctx context.Context, email, password string) (Grant, error) {
	return s.grant(ctx, "password", map[string]string{"email": email, "password": password})
}

// Refresh exchanges a refresh token for a new access token and refresh token (the Auth API's
// refresh_token grant; the old refresh token is spent) and verifies it: ErrUnauthorized when
// the Auth API refuses the refresh token (revoked, expired, spent, the user signed out or
// gone), ErrNotAdmin when the user is no admin any more, any other error when it did not
// answer as it should (to try again later). One call, bounded by the client's timeout.
func (s *Supabase) Refresh(ctx context.Context, refreshToken string) (Grant, error) {
	return s.grant(ctx, "refresh_token", map[string]string{"refresh_token": refreshToken})
}

// grant calls the token endpoint with grantType and body, and verifies the access token.
func (s *Supabase) grant(ctx context.Context, grantType string, body map[string]string) (Grant, error) {
	if s == nil || !s.cfg.Enabled() {
		return Grant{}, errors.New("Supabase sign-in is not configured (SUPABASE_URL, SUPABASE_ANON_KEY)")
	}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL+"/auth/v1/token?grant_type="+grantType, bytes.NewReader(raw))
	if err != nil {
		return Grant{}, fmt.Errorf("supabase %s grant: %w", grantType, err)
	}
	req.Header.Set("apikey", s.cfg.AnonKey)
	req.Header.Set("Authorization", "Bearer "+s.cfg.AnonKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.http.Do(req)
	if err != nil {
		return Grant{}, fmt.Errorf("supabase %s grant: %w", grantType, err)
	}
	defer res.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Grant{}, fmt.Errorf("supabase %s grant: read answer: %w", grantType, err)
	}
	switch {
	case res.StatusCode == http.StatusBadRequest || res.StatusCode == http.StatusUnauthorized:
		// {"error":"invalid_grant",...} or {"error_code":"invalid_credentials",...}, or for a
		// refresh token {"error_code":"refresh_token_not_found",...}, "refresh_token_already_used",
		// "session_expired"...: the credential is refused, not the Auth API away.
		return Grant{}, fmt.Errorf("%w: the Auth API answered %d: %.200s", ErrUnauthorized, res.StatusCode, raw)
	case res.StatusCode != http.StatusOK:
		return Grant{}, fmt.Errorf("supabase %s grant: the Auth API answered %d: %.200s", grantType, res.StatusCode, raw)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil || tok.AccessToken == "" {
		return Grant{}, fmt.Errorf("supabase %s grant: no access_token in the Auth API's answer", grantType)
	}
	actor, expires, err := s.Verify(ctx, tok.AccessToken)
	if err != nil {
		return Grant{}, err
	}
	return Grant{Actor: actor, ExpiresAt: expires, RefreshToken: tok.RefreshToken}, nil
}

// claims are the parts of a Supabase access token the console reads.
type claims struct {
	Email       string `json:"email"`
	AppMetadata struct {
		Role string `json:"role"`
	} `json:"app_metadata"`
	jwt.RegisteredClaims
}

// Verify checks a Supabase access token: its signature (HS256 with the JWT secret, or an
// ES256/RS256 key of the project's JWKS), expiry, audience "authenticated" and issuer; and
// that the user is an admin. It returns the admin and when the token expires.
func (s *Supabase) Verify(ctx context.Context, token string) (Actor, time.Time, error) {
	if s == nil {
		return Actor{}, time.Time{}, ErrUnauthorized
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case "HS256":
			if s.cfg.JWTSecret == "" {
				return nil, errors.New("an HS256 token, and SUPABASE_JWT_SECRET is not set")
			}
			return []byte(s.cfg.JWTSecret), nil
		case "ES256", "RS256":
			kid, _ := t.Header["kid"].(string)
			return s.key(ctx, kid)
		}
		return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
	},
		jwt.WithValidMethods([]string{"HS256", "ES256", "RS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithAudience("authenticated"),
		jwt.WithIssuer(s.cfg.URL+"/auth/v1"),
		jwt.WithTimeFunc(s.now),
		jwt.WithLeeway(30*time.Second),
	)
	if err != nil {
		return Actor{}, time.Time{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	if c.Subject == "" || !isUUID(c.Subject) {
		return Actor{}, time.Time{}, fmt.Errorf("%w: the token has no user id", ErrUnauthorized)
	}
	if c.AppMetadata.Role != "admin" {
		return Actor{}, time.Time{}, ErrNotAdmin
	}
	return Actor{Kind: ActorSupabase, ID: c.Subject, Email: c.Email}, c.ExpiresAt.Time, nil
}

// jwksRefresh bounds how often an unknown kid makes us fetch the JWKS again.
const jwksRefresh = 5 * time.Minute

// key returns the JWKS key kid, fetching the JWKS when it is unknown (at most every
// jwksRefresh, so a flood of forged kids cannot make us hammer the Auth API).
func (s *Supabase) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	if !s.fetchedAt.IsZero() && s.now().Sub(s.fetchedAt) < jwksRefresh {
		return nil, fmt.Errorf("no key %q in the project's JWKS", kid)
	}
	keys, err := s.fetchJWKS(ctx)
	s.fetchedAt = s.now()
	if err != nil {
		return nil, err
	}
	s.keys = keys
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no key %q in the project's JWKS", kid)
}

func (s *Supabase) fetchJWKS(ctx context.Context) (map[string]crypto.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL+"/auth/v1/.well-known/jwks.json", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("apikey", s.cfg.AnonKey)
	res, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: the Auth API answered %d", res.StatusCode)
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	keys := map[string]crypto.PublicKey{}
	b64 := base64.RawURLEncoding
	for _, k := range set.Keys {
		switch k.Kty {
		case "EC":
			if k.Crv != "P-256" {
				continue
			}
			x, errX := b64.DecodeString(k.X)
			y, errY := b64.DecodeString(k.Y)
			if errX != nil || errY != nil {
				continue
			}
			keys[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		case "RSA":
			n, errN := b64.DecodeString(k.N)
			e, errE := b64.DecodeString(k.E)
			if errN != nil || errE != nil || len(e) > 4 {
				continue
			}
			keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		}
	}
	return keys, nil
}
