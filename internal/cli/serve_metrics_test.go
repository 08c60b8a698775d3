package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A real Prometheus scrapes `tidemark serve`: the state gauges move when a
// host fails and come back when it succeeds, the ingest counters count the
// pushes, and the alert rules load.
func TestServeMetricsScrapedByPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Prometheus")
	}
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		exited <- run(ctx, []string{"serve", "--addr", addr, "--metrics-addr", metricsAddr, "--metrics-interval", "500ms",
			"--database", filepath.Join(t.TempDir(), "tidemark.db"), "--log-level", "warn"},
			strings.NewReader(""), &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	hub := "http://" + addr
	waitFor(t, "the hub", 20*time.Second, func() (bool, string) {
		resp, err := http.Get(hub + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	rules := filepath.Join(testenv.RepoRoot(), "charts", "tidemark", "files", "tidemark-rules.yaml")
	prom := testenv.StartPrometheus(t, []string{metricsAddr}, rules)

	commit := fleetSHA(1)
	mustPush(t, hub, "/api/v1/deploymentdescriptors", fleetDescriptor("prod", "main", "1.0.0", commit))
	report := func(host, status string) {
		mustPush(t, hub, "/api/v1/reconcilers", fleetReport(host, "main", commit, status, ""))
	}
	report("prod-1", "success")
	report("prod-2", "success")

	target := `environment="prod",workspace="acme",application="shop",workload="api",target="drone"`
	expect := func(what, promql string, want float64) {
		t.Helper()
		waitFor(t, what, 60*time.Second, func() (bool, string) {
			got, err := prom.Query(ctx, promql)
			if err != nil {
				return false, err.Error()
			}
			if len(got) != 1 {
				return false, fmt.Sprintf("%d series: %v", len(got), got)
			}
			return got[0].Value == want, fmt.Sprint(got[0].Value)
		})
	}
	expect("2 hosts", `tidemark_target_hosts{`+target+`}`, 2)
	expect("none failing", `tidemark_target_hosts_status{`+target+`,status="failure"}`, 0)

	report("prod-2", "failure")
	expect("prod-2 failing", `tidemark_target_hosts_status{`+target+`,status="failure"}`, 1)
	expect("failed drift", `tidemark_target_hosts_drifted{`+target+`,kind="failed"}`, 1)
	expect("1 host at success", `tidemark_target_hosts_status{`+target+`,status="success"}`, 1)

	report("prod-2", "success")
	expect("prod-2 recovered", `tidemark_target_hosts_status{`+target+`,status="failure"}`, 0)
	expect("no failed drift", `tidemark_target_hosts_drifted{`+target+`,kind="failed"}`, 0)
	expect("reports applied", `sum(tidemark_ingest_documents_total{kind="Reconciler",source="api",outcome="applied"})`, 4)
	expect("requests by route", `sum(tidemark_http_requests_total{route="POST /api/v1/reconcilers",code="200"})`, 4)

	resp, err := http.Get(prom.URL + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	for _, alert := range []string{"TidemarkRolloutFailing", "TidemarkNoReports"} {
		if !strings.Contains(body.String(), `"name":"`+alert+`"`) {
			t.Errorf("Prometheus did not load the alert %s: %s", alert, body.String())
		}
	}
}

// waitFor polls cond until it holds, or fails the test after timeout with
// cond's last word.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: not after %v (last: %s)", what, timeout, last)
}
