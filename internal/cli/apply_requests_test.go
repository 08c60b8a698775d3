package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// countingHub serves a hub over st and counts the requests it gets per
// path.
func countingHub(t *testing.T, st *store.Store) (string, func(path string) int) {
	var mu sync.Mutex
	counts := map[string]int{}
	h := api.New(st, ingest.New(st), api.Options{}).Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.URL.Path]++
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[path]
	}
}

// reconcilerYAML is one Reconciler as `kubectl get -o yaml` lists it.
func reconcilerYAML(i int) string {
	return fmt.Sprintf(`- apiVersion: hub.kalypso.io/v1alpha1
  kind: Reconciler
  metadata:
    creationTimestamp: "2026-01-02T15:04:05Z"
    generation: 1
    name: drone-%d
    namespace: fleet
    resourceVersion: "%d"
    uid: 6f1c2a9e-0000-4000-8000-%012d
  spec:
    deployment:
      gitOpsCommitId: main@sha1:%s
      status: success
    hostName: aks-%05d
    manifestsEndpoint: https://github.com/acme/gitops/main/drone
    type: flux
`, i%4, 100000+i, i, fleetSHA(1), i/4)
}

// kubectlList is n Reconcilers as `kubectl get reconcilers -A -o yaml`
// prints them: one List.
func kubectlList(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nitems:\n")
	for i := range n {
		b.WriteString(reconcilerYAML(i))
	}
	b.WriteString("kind: List\nmetadata:\n  resourceVersion: \"\"\n")
	return b.String()
}

const descriptorYAML = `apiVersion: hub.kalypso.io/v1alpha1
kind: DeploymentDescriptor
metadata:
  name: api-%[1]s
spec:
  workload:
    name: api
    source: {repo: "https://github.com/acme/api", branch: main, path: .}
    application: {name: shop, workspace: {name: acme}}
  deploymentTarget:
    name: %[1]s
    environment: dev
    manifests: {repo: "https://github.com/acme/gitops", branch: main, path: %[1]s}
  workloadVersion: {version: "1.0.0", build: %[2]s}
  gitOpsCommitId: "%[3]s"
`

// Descriptors and Reconcilers go in one request, stored all or nothing:
// a conflicting descriptor after two reconcilers stores neither.
func TestApplySendsKindsTogether(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		url, requests := countingHub(t, st)
		code, out, errOut := runCLI(t, "", "apply", "--server", url, "-f", testenv.Testdata("kalypso-samples"))
		if code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
		if a, g := requests("/api/v1/apply"), requests("/api/v1/azureresourcegraphs"); a != 1 || g != 1 {
			t.Errorf("%d requests to /api/v1/apply and %d to /api/v1/azureresourcegraphs, want one each", a, g)
		}

		dir := t.TempDir()
		first := filepath.Join(dir, "first.yaml")
		os.WriteFile(first, []byte(fmt.Sprintf(descriptorYAML, "drone", "build-1", fleetSHA(1))), 0o644)
		if code, out, errOut := runCLI(t, "", "apply", "--server", url, "-f", first); code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
		reconcilers := count(t, st, "reconcilers")
		second := filepath.Join(dir, "second.yaml")
		os.WriteFile(second, []byte("apiVersion: v1\nkind: List\nitems:\n"+reconcilerYAML(1)+reconcilerYAML(2)+
			"---\n"+fmt.Sprintf(descriptorYAML, "edge", "build-2", fleetSHA(2))), 0o644)
		code, _, errOut = runCLI(t, "", "apply", "--server", url, "-f", second)
		want := "nothing was stored; resources 1–3 failed (nothing of them was stored): Conflicts with stored state"
		field := second + `: document 2 (DeploymentDescriptor "api-edge"): spec.workloadVersion.build: `
		if code == 0 || !strings.Contains(errOut, want) || !strings.Contains(errOut, field) {
			t.Errorf("conflict: exit %d\n%s\nwant %q and %q", code, errOut, want, field)
		}
		if n := count(t, st, "reconcilers"); n != reconcilers {
			t.Errorf("%d reconcilers, had %d: the request that failed stored part of itself", n, reconcilers)
		}
	})
}

