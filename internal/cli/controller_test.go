package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// `tidemark controller` against a real API server, as the Helm chart runs
// it: leader election, probes (readiness pings the store), metrics, and a
// resource stored; it stops cleanly and hands its Lease back.
func TestControllerCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd")
	}
	kube, err := testenv.StartKube()
	if err != nil {
		testenv.Unavailable(t, "kube-apiserver and etcd (envtest)", err)
	}
	t.Cleanup(func() { _ = kube.Stop() })
	c, err := crclient.New(kube.Config, crclient.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "tidemark.db")
	probe, metrics := loopbackAddr(t), loopbackAddr(t)
	// A Prometheus query API with one cluster's Kustomization, for
	// --prometheus-config: the elected controller polls it.
	promAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		result := "[]"
		if r.ParseForm() == nil && r.Form.Get("query") == "flux_resource_info" {
			result = `[{"metric":{"__name__":"flux_resource_info","cluster":"aks-polled","kind":"Kustomization","name":"apps","exported_namespace":"flux-system","ready":"True","revision":"main@sha1:5ce065315cc1702b6cb4eb9d3f804413706570d8","url":"https://github.com/kaizentm/kalypso-gitops","ref":"dev","path":"drone"},"value":[1700000000,"1"]}]`
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":%s}}`, result)
	}))
	defer promAPI.Close()
	promConfig := filepath.Join(t.TempDir(), "prometheus.yaml")
	os.WriteFile(promConfig, []byte("sources: [{name: fleet, url: "+promAPI.URL+", interval: 1s}]\n"), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"controller", "--kubeconfig", kube.KubeconfigFile(t), "--database", db,
			"--leader-elect", "--leader-election-namespace", "default",
			"--health-probe-bind-address", probe, "--metrics-bind-address", metrics, "--log-level", "warn", "--prometheus-config", promConfig},
			strings.NewReader(""), io.Discard, io.Discard)
	}()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			select {
			case code := <-done:
				t.Fatalf("tidemark controller exited with %d while waiting for %s", code, what)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 30s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	wait("/readyz 200", func() bool { code, _ := get("http://" + probe + "/readyz"); return code == http.StatusOK })
	if code, body := get("http://" + probe + "/readyz?verbose"); !strings.Contains(body, "[+]store ok") {
		t.Errorf("/readyz?verbose: %d\n%s", code, body)
	}

	var lease coordinationv1.Lease
	key := crclient.ObjectKey{Namespace: "default", Name: controller.LeaderElectionID}
	wait("leader Lease", func() bool {
		return c.Get(ctx, key, &lease) == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
	})

	rec := &v1alpha1.Reconciler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kalypso-rg-flux-hello-world"},
		Spec: v1alpha1.ReconcilerSpec{
			HostName: "kalypso-rg-flux", Type: "flux",
			ManifestsEndpoint: "https://github.com/kaizentm/kalypso-gitops/dev/drone",
			Deployment:        &v1alpha1.ReconcilerDeployment{GitOpsCommitID: "dev/5ce065315cc1702b6cb4eb9d3f804413706570d8", Status: "success"},
		},
	}
	if err := c.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	wait("Reconciler Ready", func() bool {
		if c.Get(ctx, crclient.ObjectKeyFromObject(rec), rec) != nil {
			return false
		}
		cond := meta.FindStatusCondition(rec.Status.Conditions, controller.ReadyCondition)
		return cond != nil && cond.Reason == controller.ReasonStored && cond.ObservedGeneration == rec.Generation
	})
	if code, body := get("http://" + metrics + "/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `controller_runtime_reconcile_total{controller="reconciler",result="success"}`) {
		t.Errorf("/metrics: %d, no reconcile count of the reconciler controller", code)
	} else if !strings.Contains(body, `tidemark_store_transaction_retries_total{engine="sqlite"}`) {
		t.Errorf("/metrics: the hub's own metrics are missing:\n%s", body)
	}
	wait("a Prometheus poll", func() bool {
		_, body := get("http://" + metrics + "/metrics")
		return strings.Contains(body, `tidemark_source_reports_applied_total{source="prometheus/fleet"} 1`)
	})

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("tidemark controller exited with %d after SIGTERM, want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tidemark controller did not stop in 30s")
	}
	if err := c.Get(context.Background(), key, &lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("Lease still held by %q after shutdown: it should be released", *h)
	}

	st, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.Read().QueryRow(context.Background(), "SELECT count(*) FROM reconcilers WHERE name = $1", rec.Name).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d reconcilers %s stored (%v), want 1", n, rec.Name, err)
	}
	if err := st.Read().QueryRow(context.Background(), "SELECT count(*) FROM reconcilers WHERE name = $1 AND source = $2", "flux-system/apps", "prometheus/fleet").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d reconcilers polled from Prometheus (%v), want 1", n, err)
	}
}

func loopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
}
