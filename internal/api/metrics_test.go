package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Pushes are counted by kind, outcome and reason; requests by route.
func TestPushMetrics(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	reg := metrics.NewRegistry()
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{Metrics: metrics.New(reg)}).Handler())
	t.Cleanup(srv.Close)
	h := &hub{t: t, st: st, srv: srv}

	invalid := strings.Replace(reconcilerJSON, `"status": "success"`, `"status": "done"`, 1)
	conflicting := strings.Replace(descriptorJSON, `"build": "build-1"`, `"build": "build-2"`, 1)
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/api/v1/deploymentdescriptors", descriptorJSON, 200},
		{"/api/v1/reconcilers", reconcilerJSON, 200},
		{"/api/v1/reconcilers", "[" + reconcilerJSON + "," + reconcilerJSON + "]", 200}, // replays
		{"/api/v1/reconcilers", "[" + reconcilerJSON + "," + invalid + "]", 422},
		{"/api/v1/reconcilers", "{not json", 400},
		// The second document conflicts: a push is all or nothing, so
		// the first and third are aborted.
		{"/api/v1/deploymentdescriptors", "[" + descriptorJSON + "," + conflicting + "," + descriptorJSON + "]", 409},
	} {
		if status, body, _ := h.do("POST", c.path, c.body); status != c.status {
			t.Fatalf("POST %s: %d %s, want %d", c.path, status, body, c.status)
		}
	}
	want := `
# HELP tidemark_ingest_documents_total Documents ingested, by kind, source and outcome (applied, unchanged, rejected, failed); reason says why a document was rejected or failed.
# TYPE tidemark_ingest_documents_total counter
tidemark_ingest_documents_total{kind="DeploymentDescriptor",outcome="applied",reason="",source="api"} 1
tidemark_ingest_documents_total{kind="DeploymentDescriptor",outcome="rejected",reason="aborted",source="api"} 2
tidemark_ingest_documents_total{kind="DeploymentDescriptor",outcome="rejected",reason="conflict",source="api"} 1
tidemark_ingest_documents_total{kind="Reconciler",outcome="applied",reason="",source="api"} 1
tidemark_ingest_documents_total{kind="Reconciler",outcome="rejected",reason="aborted",source="api"} 1
tidemark_ingest_documents_total{kind="Reconciler",outcome="rejected",reason="invalid",source="api"} 1
tidemark_ingest_documents_total{kind="Reconciler",outcome="rejected",reason="malformed",source="api"} 1
tidemark_ingest_documents_total{kind="Reconciler",outcome="unchanged",reason="",source="api"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tidemark_ingest_documents_total"); err != nil {
		t.Error(err)
	}

	// GET /metrics serves them, in the text format, with requests by route.
	resp, body := authRequest(t, "GET", srv.URL+"/metrics", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	for _, line := range []string{
		`tidemark_ingest_documents_received_total{kind="Reconciler",source="api"} 6`,
		`tidemark_http_requests_total{code="422",route="POST /api/v1/reconcilers"} 1`,
		`tidemark_http_requests_total{code="200",route="POST /api/v1/reconcilers"} 2`,
		`tidemark_ingest_batch_size_count{kind="Reconciler",source="api"} 4`,
		"# TYPE go_goroutines gauge",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("GET /metrics lacks %q", line)
		}
	}
}
