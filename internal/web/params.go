package web

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// filterParams are the URL parameters of reports.Filter, in the order the
// filter bar shows them.
var filterParams = []string{"workspace", "application", "environment", "workload", "target", "host", "status", "since", "until"}

// parseFilter reads the report filters from the URL. Times take the forms
// parseTime accepts.
func parseFilter(q url.Values, now time.Time) (reports.Filter, error) {
	f := reports.Filter{Workspace: q.Get("workspace"), Application: q.Get("application"), Environment: q.Get("environment"),
		Workload: q.Get("workload"), Target: q.Get("target"), Host: q.Get("host"), Status: q.Get("status")}
	if err := reports.ValidStatus(f.Status); err != nil {
		return f, &inputError{"status", "use success, failure or in_progress (or leave it empty for all)"}
	}
	var err error
	if f.Since, err = timeParam(q, "since", now); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q, "until", now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, &inputError{"until", "is before since: swap them"}
	}
	return f, nil
}

// timeParam reads an optional time parameter.
func timeParam(q url.Values, name string, now time.Time) (time.Time, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return time.Time{}, nil
	}
	t, err := parseTime(v, now)
	if err != nil {
		return t, &inputError{name, err.Error()}
	}
	return t, nil
}

// parseTime reads a time as people type it into a URL or a form: RFC 3339
// (2026-01-02T15:04:05Z), a date and time in UTC (2026-01-02T15:04, or
// with a space), a date (midnight UTC), or a duration ago (90m, 2h, 7d).
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if d, err := parseAgo(s); err == nil {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use 2026-01-02T15:04 (UTC), an RFC 3339 time, a date, or a duration ago such as 2h or 7d", s)
}

// parseAgo reads a positive duration, with d for days besides Go's units.
func parseAgo(s string) (time.Duration, error) {
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

// pageParam reads the page of a paged table: its cursor and a page size.
func pageParam(q url.Values) (reports.Page, error) {
	p := reports.Page{Cursor: q.Get("cursor"), Limit: defaultRows}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > reports.MaxLimit {
			return p, &inputError{"limit", fmt.Sprintf("%q: give a number of rows from 1 to %d", v, reports.MaxLimit)}
		}
		p.Limit = n
	}
	return p, nil
}

// defaultRows is a page of a table when the URL names no limit.
const defaultRows = 100

// link builds path?query from key-value pairs, leaving out empty values.
// A value may be a string, a []string (repeated) or a url.Values to merge.
func link(p string, kv ...any) string {
	q := url.Values{}
	for i := 0; i < len(kv); i++ {
		switch v := kv[i].(type) {
		case url.Values:
			for k, vs := range v {
				q[k] = append([]string(nil), vs...)
			}
		case string:
			if i+1 >= len(kv) {
				break
			}
			i++
			switch val := kv[i].(type) {
			case string:
				if val == "" {
					q.Del(v)
				} else {
					q.Set(v, val)
				}
			case []string:
				q.Del(v)
				for _, x := range val {
					if x != "" {
						q.Add(v, x)
					}
				}
			default:
				q.Set(v, fmt.Sprint(val))
			}
		}
	}
	if len(q) == 0 {
		return p
	}
	return p + "?" + q.Encode()
}

// filterValues is the URL form of a filter's names (not its times).
func filterValues(f reports.Filter) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"workspace": f.Workspace, "application": f.Application, "environment": f.Environment,
		"workload": f.Workload, "target": f.Target, "host": f.Host, "status": f.Status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// targetValues is the URL form of a target's names.
func targetValues(t reports.TargetRef) url.Values {
	return filterValues(reports.Filter{Workspace: t.Workspace, Application: t.Application, Environment: t.Environment,
		Workload: t.Workload, Target: t.Target})
}
