package ingest_test

import (
	"context"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Two hubs writing to one store: what each remembers of the reports it
// stored never decides what is stored, whichever of them stored last.
func TestReportsOfTwoHubs(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		a, b := ingest.New(st), ingest.New(st)
		first, second := benchReport(7, 1, model.StatusSuccess), benchReport(7, 2, model.StatusSuccess)
		apply := func(hub *ingest.Service, name string, r model.Report, changed bool) {
			t.Helper()
			res, err := hub.ApplyReports(ctx, []model.Report{r})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Changed != changed {
				t.Errorf("hub %s storing commit %s: changed %v, want %v", name, r.Commit, res[0].Changed, changed)
			}
			got, err := store.GetReconcilerState(ctx, st.Read(), r.Host, r.Reconciler)
			if err != nil {
				t.Fatal(err)
			}
			if got.Commit != r.Commit {
				t.Errorf("hub %s stored commit %s: the store has %s", name, r.Commit, got.Commit)
			}
		}
		apply(a, "a", first, true)
		apply(b, "b", second, true)
		apply(a, "a", first, true)   // a last stored it, but b changed it since
		apply(b, "b", second, true)  // and back
		apply(a, "a", second, false) // new to a, already stored by b
		apply(a, "a", second, false)
	})
}
