package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// smallTables are the tables of names that reports join and filter on.
// They stay small (a few environments, hundreds of workloads, thousands
// of targets) and change rarely, so PostgreSQL's autovacuum seldom or
// never analyzes them: an environments table of 4 rows never reaches its
// threshold of 50 changed rows, and the planner then guesses the rows a
// filter such as environment=prod keeps (7 targets of 1,600 instead of
// 400), which turns a page read by index into a sort of every reconciler.
var smallTables = []string{"workspaces", "applications", "workloads", "environments", "endpoints", "targets"}

// fleetTables are the tables whose size moves in bulk and drives the
// plans of the reports: hosts, reconcilers and what ingest maintains of
// them grow with the fleet (a row per host, per reconciler, per host and
// environment it deploys to, per reconciler and assignment), endpoint
// groups and drift swell while a rollout is under way and drain as it
// completes (a row per endpoint, commit and status; per host not at its
// target's version). Autovacuum's analysis follows up to a minute or more
// behind such a swing, and a bulk load (a first fleet) leaves the
// maintained tables never analyzed until it gets to them. A planner that
// still thinks the reconcilers are 74 rows sorts every host-target row
// for a page of Host State (70 ms instead of 15 at 1,000 hosts); one that
// thinks an environment has 9 hosts in host_environments sorts all 500 of
// them for a page of Host State of that environment (44 ms instead of 11
// at 2,000 hosts); one that still thinks a drained drift table holds the
// 100,000 rows of a rollout hash-joins every reconciler for an empty Drift
// page (114 ms instead of 1 at 10,000 hosts). They are analyzed when their
// row count moved by a tenth and a thousand rows since their last
// analysis; updates alone (every report rewrites its reconciler's row) are
// autovacuum's to follow.
var fleetTables = []string{"hosts", "reconcilers", "host_counts", "host_environments", "reconciler_assignments",
	"endpoint_counts", "assignment_outcomes", "drift"}

// StatisticsCheckInterval is how often a running hub checks whether the
// small tables' statistics are out of date (RefreshStatistics).
const StatisticsCheckInterval = time.Minute

// AnalyzeSmallTables refreshes the query planner's statistics of the
// small tables. It is cheap (each is read whole or sampled) and runs with
// the store's periodic maintenance.
func (s *Store) AnalyzeSmallTables(ctx context.Context) error {
	return s.analyze(ctx, smallTables)
}

func (s *Store) analyze(ctx context.Context, tables []string) error {
	for _, t := range tables {
		if _, err := s.d.Exec(ctx, `ANALYZE `+t); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return nil
}

// RefreshStatistics analyzes the small tables whose planner statistics are
// missing or out of date, and returns their names: on PostgreSQL, a table
// never analyzed, or one of which a tenth of the rows (and at least one)
// changed since its last analysis, whoever ran it (autovacuum,
// AnalyzeSmallTables), and the fleet tables that grew or shrank (see
// fleetTables); on SQLite, a small table never analyzed.
// A hub calls it every StatisticsCheckInterval, so that the statistics
// follow a bulk load (a first fleet, a new environment's targets) within a
// minute instead of at the next hourly maintenance; when nothing changed
// it costs one read of the statistics views.
func (s *Store) RefreshStatistics(ctx context.Context) ([]string, error) {
	stale, err := s.staleTables(ctx)
	if err != nil || len(stale) == 0 {
		return nil, err
	}
	return stale, s.analyze(ctx, stale)
}

// staleTables lists the tables RefreshStatistics analyzes.
func (s *Store) staleTables(ctx context.Context) ([]string, error) {
	var q string
	var args []any
	switch s.d.Name() {
	case "postgres":
		// reltuples is -1 until the first ANALYZE (or VACUUM).
		q = `SELECT c.relname FROM pg_class c JOIN pg_stat_user_tables st ON st.relid = c.oid
			WHERE (c.oid IN (` + regclasses(smallTables) + `)
				AND (c.reltuples < 0 OR (st.n_mod_since_analyze > 0 AND st.n_mod_since_analyze >= 0.1 * c.reltuples)))
			OR (c.oid IN (` + regclasses(fleetTables) + `)
				AND abs(st.n_live_tup - greatest(c.reltuples, 0)) >= 1000 + 0.1 * greatest(c.reltuples, 0))
			ORDER BY c.relname`
	default:
		// sqlite_stat1 exists once anything was analyzed.
		var n int
		if err := s.d.QueryRow(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'`).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			return smallTables, nil
		}
		a := Args{}
		q = `SELECT name FROM (SELECT column1 AS name FROM (VALUES (` + strings.Join(bindEach(&a, smallTables), "), (") + `)))
			WHERE name NOT IN (SELECT tbl FROM sqlite_stat1) ORDER BY name`
		args = a
	}
	return Collect(ctx, s.d, q, args, func(r Row) (string, error) {
		var t string
		err := r.Scan(&t)
		return t, err
	})
}

// regclasses lists tables as PostgreSQL regclass literals (the names are
// the constants above, never input).
func regclasses(tables []string) string {
	out := make([]string, len(tables))
	for i, t := range tables {
		out[i] = "'" + t + "'::regclass"
	}
	return strings.Join(out, ", ")
}

func bindEach(a *Args, vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = a.Bind(v)
	}
	return out
}
