package metrics_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	promodel "github.com/prometheus/common/model"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

func TestIngestRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Ingest.Record("Reconciler", metrics.SourceAPI, metrics.OutcomeApplied, "", 3)
	m.Ingest.Record("Reconciler", metrics.SourceAPI, metrics.OutcomeUnchanged, "", 5)
	m.Ingest.Record("DeploymentDescriptor", metrics.SourceAPI, metrics.OutcomeRejected, metrics.ReasonInvalid, 2)
	m.Ingest.Record("Reconciler", "agent", metrics.OutcomeFailed, metrics.ReasonStore, 1)
	m.Ingest.Record("Reconciler", "agent", metrics.OutcomeApplied, "", 0) // nothing
	m.Ingest.Observe("Reconciler", metrics.SourceAPI, 8, 30*time.Millisecond)

	want := `
# HELP tidemark_ingest_documents_received_total Documents received by ingest, by kind and source.
# TYPE tidemark_ingest_documents_received_total counter
tidemark_ingest_documents_received_total{kind="DeploymentDescriptor",source="api"} 2
tidemark_ingest_documents_received_total{kind="Reconciler",source="agent"} 1
tidemark_ingest_documents_received_total{kind="Reconciler",source="api"} 8
# HELP tidemark_ingest_documents_total Documents ingested, by kind, source and outcome (applied, unchanged, rejected, failed); reason says why a document was rejected or failed.
# TYPE tidemark_ingest_documents_total counter
tidemark_ingest_documents_total{kind="DeploymentDescriptor",outcome="rejected",reason="invalid",source="api"} 2
tidemark_ingest_documents_total{kind="Reconciler",outcome="applied",reason="",source="api"} 3
tidemark_ingest_documents_total{kind="Reconciler",outcome="failed",reason="store_error",source="agent"} 1
tidemark_ingest_documents_total{kind="Reconciler",outcome="unchanged",reason="",source="api"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tidemark_ingest_documents_received_total", "tidemark_ingest_documents_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "tidemark_ingest_batch_size", "tidemark_ingest_duration_seconds"); n != 2 {
		t.Errorf("%d histogram series, want 2", n)
	}

	// A nil *Ingest (metrics off) records nothing and does not panic.
	var off *metrics.Ingest
	off.Record("Reconciler", metrics.SourceAPI, metrics.OutcomeApplied, "", 1)
	off.Observe("Reconciler", metrics.SourceAPI, 1, time.Second)

	// A second set on the same registry (two controller managers in one
	// process) shares the first one's series.
	again := metrics.New(reg)
	again.Ingest.Record("Reconciler", metrics.SourceAPI, metrics.OutcomeApplied, "", 1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tidemark_ingest_documents_received_total Documents received by ingest, by kind and source.
# TYPE tidemark_ingest_documents_received_total counter
tidemark_ingest_documents_received_total{kind="DeploymentDescriptor",source="api"} 2
tidemark_ingest_documents_received_total{kind="Reconciler",source="agent"} 1
tidemark_ingest_documents_received_total{kind="Reconciler",source="api"} 9
`), "tidemark_ingest_documents_received_total"); err != nil {
		t.Error(err)
	}
}

