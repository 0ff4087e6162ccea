package notifiers

import (
	"context"
	"errors"
	"testing"
	"time"
)

// sendPastDeadline sends testAlert through s, whose peer never answers, with
// a 200ms deadline; it checks that the deadline cut the attempt short as a
// transient failure, and returns that failure.
func sendPastDeadline(t *testing.T, s Sender) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, testAlert())
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Send returned after %v, long past its 200ms deadline", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Fatalf("err = %v, want a transient deadline error", err)
	}
	return err
}
