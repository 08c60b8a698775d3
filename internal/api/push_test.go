package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const descriptorJSON = `{
  "apiVersion": "hub.kalypso.io/v1alpha1", "kind": "DeploymentDescriptor",
  "metadata": {"name": "hello-world-functional-test-0-0-1", "annotations": {"hub.kalypso.io/gitops-commit": "dev@sha1:5ce065315cc1702b6cb4eb9d3f804413706570d8"}},
  "spec": {
    "workload": {"name": "hello-world", "source": {"repo": "https://github.com/kaizentm/hello-world", "branch": "main", "path": "."},
      "application": {"name": "greeting-service", "workspace": {"name": "kaizentm"}}},
    "deploymentTarget": {"name": "drone", "environment": "dev",
      "manifests": {"repo": "https://github.com/kaizentm/kalypso-gitops", "branch": "dev", "path": "drone"}},
    "workloadVersion": {"version": "0.0.1", "build": "build-1", "commit": "ca9ee9d0ff9ec52b998fdcf64e128c84ddd0e661", "buildTime": "2023-04-27T23:25:05Z"}
  }
}`

const reconcilerJSON = `{
  "apiVersion": "hub.kalypso.io/v1alpha1", "kind": "Reconciler",
  "metadata": {"name": "kalypso-rg-flux-hello-world"},
  "spec": {"hostName": "kalypso-rg-flux", "type": "flux",
    "manifestsEndpoint": "https://github.com/kaizentm/kalypso-gitops/dev/drone", "manifestsStorageType": "git",
    "deployment": {"gitOpsCommitId": "dev/5ce065315cc1702b6cb4eb9d3f804413706570d8", "status": "success", "statusMessage": "Resource is Ready\n"}}
}`

type hub struct {
	t   *testing.T
	st  *store.Store
	srv *httptest.Server
}

func newHub(t *testing.T, st *store.Store) *hub {
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{}).Handler())
	t.Cleanup(srv.Close)
	return &hub{t: t, st: st, srv: srv}
}

func (h *hub) do(method, path, body string) (int, string, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (h *hub) count(table string) int {
	h.t.Helper()
	var n int
	if err := h.st.Read().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func decodeResult(t *testing.T, body string) api.PushResult {
	t.Helper()
	var r api.PushResult
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return r
}

func TestPushAndReplay(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		h := newHub(t, st)
		code, body, _ := h.do("POST", "/api/v1/deploymentdescriptors", descriptorJSON)
		if code != 200 {
			t.Fatalf("POST descriptor: %d %s", code, body)
		}
		r := decodeResult(t, body)
		if len(r.Items) != 1 || !r.Items[0].Changed || r.Items[0].Commit != "5ce065315cc1702b6cb4eb9d3f804413706570d8" {
			t.Errorf("result %+v", r)
		}
		code, body, _ = h.do("POST", "/api/v1/reconcilers", "["+reconcilerJSON+"]")
		if code != 200 || !decodeResult(t, body).Items[0].Changed {
			t.Fatalf("POST reconcilers: %d %s", code, body)
		}
		// Replays change nothing, as a list too.
		code, body, _ = h.do("POST", "/api/v1/deploymentdescriptors", `{"kind":"DeploymentDescriptorList","items":[`+descriptorJSON+`]}`)
		if code != 200 || decodeResult(t, body).Items[0].Changed {
			t.Errorf("replayed descriptor: %d %s", code, body)
		}
		code, body, _ = h.do("POST", "/api/v1/reconcilers", reconcilerJSON)
		if code != 200 || decodeResult(t, body).Items[0].Changed {
			t.Errorf("replayed reconciler: %d %s", code, body)
		}
		hts, _, err := reports.New(st).HostState(context.Background(), reports.Filter{}, reports.Page{})
		if err != nil || len(hts) != 1 || hts[0].Version != "0.0.1" || hts[0].Status != "success" {
			t.Errorf("host targets = %+v, %v", hts, err)
		}
		// Retire through the API.
		if code, body, _ := h.do("DELETE", "/api/v1/hosts/kalypso-rg-flux/reconcilers/kalypso-rg-flux-hello-world", ""); code != 204 {
			t.Errorf("DELETE: %d %s", code, body)
		}
		if code, _, _ := h.do("DELETE", "/api/v1/hosts/kalypso-rg-flux/reconcilers/kalypso-rg-flux-hello-world", ""); code != 404 {
			t.Errorf("second DELETE: %d, want 404", code)
		}
	})
}

func TestInvalidInputIsProblemJSONAndWritesNothing(t *testing.T) {
	testenv.EachStore(t, testInvalidInput)
}

