package dashboards_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/dashboards"
)

// This file expands a panel's SQL as Grafana does, in two steps: the
// browser replaces the dashboard's variables (templateSrv), then the
// PostgreSQL data source's backend replaces its macros ($__timeFilter...).
// It follows Grafana 11/12: the "sqlstring" format quotes each value with
// ' (doubling ' and turning " into \"), joined by commas; a custom "All"
// value is passed as it is, whatever the format; the macros are those of
// pkg/tsdb/grafana-postgresql-datasource/macros.go.

// selection is what a dashboard's variables are set to: absent multi-value
// variables are "All"; text variables are single strings.
type selection struct {
	multi    map[string][]string
	text     map[string]string
	from, to time.Time
}

// multiVariables are the dashboards' multi-value variables.
var multiVariables = []string{"workspace", "application", "environment", "workload", "target", "status"}

// textVariables are the dashboards' text boxes, with their defaults.
var textVariables = map[string]string{"promotion_order": "", "host": "", "stale_after": "1h", "tidemark_url": dashboards.DefaultWebURL}

var variableRef = regexp.MustCompile(`\$\{([a-z_]+)(?::([a-z]+))?\}|\$([a-z_]+)\b`)

// interpolate replaces the variables, as Grafana's browser side does.
func (s selection) interpolate(sql string) (string, error) {
	var err error
	out := variableRef.ReplaceAllStringFunc(sql, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name, format := m[1], m[2]
		if name == "" {
			name = m[3]
			if strings.HasPrefix(name, "__") {
				return ref // a macro or a global variable: the backend's
			}
		}
		if format != "sqlstring" {
			err = fmt.Errorf("%s: use ${%s:sqlstring} in SQL, so that values are quoted", ref, name)
			return ref
		}
		if slices.Contains(multiVariables, name) {
			vals, ok := s.multi[name]
			if !ok {
				return dashboards.AllValue // a custom all value is not formatted
			}
			return sqlString(vals...)
		}
		v, ok := s.text[name]
		if !ok {
			v, ok = textVariables[name]
		}
		if !ok {
			err = fmt.Errorf("%s: no such variable", ref)
		}
		return sqlString(v)
	})
	return out, err
}

// sqlString is Grafana's sqlstring format.
func sqlString(vals ...string) string {
	quoted := make([]string, len(vals))
	for i, v := range vals {
		quoted[i] = "'" + strings.NewReplacer("'", "''", `"`, `\"`).Replace(v) + "'"
	}
	return strings.Join(quoted, ",")
}

var macro = regexp.MustCompile(`\$([_a-zA-Z0-9]+)\(([^\)]*)\)`)

// expand replaces the macros, as the PostgreSQL data source's backend
// does; an unknown macro is an error there too.
func (s selection) expand(sql string) (string, error) {
	var err error
	from, to := s.from.UTC().Format(time.RFC3339Nano), s.to.UTC().Format(time.RFC3339Nano)
	out := macro.ReplaceAllStringFunc(sql, func(m string) string {
		g := macro.FindStringSubmatch(m)
		args := strings.Split(g[2], ",")
		for i := range args {
			args[i] = strings.TrimSpace(args[i])
		}
		switch g[1] {
		case "__timeFilter":
			return fmt.Sprintf("%s BETWEEN '%s' AND '%s'", args[0], from, to)
		case "__timeFrom":
			return "'" + from + "'"
		case "__timeTo":
			return "'" + to + "'"
		case "__timeGroupAlias", "__timeGroup":
			if len(args) < 2 {
				err = fmt.Errorf("%s needs a column and an interval", m)
				return m
			}
			d, perr := parseInterval(strings.Trim(args[1], "'"))
			if perr != nil {
				err = perr
				return m
			}
			sec := d.Seconds()
			group := fmt.Sprintf("floor(extract(epoch from %s)/%v)*%v", args[0], sec, sec)
			if g[1] == "__timeGroupAlias" {
				group += ` AS "time"`
			}
			return group
		}
		err = fmt.Errorf("unknown macro %q", g[1])
		return m
	})
	if err == nil && strings.Contains(out, "$") {
		err = fmt.Errorf("something was not expanded: %s", out)
	}
	return out, err
}

// parseInterval reads Grafana's intervals (1d as well as Go durations).
func parseInterval(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err != nil {
			return 0, fmt.Errorf("interval %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// sql is a panel's SQL as the database receives it.
func (s selection) sql(raw string) (string, error) {
	sql, err := s.interpolate(raw)
	if err != nil {
		return "", err
	}
	return s.expand(sql)
}

// The expansion follows Grafana's documented examples.
func TestGrafanaExpansion(t *testing.T) {
	s := selection{
		multi: map[string][]string{"environment": {"dev", `o'brien "x"`}},
		text:  map[string]string{"host": "h1"},
		from:  time.Date(2017, 7, 18, 11, 15, 52, 0, time.UTC), to: time.Date(2017, 7, 18, 11, 25, 52, 500e6, time.UTC),
	}
	got, err := s.sql(`SELECT $__timeGroupAlias(t, '1d'), $__timeFrom() WHERE $__timeFilter(t) AND env IN (${environment:sqlstring})
		AND ws IN (${workspace:sqlstring}) AND h = ${host:sqlstring}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT floor(extract(epoch from t)/86400)*86400 AS "time", '2017-07-18T11:15:52Z' WHERE t BETWEEN '2017-07-18T11:15:52Z' AND '2017-07-18T11:25:52.5Z' AND env IN ('dev','o''brien \"x\"')
		AND ws IN ('__all__') AND h = 'h1'`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{"SELECT $__unknown(x)", "SELECT ${environment}", "SELECT ${nothing:sqlstring}"} {
		if _, err := s.sql(bad); err == nil {
			t.Errorf("%q expanded without error", bad)
		}
	}
}
