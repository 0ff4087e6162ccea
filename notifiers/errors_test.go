package notifiers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/truenester/leadrelay"
)

func TestIsPermanentAndRetryAfterThroughWrapping(t *testing.T) {
	t.Parallel()
	perm := fmt.Errorf("deliver event 7: %w", &DeliveryError{Channel: leadrelay.ChannelSlack, Permanent: true, Err: errors.New("HTTP 403: invalid_token")})
	limited := fmt.Errorf("deliver event 7: %w", &DeliveryError{Channel: leadrelay.ChannelTelegram, RetryAfter: 7 * time.Second, Err: errors.New("HTTP 429")})
	tests := []struct {
		err        error
		permanent  bool
		retryAfter time.Duration
	}{
		{nil, false, 0},
		{context.DeadlineExceeded, false, 0},
		{errors.New("something unknown"), false, 0},
		{perm, true, 0},
		{limited, false, 7 * time.Second},
	}
	for _, tt := range tests {
		if IsPermanent(tt.err) != tt.permanent || RetryAfter(tt.err) != tt.retryAfter {
			t.Errorf("%v: permanent %v retry after %v, want %v %v", tt.err, IsPermanent(tt.err), RetryAfter(tt.err), tt.permanent, tt.retryAfter)
		}
	}
	if got := perm.Error(); got != "deliver event 7: slack: HTTP 403: invalid_token (permanent)" {
		t.Errorf("Error() = %q", got)
	}
	if got := limited.Error(); got != "deliver event 7: telegram: HTTP 429 (retry after 7s)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestHTTPStatusClassification(t *testing.T) {
	t.Parallel()
	for status, permanent := range map[int]bool{400: true, 401: true, 403: true, 404: true, 410: true, 408: false, 429: false, 500: false, 502: false, 503: false} {
		if got := httpFailure(leadrelay.ChannelCRM, status, "", 0).Permanent; got != permanent {
			t.Errorf("HTTP %d: permanent = %v, want %v", status, got, permanent)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"0":                             0,
		"soon":                          0,
		"Fri, 14 Mar 2025 09:31:00 GMT": time.Minute,
		"Fri, 14 Mar 2025 09:29:00 GMT": 0, // already past
	}
	for value, want := range tests {
		h := http.Header{}
		if value != "" {
			h.Set("Retry-After", value)
		}
		if got := retryAfterHeader(h, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", value, got, want)
		}
	}
}
