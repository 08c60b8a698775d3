package store_test

import (
	"context"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// ReadForValues runs its reads on plans made for their values, in a
// transaction that cannot write; the store's other reads keep their
// generic plans.
func TestReadForValues(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		runs := 0
		var hosts int
		if err := st.ReadForValues(ctx, func(q store.Querier) error {
			runs++
			return q.QueryRow(ctx, `SELECT count(*) FROM hosts`).Scan(&hosts)
		}); err != nil || runs != 1 || hosts != 0 {
			t.Fatalf("ReadForValues: %v, fn ran %d times, %d hosts; want one run and none", err, runs, hosts)
		}
		if st.Engine() != "postgres" {
			return // SQLite plans every statement for its values
		}
		setting := func(q store.Querier) string {
			t.Helper()
			var mode string
			if err := q.QueryRow(ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&mode); err != nil {
				t.Fatal(err)
			}
			return mode
		}
		var inside string
		writeErr := st.ReadForValues(ctx, func(q store.Querier) error {
			inside = setting(q)
			_, err := q.Exec(ctx, `INSERT INTO workspaces (name, created_at) VALUES ('nope', now())`)
			return err
		})
		if inside != "force_custom_plan" {
			t.Errorf("plan_cache_mode inside ReadForValues: %q, want force_custom_plan", inside)
		}
		if writeErr == nil {
			t.Error("an INSERT inside ReadForValues succeeded, want the read-only transaction to refuse it")
		}
		if got := setting(st.Read()); got != "force_generic_plan" {
			t.Errorf("plan_cache_mode of Read afterwards: %q, want force_generic_plan", got)
		}
	})
}
