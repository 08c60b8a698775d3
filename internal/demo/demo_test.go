package demo

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestLoad(t *testing.T) {
	ctx := context.Background()
	st := testenv.NewStore(t, "sqlite")
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	start := time.Now()
	stats, err := Load(ctx, st, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("demo: %+v in %v", stats, time.Since(start))
	if stats.Workspaces < 3 || stats.Environments < 4 || stats.Workloads < 10 || stats.Hosts < 50 {
		t.Errorf("demo fleet too small: %+v", stats)
	}
	count := func(q string) int {
		var n int
		if err := st.Read().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	checks := map[string]struct {
		q   string
		min int
	}{
		"hosts":                 {`SELECT count(*) FROM hosts`, 50},
		"environments":          {`SELECT count(*) FROM environments`, 4},
		"workloads":             {`SELECT count(*) FROM workloads`, 10},
		"versions per workload": {`SELECT min(n) FROM (SELECT count(*) AS n FROM workload_versions GROUP BY workload_id) x`, 3},
		"failed deployments":    {`SELECT count(*) FROM deployments d JOIN reconcilers r ON r.current_deployment_id = d.id WHERE d.status = 'failure'`, 1},
		"in progress":           {`SELECT count(*) FROM deployments d JOIN reconcilers r ON r.current_deployment_id = d.id WHERE d.status = 'in_progress'`, 1},
		"stale hosts (>1 day)":  {`SELECT count(*) FROM reconcilers WHERE last_report_at < ` + sqlTime(st, now.Add(-24*time.Hour)), 1},
		"untargeted reports":    {`SELECT count(*) FROM reconcilers r WHERE NOT EXISTS (SELECT 1 FROM targets t WHERE t.endpoint_id = r.endpoint_id)`, 1},
		"unreconciled targets":  {`SELECT count(*) FROM targets t WHERE NOT EXISTS (SELECT 1 FROM reconcilers r WHERE r.endpoint_id = t.endpoint_id)`, 1},
		"status history":        {`SELECT count(*) FROM deployment_history`, 1000},
	}
	for name, c := range checks {
		if n := count(c.q); n < c.min {
			t.Errorf("%s: %d, want at least %d", name, n, c.min)
		}
	}
	// Drift: some host deploys an older version than its target's latest.
	hts, _, err := reports.New(st).HostState(ctx, reports.Filter{}, reports.Page{Limit: reports.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]map[string]bool{}
	for _, h := range hts {
		k := h.Workload + "/" + h.Environment + "/" + h.Target
		if versions[k] == nil {
			versions[k] = map[string]bool{}
		}
		versions[k][h.Version] = true
	}
	drifted := 0
	for _, vs := range versions {
		if len(vs) > 1 {
			drifted++
		}
	}
	if drifted == 0 {
		t.Error("no target has hosts on different versions: the demo shows no drift")
	}
	again, err := Load(ctx, st, now)
	if err != nil || !again.Skipped {
		t.Errorf("second Load: %+v, %v; want skipped", again, err)
	}
}

func sqlTime(st *store.Store, t time.Time) string {
	if st.Engine() == "sqlite" {
		return strconv.FormatInt(t.UnixMicro(), 10)
	}
	return "'" + t.Format(time.RFC3339) + "'"
}
