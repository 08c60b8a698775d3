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
	t, err := reports.ParseTime(v, now)
	if err != nil {
		return t, &inputError{name, err.Error()}
	}
	return t, nil
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
