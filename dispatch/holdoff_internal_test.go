package dispatch

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// The holdoff's spacing is on its clock: 50 ms after the first failure, doubling up to
// 5 s, and a success ends it; its timer fires exactly when its wait is over.
func TestHoldoffSpacesRetriesOnItsClock(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	h := holdoff{clock: clock}
	defer h.stop()
	if h.active() || h.C() != nil {
		t.Fatal("a holdoff with no failure waits")
	}
	fired := func() bool {
		select {
		case <-h.C():
			return true
		default:
			return false
		}
	}
	for _, want := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second} {
		h.failed()
		clock.Advance(want - time.Nanosecond)
		if !h.active() || fired() {
			t.Fatalf("the holdoff after a failure is over before %s", want)
		}
		clock.Advance(time.Nanosecond)
		if h.active() || !fired() {
			t.Fatalf("the holdoff after a failure is not over at %s", want)
		}
	}
	h.succeeded()
	h.failed()
	if clock.Advance(50 * time.Millisecond); h.active() || !fired() {
		t.Fatal("after a success, the next failure's holdoff is not 50ms")
	}
}
