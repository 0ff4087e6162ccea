package notifiers

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/truenester/leadrelay"
)

// DeliveryError is how every sender reports a failed delivery: what the peer
// said, and what the dispatcher should do about it.
type DeliveryError struct {
	Channel leadrelay.Channel
	// Permanent means retrying cannot help: the peer refused the message or
	// our configuration (Slack 4xx, Telegram 400/403, SMTP 5xx, a
	// certificate we cannot trust). Otherwise the failure is transient
	// (timeouts, connection errors, 5xx, SMTP 4xx, 429).
	Permanent bool
	// RetryAfter is how long the peer asked us to wait (a 429's Retry-After
	// or Telegram's parameters.retry_after); 0 when it did not say.
	RetryAfter time.Duration
	// Status is the peer's HTTP status or SMTP reply code; 0 when there was
	// no reply.
	Status int
	// Response is what the peer said, cut short: Slack's "invalid_token",
	// Telegram's description, the SMTP reply text.
	Response string
	Err      error
}

func (e *DeliveryError) Error() string {
	s := string(e.Channel) + ": " + e.Err.Error()
	switch {
	case e.Permanent:
		s += " (permanent)"
	case e.RetryAfter > 0:
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// IsPermanent reports whether err says retrying cannot help. Errors that are
// not a *DeliveryError count as transient: when in doubt, retry.
func IsPermanent(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de) && de.Permanent
}

// RetryAfter is the wait the peer asked for before the next attempt, or 0.
func RetryAfter(err error) time.Duration {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.RetryAfter
	}
	return 0
}

// maxResponse bounds what a peer's answer may add to an error, which ends up
// in notification_logs and the admin's timeline.
const maxResponse = 300

// httpFailure classifies an HTTP answer that was not a success. Every 4xx but
// 408 and 429 is permanent: the request itself or our credentials are wrong
// (Slack's 400 invalid_payload, 403 invalid_token, 404 no_service, 410
// channel_is_archived; Telegram's 400 chat not found, 401 bad token, 403 bot
// blocked). Everything else may pass on a later try.
func httpFailure(ch leadrelay.Channel, status int, response string, retryAfter time.Duration) *DeliveryError {
	response = clip(strings.TrimSpace(response), maxResponse)
	msg := fmt.Sprintf("HTTP %d", status)
	if response != "" {
		msg += ": " + response
	}
	return &DeliveryError{
		Channel:    ch,
		Permanent:  status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests,
		RetryAfter: retryAfter,
		Status:     status,
		Response:   response,
		Err:        errors.New(msg),
	}
}

// connFailure classifies a failure without an answer from the peer: a
// timeout, a refused or broken connection, all transient; except a
// certificate we cannot verify, which no retry will fix.
func connFailure(ch leadrelay.Channel, err error) *DeliveryError {
	var certErr *tls.CertificateVerificationError
	return &DeliveryError{Channel: ch, Permanent: errors.As(err, &certErr), Err: err}
}

// retryAfterHeader reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfterHeader(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
