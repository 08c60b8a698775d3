package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// EnsureEndpoints keeps the endpoints it finds as they are, creates the
// missing ones, and splits one known only in joined form when the batch
// names its parts, as EnsureEndpoint does one by one.
func TestEnsureEndpoints(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		split := func(branch, path string) model.Endpoint {
			ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", branch, path)
			if err != nil {
				t.Fatal(err)
			}
			return ep
		}
		known, newOne, splitLater := split("main", "prod/web"), split("main", "prod/api"), split("release", "prod/db")
		joined, err := model.ParseEndpoint("git", "https://github.com/acme/gitops/release/prod/db")
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]int64{}
		if err := st.Tx(ctx, func(q store.Querier) error {
			for _, ep := range []model.Endpoint{known, joined} {
				row, _, err := store.EnsureEndpoint(ctx, q, ep, now)
				ids[ep.Key()] = row.ID
				if err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var rows map[string]store.EndpointRow
		var moved []string
		if err := st.Tx(ctx, func(q store.Querier) error {
			var err error
			rows, moved, err = store.EnsureEndpoints(ctx, q, st.Engine(), map[string]model.Endpoint{
				known.Key(): known, newOne.Key(): newOne, splitLater.Key(): splitLater}, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 {
			t.Fatalf("EnsureEndpoints returned %d endpoints, want 3: %v", len(rows), rows)
		}
		if got := rows[known.Key()]; got.ID != ids[known.Key()] || got.BranchKey != known.BranchKey() {
			t.Errorf("known endpoint: %+v, want id %d on %s", got, ids[known.Key()], known.BranchKey())
		}
		if got := rows[splitLater.Key()]; got.ID != ids[joined.Key()] || got.BranchKey != splitLater.BranchKey() {
			t.Errorf("endpoint known joined, now split: %+v, want id %d on %s", got, ids[joined.Key()], splitLater.BranchKey())
		}
		if !slices.Contains(moved, splitLater.BranchKey()) {
			t.Errorf("branches that gained endpoints: %v, want %s among them", moved, splitLater.BranchKey())
		}
		if got := rows[newOne.Key()]; got.ID == 0 || got.ID == ids[known.Key()] || got.BranchKey != newOne.BranchKey() {
			t.Errorf("new endpoint: %+v", got)
		}
		if n := count(t, st, `SELECT count(*) FROM endpoints WHERE NOT joined`); n != 3 {
			t.Errorf("%d split endpoints stored, want 3", n)
		}
	})
}
