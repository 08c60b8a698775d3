package store

import (
	"context"
	"fmt"
)

// smallTables are the tables of names that reports join and filter on.
// They stay small (a few environments, hundreds of workloads, thousands
// of targets) and change rarely, so PostgreSQL's autovacuum seldom or
// never analyzes them: an environments table of 4 rows never reaches its
// threshold of 50 changed rows, and the planner then guesses the rows a
// filter such as environment=prod keeps (7 targets of 1,600 instead of
// 400), which turns a page read by index into a sort of every reconciler.
var smallTables = []string{"workspaces", "applications", "workloads", "environments", "endpoints", "targets"}

// AnalyzeSmallTables refreshes the query planner's statistics of the
// small tables. It is cheap (each is read whole or sampled) and runs with
// the store's periodic maintenance.
func (s *Store) AnalyzeSmallTables(ctx context.Context) error {
	for _, t := range smallTables {
		if _, err := s.d.Exec(ctx, `ANALYZE `+t); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return nil
}
