package store

import (
	"context"
	"strconv"
	"strings"
)

// Args collects the values of a query built in pieces: each Bind returns
// the placeholder of the value it appends, so that values only ever travel
// as arguments, never inside the SQL text.
type Args []any

// Bind appends v and returns its placeholder ("$n").
func (a *Args) Bind(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// BindList appends every value and returns their placeholders joined with
// ", ", for an IN list.
func BindList[T any](a *Args, vs []T) string {
	ph := make([]string, len(vs))
	for i, v := range vs {
		ph[i] = a.Bind(v)
	}
	return strings.Join(ph, ", ")
}

// In is the condition "col is one of vs" (ids or strings): one array
// parameter on PostgreSQL, whose plan is the same whatever the number of
// values (an IN list of 500 placeholders costs more to plan than to run),
// an IN list on SQLite. vs must not be empty.
func In[T int64 | string](engine string, a *Args, col string, vs []T) string {
	if engine == "postgres" {
		typ := "::bigint[]"
		if _, ok := any(vs).([]string); ok {
			typ = "::text[]"
		}
		return col + " = ANY(" + a.Bind(vs) + typ + ")"
	}
	return col + " IN (" + BindList(a, vs) + ")"
}

// Collect runs a query and scans every row with scan.
func Collect[T any](ctx context.Context, q Querier, sql string, args []any, scan func(Row) (T, error)) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
