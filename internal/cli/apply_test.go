package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func startHub(t *testing.T, st *store.Store) string {
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func count(t *testing.T, st *store.Store, table string) int {
	t.Helper()
	var n int
	if err := st.Read().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every sample resource and both README examples apply unchanged.
func TestApplyFixtures(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		url := startHub(t, st)
		code, out, errOut := runCLI(t, "", "apply", "--server", url, "-f", testenv.Testdata("kalypso-samples"), "-f", testenv.Testdata("seed", "readme-examples.yaml"))
		if code != 0 {
			t.Fatalf("apply exit %d\n%s\n%s", code, out, errOut)
		}
		if n := strings.Count(out, "\n"); n != 14 {
			t.Errorf("apply printed %d lines, want 14 (one per document):\n%s", n, out)
		}
		for tbl, n := range map[string]int{"workspaces": 2, "applications": 2, "workloads": 3, "environments": 4,
			"targets": 10, "assignments": 10, "workload_versions": 7, "hosts": 1, "reconcilers": 1, "azure_resource_graphs": 1} {
			if got := count(t, st, tbl); got != n {
				t.Errorf("%s: %d rows, want %d", tbl, got, n)
			}
		}
		// The shared originals, when they are beside the checkout, apply
		// unchanged too: the testdata copy is current.
		if shared := testenv.SharedFixtures(); shared != "" {
			code, out, errOut := runCLI(t, "", "apply", "--server", url, "-f", shared)
			if code != 0 || strings.Count(out, "\n") != 12 {
				t.Errorf("apply of %s: exit %d\n%s%s", shared, code, out, errOut)
			}
		}
		// The README example and a sample declare the same target with
		// different repositories (wxl.best, github.com): the last applied
		// wins. Applying the same input twice in a row changes nothing.
		runCLI(t, "", "apply", "--server", url, "-f", testenv.Testdata("kalypso-samples"))
		code, out, errOut = runCLI(t, "", "apply", "--server", url, "-f", testenv.Testdata("kalypso-samples"))
		if code != 0 || strings.Contains(out, "configured") || strings.Count(out, "unchanged") != 12 {
			t.Errorf("re-apply: exit %d\n%s%s", code, out, errOut)
		}
	})
}

func TestApplyErrorsNameFileDocumentAndField(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	url := startHub(t, st)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`apiVersion: hub.kalypso.io/v1alpha1
kind: Reconciler
metadata:
  name: ok
spec:
  hostName: h1
  type: flux
  manifestsEndpoint: https://github.com/org/repo/dev/drone
  deployment: {gitOpsCommitId: 5ce065315cc1702b6cb4eb9d3f804413706570d8, status: success}
---
apiVersion: hub.kalypso.io/v1alpha1
kind: DeploymentDescriptor
metadata:
  name: broken
spec:
  workload: {name: api, application: {name: shop, workspace: {name: acme}}}
  deploymentTarget: {name: t, environment: dev, manifests: {repo: "https://github.com/org/repo"}}
  workloadVersion: {version: 1.0}
`), 0o644)
	code, out, errOut := runCLI(t, "", "apply", "--server", url, "-f", bad)
	if code == 0 {
		t.Fatalf("apply of an invalid file exited 0: %s", out)
	}
	want := bad + `: document 2 (DeploymentDescriptor "broken"): spec.workloadVersion.version: must be a string, not a number: quote the value in YAML`
	if !strings.Contains(errOut, want) {
		t.Errorf("error output\n%s\ndoes not contain\n%s", errOut, want)
	}
	if n := count(t, st, "reconcilers"); n != 0 {
		t.Errorf("the valid document was sent although another was invalid: %d reconcilers", n)
	}
	// Unknown kinds, and the hub being away.
	code, _, errOut = runCLI(t, "kind: ConfigMap\napiVersion: v1\n", "apply", "--server", url, "-f", "-")
	if code == 0 || !strings.Contains(errOut, `<stdin>: document 1 (ConfigMap ""): kind`) {
		t.Errorf("ConfigMap: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "", "apply", "--server", "http://127.0.0.1:1", "-f", testenv.Testdata("seed"))
	if code == 0 || !strings.Contains(errOut, "cannot reach the hub") {
		t.Errorf("hub away: exit %d: %s", code, errOut)
	}
}

func TestApplyDryRunSendsNothing(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	url := startHub(t, st)
	code, out, errOut := runCLI(t, "", "apply", "--dry-run", "--server", url, "-f", testenv.Testdata("kalypso-samples"))
	if code != 0 || !strings.Contains(out, "valid (dry run)") {
		t.Fatalf("dry run: %d %s %s", code, out, errOut)
	}
	if n := count(t, st, "workspaces"); n != 0 {
		t.Errorf("dry run stored %d workspaces", n)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "tidemark ") {
		t.Errorf("version: %d %q", code, out)
	}
}
