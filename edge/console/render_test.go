package console_test

import (
	"context"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/edge/console"
)

// The console says a duration as the timeline's persisted text does (public.duration_text,
// which the Supabase panel shows too), so a countdown beside "Answered after 15 min" reads
// alike: one definition, the SQL's, and the Go one held to it at every unit's boundary.
func TestHumanDurationIsDurationText(t *testing.T) {
	t.Parallel()
	db := testkit.Connect(t, dbtest.NewURL(t))
	const (
		minute = 60
		hour   = 60 * minute
		day    = 24 * hour
	)
	for _, secs := range []float64{
		0, 0.5, 1, 59, 59.999, 60, 61, minute + 0.5, 2*minute + 5, 15 * minute, 14*minute + 32,
		hour - 1, hour, hour + 1, hour + minute, hour + 5*minute, 2 * hour,
		day - 1, day, day + 1, day + minute, day + hour, 25*hour + 1, 30 * hour, 47*hour + 59*minute + 59,
		2 * day, 2*day + 1, 2*day + 3*hour, 3 * day, 10*day + 23*hour + 59*minute, 365*day + 6*hour,
	} {
		var want string
		if err := db.QueryRow(context.Background(), `select public.duration_text(make_interval(secs => $1))`, secs).Scan(&want); err != nil {
			t.Fatalf("duration_text of %v s: %v", secs, err)
		}
		d := time.Duration(secs * float64(time.Second))
		if got := console.HumanDuration(d); got != want {
			t.Errorf("%v s: the console says %q, duration_text %q", secs, got, want)
		}
		// The pages put "left" or "ago" around it: a duration before now says the same.
		if got := console.HumanDuration(-d); got != want {
			t.Errorf("%v s before now: the console says %q, want %q (no sign)", secs, got, want)
		}
	}
}