// The README's `kubectl get reconcilers -A -o yaml | tidemark apply -f -`
// with 40,000 Reconcilers (19 MB, over the hub's 8 MiB request limit) goes
// in requests of 2,000. (On SQLite: the splitting is the CLI's, and
// TestApplySaysWhatWasStored runs on both engines.)
func TestApplySplitsLargeInput(t *testing.T) {
	const n = 40_000
	in := kubectlList(n)
	st := testenv.NewStore(t, "sqlite")
	url, requests := countingHub(t, st)
	start := time.Now()
	code, out, errOut := runCLI(t, in, "apply", "--server", url, "-f", "-")
	elapsed := time.Since(start)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%.2000s", code, errOut)
	}
	reqs := requests("/api/v1/apply")
	t.Logf("%d Reconcilers (%.1f MB of YAML) in %d requests, %s", n, float64(len(in))/1e6, reqs, elapsed.Round(time.Millisecond))
	if want := n / defaultRequestDocuments; reqs != want {
		t.Errorf("%d requests, want %d", reqs, want)
	}
	if lines := strings.Count(out, " configured\n"); lines != n {
		t.Errorf("%d lines say configured, want %d", lines, n)
	}
	if got := count(t, st, "reconcilers"); got != n {
		t.Errorf("%d reconcilers stored, want %d", got, n)
	}
}

// When a later request fails, apply says exactly what was stored, what
// failed and what was not sent, and exits 1; the store holds exactly the
// requests that succeeded.
func TestApplySaysWhatWasStored(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		url := startHub(t, st)
		if code, out, errOut := runCLI(t, fmt.Sprintf(descriptorYAML, "drone", "build-1", fleetSHA(1)), "apply", "--server", url, "-f", "-"); code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
		// 40 resources: reconcilers, a descriptor re-publishing 1.0.0 with
		// another build as resource 25, reconcilers.
		var in strings.Builder
		in.WriteString("apiVersion: v1\nkind: List\nitems:\n")
		for i := range 24 {
			in.WriteString(reconcilerYAML(i))
		}
		in.WriteString("---\n" + fmt.Sprintf(descriptorYAML, "edge", "build-2", fleetSHA(2)) + "---\napiVersion: v1\nkind: List\nitems:\n")
		for i := 24; i < 39; i++ {
			in.WriteString(reconcilerYAML(i))
		}
		docs, err := splitDocuments("<stdin>", strings.NewReader(in.String()))
		if err != nil {
			t.Fatal(err)
		}
		for i := range docs {
			docs[i].seq = i + 1
		}
		reqs, err := planRequests(docs, requestLimits{bytes: 4096, documents: defaultRequestDocuments})
		if err != nil || len(reqs) < 4 {
			t.Fatalf("%d requests planned, want 4 or more: %v", len(reqs), err)
		}
		failing := 0
		for failing < len(reqs) && reqs[failing].docs[len(reqs[failing].docs)-1].seq < 25 {
			failing++
		}
		stored, failed := reqs[failing].docs[0].seq-1, reqs[failing].docs[len(reqs[failing].docs)-1].seq
		if stored < 2 || failed >= 39 {
			t.Fatalf("resource 25 is in the request of resources %d–%d: the test wants requests before and after it", stored+1, failed)
		}

		code, _, errOut := runCLI(t, in.String(), "apply", "--server", url, "-f", "-", "--max-request-bytes", "4096")
		for _, want := range []string{
			fmt.Sprintf("resources 1–%d of 40 were stored; resources %d–%d failed (nothing of them was stored): Conflicts with stored state", stored, stored+1, failed),
			`<stdin>: document 2 (DeploymentDescriptor "api-edge"): spec.workloadVersion.build: `,
			fmt.Sprintf("nothing after was sent: resources %d–40", failed+1),
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("the error does not say\n  %s\n%s", want, errOut)
			}
		}
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if n := count(t, st, "reconcilers"); n != stored {
			t.Errorf("%d reconcilers stored, want %d (the requests before the failing one)", n, stored)
		}
	})
}