func testInvalidInput(t *testing.T, st *store.Store) {
	h := newHub(t, st)
	bad := strings.Replace(reconcilerJSON, `"status": "success"`, `"status": "done"`, 1)
	cases := []struct {
		name, path, body string
		status           int
		fields           []string
	}{
		{"bad status in a list", "/api/v1/reconcilers", "[" + reconcilerJSON + "," + bad + "]", 422, []string{"items[1].spec.deployment.status"}},
		{"missing fields", "/api/v1/deploymentdescriptors", `{"kind":"DeploymentDescriptor","spec":{}}`, 422,
			[]string{"spec.workload.name", "spec.deploymentTarget.manifests.repo", "spec.workloadVersion.version"}},
		{"wrong kind", "/api/v1/reconcilers", descriptorJSON, 422, []string{"kind"}},
		{"wrong apiVersion", "/api/v1/reconcilers", strings.Replace(reconcilerJSON, "v1alpha1", "v9", 1), 422, []string{"apiVersion"}},
		{"wrong type", "/api/v1/deploymentdescriptors", strings.Replace(descriptorJSON, `"version": "0.0.1"`, `"version": 1.5`, 1), 422, []string{"spec.workloadVersion.version"}},
		{"not JSON", "/api/v1/reconcilers", "hostName: x", 400, nil},
		{"empty", "/api/v1/reconcilers", "", 400, nil},
		{"ARG with both identities", "/api/v1/azureresourcegraphs", `{"kind":"AzureResourceGraph","metadata":{"name":"a"},"spec":{"tenant":"t","subscription":"s","managedIdentity":"m","secretRef":"s","interval":"1s"}}`, 422,
			[]string{"spec.secretRef", "spec.interval"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, hdr := h.do("POST", c.path, c.body)
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var p api.Problem
			if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != c.status || p.Title == "" {
				t.Fatalf("problem %q: %v", body, err)
			}
			for _, f := range c.fields {
				found := false
				for _, e := range p.Errors {
					found = found || e.Field == f
				}
				if !found {
					t.Errorf("problem does not name field %s: %s", f, body)
				}
			}
		})
	}
	for _, tbl := range []string{"hosts", "reconcilers", "deployments", "workspaces", "azure_resource_graphs"} {
		if n := h.count(tbl); n != 0 {
			t.Errorf("%s has %d rows after rejected requests", tbl, n)
		}
	}
}

func TestConflictIs409(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		h := newHub(t, st)
		if code, body, _ := h.do("POST", "/api/v1/deploymentdescriptors", descriptorJSON); code != 200 {
			t.Fatal(code, body)
		}
		rebuilt := strings.Replace(descriptorJSON, `"build": "build-1"`, `"build": "build-2"`, 1)
		code, body, _ := h.do("POST", "/api/v1/deploymentdescriptors", rebuilt)
		if code != 409 || !strings.Contains(body, "spec.workloadVersion.build") {
			t.Errorf("re-published version: %d %s", code, body)
		}
	})
}

func TestBodyLimit(t *testing.T) {
	h := newHub(t, testenv.NewStore(t, "sqlite"))
	big := "[" + strings.Repeat(reconcilerJSON+",", api.MaxBodyBytes/len(reconcilerJSON)+1) + reconcilerJSON + "]"
	code, body, _ := h.do("POST", "/api/v1/reconcilers", big)
	if code != 413 {
		t.Errorf("oversized body: %d %.200s", code, body)
	}
}

func TestHealth(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := newHub(t, st)
	if code, _, _ := h.do("GET", "/healthz", ""); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, body, _ := h.do("GET", "/readyz", ""); code != 200 || !strings.Contains(body, "sqlite") || strings.Contains(body, "timeTravelWaiting") {
		t.Errorf("readyz %d %s", code, body)
	}
	// Once the rebuild has counted the endpoints waiting for their
	// time-travel snapshots, readiness shows how many.
	if code, body, _ := h.do("POST", "/api/v1/reconcilers", reconcilerJSON); code >= 300 {
		t.Fatalf("push a reconciler: %d %s", code, body)
	}
	if err := store.MarkAllSeriesDirty(context.Background(), st.Primary()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RebuildSeries(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := h.do("GET", "/readyz", ""); code != 200 || !strings.Contains(body, `"timeTravelWaiting": 1`) {
		t.Errorf("readyz with an endpoint waiting: %d %s", code, body)
	}
	st.Close()
	if code, body, _ := h.do("GET", "/readyz", ""); code != 503 {
		t.Errorf("readyz with the store closed: %d %s", code, body)
	}
}
