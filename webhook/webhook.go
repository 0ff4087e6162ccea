// Package webhook signs and verifies Standard Webhooks
// (https://www.standardwebhooks.com): headers webhook-id, webhook-timestamp
// and webhook-signature, "v1," + base64 HMAC-SHA256 of id.timestamp.body.
// The doorbell in supabase/functions-sql signs the same way in SQL.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far a webhook-timestamp may be from now.
const Tolerance = 5 * time.Minute

// Key turns a configured secret into the HMAC key the way the reference
// libraries do: an optional "whsec_" prefix, then standard base64 (padded),
// whose decoding is the key. A secret that is not base64 is an error, never
// used as its own text: a peer using a reference library would reject
// everything signed with it.
func Key(secret string) ([]byte, error) {
	encoded := strings.TrimPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, errors.New("not a Standard Webhooks secret (standard base64 with = padding, optionally after whsec_)")
	}
	if len(key) == 0 {
		return nil, errors.New("an empty key: the secret holds no bytes after whsec_")
	}
	return key, nil
}

// Sign returns the webhook-signature value for a message.
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(timestamp.Unix(), 10), body))
}

// Headers sets the three Standard Webhooks headers on h.
func Headers(h http.Header, key []byte, id string, timestamp time.Time, body []byte) {
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(timestamp.Unix(), 10))
	h.Set("webhook-signature", Sign(key, id, timestamp, body))
}

// Verification failures; each says what was wrong and nothing secret.
var (
	ErrMissing   = errors.New("webhook-id, webhook-timestamp and webhook-signature headers are required")
	ErrStale     = errors.New("webhook-timestamp is more than 5 minutes from now")
	ErrSignature = errors.New("no webhook-signature matches the body")
)

// Verify checks a received webhook against key at time now and returns its id.
// webhook-signature may carry several space-separated signatures (a secret
// being rotated); one valid v1 signature is enough.
func Verify(key []byte, h http.Header, body []byte, now time.Time) (string, error) {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return "", ErrMissing
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("webhook-timestamp %q is not unix seconds", ts)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > Tolerance || d < -Tolerance {
		return "", ErrStale
	}
	want := mac(key, id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		encoded, ok := strings.CutPrefix(sig, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err == nil && hmac.Equal(got, want) {
			return id, nil
		}
	}
	return "", ErrSignature
}

func mac(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	return m.Sum(nil)
}