// A proxy before the hub with a smaller body limit answers 413: apply
// sends the refused request again in halves.
func TestApplyHalvesRequestsAProxyRefuses(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	hub, err := url.Parse(startHub(t, st))
	if err != nil {
		t.Fatal(err)
	}
	const limit = 16 << 10 // like nginx's client_max_body_size 16k
	proxy := httputil.NewSingleHostReverseProxy(hub)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) > limit {
			http.Error(w, "<html>413 Request Entity Too Large</html>", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	code, out, errOut := runCLI(t, kubectlList(150), "apply", "--server", srv.URL, "-f", "-")
	if code != 0 || strings.Count(out, " configured\n") != 150 || !strings.Contains(errOut, "(413): sending it in two") {
		t.Errorf("exit %d\n%.500s\n%s", code, out, errOut)
	}
	if n := count(t, st, "reconcilers"); n != 150 {
		t.Errorf("%d reconcilers, want 150", n)
	}
	// One resource over --max-request-bytes cannot be split: nothing is
	// sent.
	code, _, errOut = runCLI(t, kubectlList(1), "apply", "--server", srv.URL, "-f", "-", "--max-request-bytes", "1024")
	if code != 0 {
		t.Errorf("a resource under 1 KiB: exit %d: %s", code, errOut)
	}
	big := strings.Replace(kubectlList(1), "status: success", "status: success\n      statusMessage: "+strings.Repeat("x", 2000), 1)
	code, _, errOut = runCLI(t, big, "apply", "--server", srv.URL, "-f", "-", "--max-request-bytes", "1024")
	if code == 0 || !strings.Contains(errOut, "nothing was sent: <stdin>: document 1 item 1 (Reconciler \"drone-0\") is 2.") {
		t.Errorf("a resource over --max-request-bytes: exit %d: %s", code, errOut)
	}
}

// A Deployment (the original's custom-agent report) names a reconciler
// registered by a Reconciler: apply sends the Reconciler first, then the
// Deployment to its own route, and the reconciler ends up at its commit.
func TestApplyDeploymentsAfterTheirReconcilers(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		url, requests := countingHub(t, st)
		file := filepath.Join(t.TempDir(), "agent.yaml")
		os.WriteFile(file, []byte(`apiVersion: hub.kalypso.io/v1alpha1
kind: Deployment
metadata:
  name: drone-report
  labels: {hub.kalypso.io/host: aks-00001}
spec:
  reconcilerName: drone
  gitOpsCommitId: main@sha1:`+fleetSHA(7)+`
  status: failure
  statusMessage: image pull backoff
---
apiVersion: hub.kalypso.io/v1alpha1
kind: Reconciler
metadata:
  name: drone
spec:
  hostName: aks-00001
  type: flux
  manifestsEndpoint: https://github.com/acme/gitops/main/drone
`), 0o644)
		if code, out, errOut := runCLI(t, "", "apply", "--server", url, "-f", file); code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
		if a, d := requests("/api/v1/apply"), requests("/api/v1/deployments"); a != 1 || d != 1 {
			t.Errorf("%d requests to /api/v1/apply and %d to /api/v1/deployments, want one each", a, d)
		}
		var status, message string
		if err := st.Read().QueryRow(context.Background(), "SELECT status, message FROM deployments").Scan(&status, &message); err != nil {
			t.Fatal(err)
		}
		if status != "failure" || message != "image pull backoff" {
			t.Errorf("stored %s %q, want the Deployment's failure", status, message)
		}
	})
}
