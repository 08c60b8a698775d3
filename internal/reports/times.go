package reports

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a time as people type it into a URL, a form or a flag: RFC 3339
// (2026-01-02T15:04:05Z), a date and time in UTC (2026-01-02T15:04, or
// with a space), a date (midnight UTC), or a duration ago (90m, 2h, 7d).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if d, err := ParseAgo(s); err == nil {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use 2026-01-02T15:04 (UTC), an RFC 3339 time, a date, or a duration ago such as 2h or 7d", s)
}

// ParseAgo reads a positive duration, with d for days besides Go's units.
func ParseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n <= 0 || n > 36600 {
			return 0, fmt.Errorf("bad days")
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad duration")
	}
	return d, nil
}
