package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/sla"
)

func TestParsePeriod(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 15, 30, 0, 0, time.UTC)
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct {
		from, to       string
		wantFrom, want time.Time
	}{
		{"", "", now.Add(-30 * 24 * time.Hour), now},
		{"2026-11-01", "2026-11-30", day("2026-11-01"), day("2026-12-01")},
		{"2026-11-01T08:00:00+04:00", "2026-11-02T08:00:00+04:00", time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 4, 0, 0, 0, time.UTC)},
		{"2026-11-20", "", day("2026-11-20"), now},
	} {
		from, to, err := parsePeriod(c.from, c.to, now)
		if err != nil || !from.Equal(c.wantFrom) || !to.Equal(c.want) {
			t.Errorf("parsePeriod(%q, %q) = %s, %s, %v; want %s, %s", c.from, c.to, from, to, err, c.wantFrom, c.want)
		}
	}
	for _, c := range []struct{ from, to, mention string }{
		{"yesterday", "", "from="},
		{"", "2026-13-01", "to="},
		{"2026-11-20", "2026-11-10", "must be after"},
		{"2024-01-01", "2026-01-01", "366 days"},
	} {
		_, _, err := parsePeriod(c.from, c.to, now)
		if !(errors.Is(err, errPeriod) || errors.Is(err, sla.ErrPeriod)) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("parsePeriod(%q, %q): %v; want an invalid period mentioning %q", c.from, c.to, err, c.mention)
		}
	}
}
