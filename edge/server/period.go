package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/truenester/leadrelay/sla"
)

// defaultPeriod is the SLA summary's period when the request names none:
// the last 30 days.
const defaultPeriod = 30 * 24 * time.Hour

var errPeriod = errors.New("invalid period")

// parsePeriod reads the SLA summary's from and to query parameters: RFC
// 3339 times or YYYY-MM-DD dates (UTC midnight; a date as to means the end
// of that day). Either may be empty: to defaults to now, from to
// defaultPeriod before to. Errors wrap errPeriod or sla.ErrPeriod and name
// the parameter.
func parsePeriod(from, to string, now time.Time) (time.Time, time.Time, error) {
	end := now
	if to != "" {
		t, date, err := parseTime(to)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("%w: to=%q is not a date (2026-11-01) or an RFC 3339 time", errPeriod, to)
		}
		if date {
			t = t.AddDate(0, 0, 1)
		}
		end = t
	}
	start := end.Add(-defaultPeriod)
	if from != "" {
		t, _, err := parseTime(from)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("%w: from=%q is not a date (2026-11-01) or an RFC 3339 time", errPeriod, from)
		}
		start = t
	}
	if err := sla.CheckPeriod(start, end); err != nil {
		return time.Time{}, time.Time{}, err
	}
	return start, end, nil
}

func parseTime(s string) (t time.Time, date bool, err error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, nil
	}
	t, err = time.Parse(time.RFC3339Nano, s)
	return t, false, err
}
