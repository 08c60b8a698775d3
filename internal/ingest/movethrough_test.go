package ingest_test

import (
	"context"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A batch in which a reconciler reports on an endpoint it neither was on
// nor ends on (it moves through it) lands whole, and the commit it
// reported there is recorded on that endpoint. The batch used to fail:
// only the endpoints of each reconciler's last report were ensured.
func TestReportThroughAnotherEndpoint(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ing := ingest.New(st)
		first := benchReport(1, 1, model.StatusSuccess)
		if _, err := ing.ApplyReport(ctx, first); err != nil {
			t.Fatal(err)
		}
		through := first
		through.Endpoint, _ = model.NewEndpoint("git", "https://github.com/acme/gitops", "staging", "t1")
		through.Commit = sha(2)
		back := first
		back.Commit = sha(3)
		res, err := ing.ApplyReports(ctx, []model.Report{through, back})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 || !res[0].Changed || !res[1].Changed {
			t.Errorf("results %+v", res)
		}
		var endpoint string
		if err := st.Read().QueryRow(ctx, `SELECT e.key FROM commits c JOIN endpoints e ON e.id = c.endpoint_id WHERE c.sha = $1`, sha(2)).Scan(&endpoint); err != nil {
			t.Fatalf("the commit reported on the way: %v", err)
		}
		if endpoint != through.Endpoint.Key() {
			t.Errorf("commit recorded on %q, want %q", endpoint, through.Endpoint.Key())
		}
		var on string
		if err := st.Read().QueryRow(ctx, `SELECT e.key FROM reconcilers r JOIN endpoints e ON e.id = r.endpoint_id`).Scan(&on); err != nil || on != first.Endpoint.Key() {
			t.Errorf("reconciler on %q (%v), want %q", on, err, first.Endpoint.Key())
		}
	})
}