func TestHTTPMiddleware(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/hosts/{host}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("host") == "missing" {
			http.Error(w, "no such host", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	srv := httptest.NewServer(m.HTTP.Middleware(mux))
	defer srv.Close()
	for _, path := range []string{"/api/v1/hosts/a", "/api/v1/hosts/b", "/api/v1/hosts/missing", "/nothing/here", "/api/v1/hosts/%00x"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := `
# HELP tidemark_http_requests_total HTTP requests by route pattern and status code.
# TYPE tidemark_http_requests_total counter
tidemark_http_requests_total{code="200",route="GET /api/v1/hosts/{host}"} 3
tidemark_http_requests_total{code="404",route="GET /api/v1/hosts/{host}"} 1
tidemark_http_requests_total{code="404",route="unmatched"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tidemark_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "tidemark_http_request_duration_seconds"); n != 2 {
		t.Errorf("%d duration series, want one per route (2)", n)
	}
}

// The state gauges give reports.Summary's numbers, and follow the fleet
// at each refresh.
func TestState(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		now := start
		clock := func() time.Time { return now }
		ing := ingest.New(st, ingest.WithClock(clock))
		rep := reports.New(st, reports.WithClock(clock))
		m := metrics.New(metrics.NewRegistry())
		state := metrics.NewState(m, rep, metrics.StateOptions{StaleAfter: time.Hour, Clock: clock})

		ep, _ := model.NewEndpoint("git", "https://github.com/acme/shop-gitops", "prod", "eastus")
		assign := func(version, commit string) {
			t.Helper()
			if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
				Environment: "prod", Target: "eastus", Manifests: ep, Version: version, Commit: commit}); err != nil {
				t.Fatal(err)
			}
		}
		report := func(host, commit string, status model.Status) {
			t.Helper()
			if _, err := ing.ApplyReport(ctx, model.Report{Host: host, Reconciler: "api", ReconcilerType: "flux",
				Endpoint: ep, Commit: commit, Status: status}); err != nil {
				t.Fatal(err)
			}
		}
		c1, c2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
		assign("1.0.0", c1)
		for _, h := range []string{"aks-1", "aks-2", "aks-3"} {
			report(h, c1, model.StatusSuccess)
		}
		now = now.Add(10 * time.Minute)
		assign("1.1.0", c2)
		now = now.Add(5 * time.Minute)
		report("aks-1", c2, model.StatusSuccess)
		report("aks-2", c2, model.StatusInProgress)

		target := `environment="prod",target="eastus",workload="api",workspace="acme",application="shop"`
		check := func(want map[string]float64) {
			t.Helper()
			if err := state.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			got := scrape(t, m.Handler(), len(want)%2 == 0) // both encodings
			for k, v := range want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
		}
		g := func(name string, extra ...string) string {
			labels := append(strings.Split(target, ","), extra...)
			slices.Sort(labels)
			return name + "{" + strings.Join(labels, ",") + "}"
		}
		// The rollout of 1.1.0 began 5 minutes ago: one host runs it, one is
		// rolling it out, one has not started.
		check(map[string]float64{
			g("tidemark_target_hosts"):                                 3,
			g("tidemark_target_hosts_at_scheduled_version"):            2,
			g("tidemark_target_hosts_status", `status="success"`):      2,
			g("tidemark_target_hosts_status", `status="in_progress"`):  1,
			g("tidemark_target_hosts_status", `status="failure"`):      0,
			g("tidemark_target_hosts_drifted", `kind="version"`):       1,
			g("tidemark_target_hosts_drifted", `kind="failed"`):        0,
			g("tidemark_target_hosts_drifted", `kind="unknown"`):       0,
			g("tidemark_target_hosts_drifted", `kind="stale"`):         0,
			g("tidemark_target_hosts_drifted", `kind="not_reported"`):  0,
			g("tidemark_target_hosts_status", `status="not_reported"`): 0,
			g("tidemark_rollouts_in_progress"):                         1,
			g("tidemark_rollout_oldest_age_seconds"):                   300,
			"tidemark_unplaced_reconcilers":                            0,
			"tidemark_last_report_timestamp_seconds":                   float64(now.Unix()),
		})

		// aks-2 fails at 1.1.0: the rollout is failing, no longer in progress.
		now = now.Add(5 * time.Minute)
		report("aks-2", c2, model.StatusFailure)
		check(map[string]float64{
			g("tidemark_target_hosts_status", `status="failure"`):     1,
			g("tidemark_target_hosts_status", `status="in_progress"`): 0,
			g("tidemark_target_hosts_drifted", `kind="failed"`):       1,
			g("tidemark_rollouts_in_progress"):                        0,
			g("tidemark_rollout_oldest_age_seconds"):                  0,
		})

		// Both others succeed; two hours later, with no report since, every
		// host is stale.
		report("aks-2", c2, model.StatusSuccess)
		report("aks-3", c2, model.StatusSuccess)
		now = now.Add(2 * time.Hour)
		check(map[string]float64{
			g("tidemark_target_hosts_at_scheduled_version"):       3,
			g("tidemark_target_hosts_status", `status="success"`): 3,
			g("tidemark_target_hosts_drifted", `kind="failed"`):   0,
			g("tidemark_target_hosts_drifted", `kind="version"`):  0,
			g("tidemark_target_hosts_drifted", `kind="stale"`):    3,
			g("tidemark_rollouts_in_progress"):                    0,
		})
		// A fourth cluster joins: registered, no report yet.
		if _, err := ing.ApplyReport(ctx, model.Report{Host: "aks-4", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep}); err != nil {
			t.Fatal(err)
		}
		check(map[string]float64{
			g("tidemark_target_hosts"):                                 4,
			g("tidemark_target_hosts_status", `status="not_reported"`): 1,
			g("tidemark_target_hosts_drifted", `kind="not_reported"`):  1,
			g("tidemark_target_hosts_drifted", `kind="stale"`):         3,
			g("tidemark_rollouts_in_progress"):                         1,
		})
		n := 0
		for k := range scrape(t, m.Handler(), false) {
			if strings.HasPrefix(k, "tidemark_target_") || strings.HasPrefix(k, "tidemark_rollout") ||
				strings.HasPrefix(k, "tidemark_unplaced") || strings.HasPrefix(k, "tidemark_last_report") {
				n++
			}
		}
		if n != 13+2 {
			t.Errorf("%d state series: want 13 for the target and 2 fleet-wide", n)
		}
	})
}

// scrape reads every gauge and counter that h serves as
// "name{label="value",...}" (labels sorted by name) -> value, asking for
// gzip or not.
func scrape(t *testing.T, h http.Handler, gzipped bool) map[string]float64 {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if gzipped {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var body io.Reader = w.Body
	if w.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	} else if gzipped {
		t.Fatal("gzip asked for, not given")
	}
	parser := expfmt.NewTextParser(promodel.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("/metrics is not valid text exposition: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				slices.Sort(ls)
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// Transactions the store runs again after a transient conflict are counted.
func TestStoreRetries(t *testing.T) {
	st := testenv.NewStore(t, "postgres")
	reg := prometheus.NewRegistry()
	metrics.New(reg).Store.Watch(st)
	attempts := 0
	err := st.Tx(ctx, func(store.Querier) error {
		attempts++
		if attempts < 3 {
			return &pgconn.PgError{Code: "40001", Message: "could not serialize access"} // a serialization failure
		}
		return nil
	})
	if err != nil || attempts != 3 {
		t.Fatalf("Tx: %v after %d attempts", err, attempts)
	}
	want := `
# HELP tidemark_store_transaction_retries_total Transactions run again after a transient conflict, by store engine.
# TYPE tidemark_store_transaction_retries_total counter
tidemark_store_transaction_retries_total{engine="postgres"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tidemark_store_transaction_retries_total"); err != nil {
		t.Error(err)
	}
}

// The endpoints whose time-travel snapshots wait for their rebuild, as
// the last rebuild pass counted them: unknown before the first.
func TestStoreSeriesWaiting(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		reg := prometheus.NewRegistry()
		metrics.New(reg).Store.Watch(st)
		ing := ingest.New(st)
		for _, env := range []string{"dev", "prod"} {
			ep, _ := model.NewEndpoint("git", "https://github.com/acme/shop-gitops", env, "eastus")
			if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
				Environment: env, Target: "eastus", Manifests: ep, Version: "1.0.0", Commit: strings.Repeat("a", 40)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.MarkAllSeriesDirty(ctx, st.Primary()); err != nil {
			t.Fatal(err)
		}
		waiting := func() string {
			t.Helper()
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() == "tidemark_store_endpoint_series_waiting" && len(mf.GetMetric()) == 1 {
					return fmt.Sprint(mf.GetMetric()[0].GetGauge().GetValue())
				}
			}
			return "absent"
		}
		if got := waiting(); got != "-1" {
			t.Errorf("before a rebuild: %s, want -1", got)
		}
		for _, step := range []struct {
			limit int
			want  string
		}{{1, "1"}, {10, "0"}} {
			if _, err := st.RebuildSeries(ctx, step.limit); err != nil {
				t.Fatal(err)
			}
			if got := waiting(); got != step.want {
				t.Errorf("after rebuilding up to %d: %s waiting, want %s", step.limit, got, step.want)
			}
		}
	})
}

// A source counts what became of the documents it ingested, and how long
// each call took.
func ExampleIngest_Record() {
	m := metrics.New(metrics.NewRegistry())
	start := time.Now()
	// ... a poller applies a page of 1,000 reports: 3 changed something,
	// 996 repeated the stored state, 1 was invalid.
	m.Ingest.Record("Reconciler", "arg", metrics.OutcomeApplied, "", 3)
	m.Ingest.Record("Reconciler", "arg", metrics.OutcomeUnchanged, "", 996)
	m.Ingest.Record("Reconciler", "arg", metrics.OutcomeRejected, metrics.ReasonInvalid, 1)
	m.Ingest.Observe("Reconciler", "arg", 1000, time.Since(start))
}
