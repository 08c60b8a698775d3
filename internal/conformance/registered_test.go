package conformance

import (
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
)

// A reconciler registered before its first report (no commit, no status)
// counts for its target as "not yet reported" in every report and the
// gate, and becomes an ordinary deployment when it reports.
func testRegisteredReconciler(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	e.report(report(t, "h1", "drone", "dev", commit(1), model.StatusSuccess))
	registered := e.clock.Now().Add(time.Second)
	e.clock.Advance(time.Second)
	reg := report(t, "h2", "drone", "dev", "", "")
	if !e.report(reg).Changed {
		t.Fatal("registering a new reconciler changed nothing")
	}
	if e.report(reg).Changed {
		t.Error("registering it again changed the store")
	}
	rs := reports.New(e.st, reports.WithClock(e.clock.Now))
	page := reports.Page{Limit: reports.MaxLimit}

	es, _, err := rs.EnvironmentState(ctx, reports.Filter{}, page)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range es {
		got[r.DeployedVersion+" "+r.Status] = r.Hosts
	}
	if len(es) != 2 || got["1.0.0 success"] != 1 || got[" not_reported"] != 1 {
		t.Errorf("environment state: %+v", es)
	}

	hs, _, err := rs.HostState(ctx, reports.Filter{Status: reports.StatusNotReported}, page)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Host != "h2" || hs[0].Commit != "" || hs[0].VersionKnown || !hs[0].StatusSince.Equal(registered) {
		t.Errorf("host state, not reported: %+v", hs)
	}

	g, err := rs.Gate(ctx, reports.GateQuery{Target: "drone", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Total != 2 || g.Succeeded != 1 || g.NotReported != 1 || g.Done {
		t.Errorf("gate: %+v", g)
	}

	hist, _, err := rs.History(ctx, reports.Filter{}, page)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Success != 1 || hist[0].NotReported != 1 || hist[0].AllSucceededAt != nil {
		t.Errorf("history: %+v", hist)
	}

	e.clock.Advance(time.Hour)
	drift, _, err := rs.Drift(ctx, reports.Filter{}, 0, page)
	if err != nil {
		t.Fatal(err)
	}
	var nr []reports.DriftRow
	for _, d := range drift {
		if d.Kind == reports.DriftNotReported {
			nr = append(nr, d)
		}
		if d.Host == "h2" && d.Kind == reports.DriftStale {
			t.Errorf("a host that never reported is listed as stale too: %+v", d)
		}
	}
	if len(nr) != 1 || nr[0].Host != "h2" || !nr[0].Since.Equal(registered) || nr[0].For != time.Hour.Seconds() {
		t.Errorf("drift not_reported: %+v", nr)
	}

	// Its first report makes it an ordinary deployment.
	e.report(report(t, "h2", "drone", "dev", commit(1), model.StatusSuccess))
	g, err = rs.Gate(ctx, reports.GateQuery{Target: "drone", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Total != 2 || g.Succeeded != 2 || !g.Done {
		t.Errorf("gate after its report: %+v", g)
	}
	// Registering it again keeps its deployment.
	e.report(reg)
	e.wantVersions(map[string]string{"h1/api/drone": "1.0.0 success", "h2/api/drone": "1.0.0 success"})
}
