package reports_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-04-30T02:00:00Z":      time.Date(2026, 4, 30, 2, 0, 0, 0, time.UTC),
		"2026-04-30T04:00:00+02:00": time.Date(2026, 4, 30, 2, 0, 0, 0, time.UTC),
		"2026-04-30T02:00":          time.Date(2026, 4, 30, 2, 0, 0, 0, time.UTC),
		"2026-04-30 02:00":          time.Date(2026, 4, 30, 2, 0, 0, 0, time.UTC),
		"2026-04-30":                time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		" 1.5d ":                    now.Add(-36 * time.Hour),
	} {
		got, err := reports.ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-2h", "0d", "2026-13-01", "1e9d"} {
		if _, err := reports.ParseTime(in, now); err == nil || !strings.Contains(err.Error(), "is not a time") {
			t.Errorf("ParseTime(%q): error %v", in, err)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-04-30T02:00", "7d", "90m", "2026-04-30T04:00:00+02:00", "1.5d", "\x00", "9999999999d"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := reports.ParseTime(s, now)
		if err == nil && got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) is not in UTC: %v", s, got)
		}
	})
}
