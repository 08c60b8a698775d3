package store

import (
	"context"
	"fmt"
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

// ValuesTable renders rows of values (int64 for "bigint" columns, string
// otherwise) as a table named s with the given columns: unnest of arrays
// on PostgreSQL (one parameter per column, whatever the number of rows,
// so one plan), a VALUES list on SQLite.
func ValuesTable(engine string, a *Args, cols []string, types []string, rows [][]any) string {
	if engine == "postgres" {
		arrays := make([]string, len(cols))
		for c := range cols {
			switch types[c] {
			case "bigint":
				vs := make([]int64, len(rows))
				for i, r := range rows {
					vs[i] = r[c].(int64)
				}
				arrays[c] = a.Bind(vs) + "::bigint[]"
			default:
				vs := make([]string, len(rows))
				for i, r := range rows {
					vs[i] = r[c].(string)
				}
				arrays[c] = a.Bind(vs) + "::text[]"
			}
		}
		return "(SELECT * FROM unnest(" + strings.Join(arrays, ", ") + ") AS u(" + strings.Join(cols, ", ") + ")) s"
	}
	tuples := make([]string, len(rows))
	for i, r := range rows {
		tuples[i] = "(" + BindList(a, r) + ")"
	}
	named := make([]string, len(cols))
	for c, col := range cols {
		named[c] = fmt.Sprintf("column%d AS %s", c+1, col)
	}
	return "(SELECT " + strings.Join(named, ", ") + " FROM (VALUES " + strings.Join(tuples, ", ") + ")) s"
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

// GenericPlans makes the rest of transaction q plan each of its prepared
// statements once per session and reuse the plan (PostgreSQL's
// plan_cache_mode; nothing on SQLite), for work whose statements run many
// times with values that do not change their best plan.
func GenericPlans(ctx context.Context, q Querier, engine string) error {
	if engine != "postgres" {
		return nil
	}
	_, err := q.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`)
	return err
}
