package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A small fleet for the read commands: workload api of acme/shop on
// target drone in dev (hosts dev-1..3) and prod (prod-1, prod-2), from one
// GitOps repository.
const fleetRepo = "https://github.com/acme/gitops"

func fleetSHA(n int) string { return fmt.Sprintf("%040x", n) }

func fleetDescriptor(env, branch, version, commit string) map[string]any {
	return map[string]any{
		"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "DeploymentDescriptor",
		"metadata": map[string]any{"name": "api-drone-" + env + "-" + version},
		"spec": map[string]any{
			"workload": map[string]any{"name": "api", "source": map[string]any{"repo": "https://github.com/acme/api", "branch": "main", "path": "."},
				"application": map[string]any{"name": "shop", "workspace": map[string]any{"name": "acme"}}},
			"deploymentTarget": map[string]any{"name": "drone", "environment": env,
				"manifests": map[string]any{"repo": fleetRepo, "branch": branch, "path": "drone"}},
			"workloadVersion": map[string]any{"version": version, "build": "build-" + version, "buildTime": "2026-01-01T00:00:00Z"},
			"gitOpsCommitId":  commit,
		},
	}
}

func fleetReport(host, branch, commit, status, message string) map[string]any {
	return map[string]any{
		"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "Reconciler",
		"metadata": map[string]any{"name": "api"},
		"spec": map[string]any{"hostName": host, "type": "flux", "manifestsEndpoint": fleetRepo + "/" + branch + "/drone",
			"deployment": map[string]any{"gitOpsCommitId": commit, "status": status, "statusMessage": message}},
	}
}

// push posts documents to the hub; it returns an error rather than failing
// the test, so that goroutines can use it.
func push(url, token, path string, docs ...map[string]any) error {
	b, _ := json.Marshal(docs)
	req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, body)
	}
	return nil
}

func mustPush(t *testing.T, url, path string, docs ...map[string]any) {
	t.Helper()
	if err := push(url, "", path, docs...); err != nil {
		t.Fatal(err)
	}
}

// loadFleet stores the fleet: dev at 1.1.0 on two hosts of three (dev-3
// failed), prod at 1.0.0 on both hosts.
func loadFleet(t *testing.T, url string) {
	t.Helper()
	mustPush(t, url, "/api/v1/deploymentdescriptors",
		fleetDescriptor("dev", "dev", "1.0.0", fleetSHA(1)),
		fleetDescriptor("prod", "main", "1.0.0", fleetSHA(3)))
	mustPush(t, url, "/api/v1/reconcilers",
		fleetReport("dev-1", "dev", fleetSHA(1), "success", "ready"),
		fleetReport("dev-2", "dev", fleetSHA(1), "success", "ready"),
		fleetReport("dev-3", "dev", fleetSHA(1), "success", "ready"),
		fleetReport("prod-1", "main", fleetSHA(3), "success", "ready"),
		fleetReport("prod-2", "main", fleetSHA(3), "success", "ready"))
	mustPush(t, url, "/api/v1/deploymentdescriptors", fleetDescriptor("dev", "dev", "1.1.0", fleetSHA(2)))
	mustPush(t, url, "/api/v1/reconcilers",
		fleetReport("dev-1", "dev", fleetSHA(2), "success", "ready"),
		fleetReport("dev-2", "dev", fleetSHA(2), "success", "ready"),
		fleetReport("dev-3", "dev", fleetSHA(2), "failure", "ImagePullBackOff"))
}

// tableRow finds the line of a table whose fields start with prefix
// (fields separated by runs of spaces).
func tableRow(out string, prefix ...string) []string {
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(prefix) && reflect.DeepEqual(f[:len(prefix)], prefix) {
			return f
		}
	}
	return nil
}

func TestGetTables(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		url := startHub(t, st)
		loadFleet(t, url)
		get := getter(t, url)

		out := get("environments")
		if !strings.HasPrefix(out, "ENVIRONMENT  WORKSPACE  APPLICATION  WORKLOAD  TARGET  SCHEDULED  DEPLOYED  STATUS   HOSTS\n") {
			t.Errorf("environments: header:\n%s", out)
		}
		for _, want := range [][]string{
			{"dev", "acme", "shop", "api", "drone", "1.1.0", "1.1.0", "success", "2"},
			{"1.1.0", "failure", "1"}, // the same target's second row
			{"prod", "acme", "shop", "api", "drone", "1.0.0", "1.0.0", "success", "2"},
		} {
			if tableRow(out, want...) == nil {
				t.Errorf("environments: no row %v:\n%s", want, out)
			}
		}

		out = get("targets", "--environment", "dev")
		if r := tableRow(out, "dev", "acme", "shop", "api", "drone", "1.1.0", fleetSHA(2)[:7]); r == nil || !strings.Contains(out, "2/3") ||
			!strings.Contains(out, "1.1.0 success 2, 1.1.0 failure 1") || strings.Contains(out, "prod") {
			t.Errorf("targets --environment dev:\n%s", out)
		}

		out = get("hosts", "--status", "failure")
		if tableRow(out, "dev-3", "dev", "acme", "shop", "api", "drone", "1.1.0", fleetSHA(2)[:7], "failure") == nil || strings.Count(out, "\n") != 2 {
			t.Errorf("hosts --status failure:\n%s", out)
		}

		out = get("history", "--environment", "dev")
		if tableRow(out, "dev", "acme", "shop", "api", "drone", "1.1.0", fleetSHA(2)[:7]) == nil ||
			tableRow(out, "dev", "acme", "shop", "api", "drone", "1.0.0", fleetSHA(1)[:7]) == nil {
			t.Errorf("history:\n%s", out)
		}

		out = get("discrepancies", "--order", "prod,dev")
		if !strings.Contains(out, "PROD") || strings.Index(out, "PROD") > strings.Index(out, "DEV") ||
			tableRow(out, "acme", "shop", "api", "1.0.0", "(2)", "1.1.0", "(3)", "yes") == nil {
			t.Errorf("discrepancies --order prod,dev:\n%s", out)
		}

		out = get("drift")
		if tableRow(out, "failed", "dev", "acme", "shop", "api", "drone", "dev-3") == nil {
			t.Errorf("drift:\n%s", out)
		}
		out = get("dora", "--since", "720h")
		if tableRow(out, "dev", "acme", "shop", "api") == nil || !strings.HasPrefix(out, "ENVIRONMENT") {
			t.Errorf("dora:\n%s", out)
		}

		// An empty table says so on stderr; stdout keeps the header alone.
		code, out, errOut := runCLI(t, "", "get", "--server", url, "drift", "--host", "no-such-host")
		if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "no drift rows match the filters") {
			t.Errorf("drift of an unknown host: exit %d\n%s%s", code, out, errOut)
		}

		code, _, errOut = runCLI(t, "", "get", "--server", url, "hosts", "--order", "dev")
		if code == 0 || !strings.Contains(errOut, "--order does not apply to hosts") {
			t.Errorf("--order on hosts: exit %d %s", code, errOut)
		}
		code, _, errOut = runCLI(t, "", "get", "--server", url, "everything")
		if code == 0 || !strings.Contains(errOut, `unknown report "everything"`) {
			t.Errorf("unknown report: exit %d %s", code, errOut)
		}
		code, _, errOut = runCLI(t, "", "get", "--server", url, "hosts", "--status", "done")
		if code == 0 || !strings.Contains(errOut, "status") {
			t.Errorf("--status done: exit %d %s", code, errOut)
		}
	})
}

// -o json and -o yaml print what the API answers, every page of it.
func TestGetJSONAndYAMLRoundTrip(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	url := startHub(t, st)
	loadFleet(t, url)

	var api struct {
		Items []reports.HostStateRow `json:"items"`
	}
	resp, err := http.Get(url + "/api/v1/reports/host-state")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if len(api.Items) != 5 {
		t.Fatalf("the API answered %d hosts, want 5", len(api.Items))
	}

	defer func(n int) { getPageSize = n }(getPageSize)
	getPageSize = 2 // three pages
	for _, format := range []string{"json", "yaml"} {
		code, out, errOut := runCLI(t, "", "get", "hosts", "--server", url, "-o", format)
		if code != 0 {
			t.Fatalf("-o %s: exit %d %s", format, code, errOut)
		}
		var got struct {
			Items []reports.HostStateRow `json:"items"`
		}
		if err := yaml.Unmarshal([]byte(out), &got); err != nil { // YAML is a superset of JSON
			t.Fatalf("-o %s: %v\n%s", format, err, out)
		}
		if !reflect.DeepEqual(got.Items, api.Items) {
			t.Errorf("-o %s does not round-trip:\n%+v\nwant\n%+v", format, got.Items, api.Items)
		}
	}
	code, out, _ := runCLI(t, "", "get", "hosts", "--server", url, "-o", "json", "--limit", "3")
	var limited struct{ Items []json.RawMessage }
	if code != 0 || json.Unmarshal([]byte(out), &limited) != nil || len(limited.Items) != 3 {
		t.Errorf("--limit 3: exit %d, %d items", code, len(limited.Items))
	}

	// Discrepancies keep their environments.
	code, out, _ = runCLI(t, "", "get", "discrepancies", "--server", url, "-o", "json", "--order", "prod,dev")
	var d reports.Discrepancies
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || !reflect.DeepEqual(d.Environments, []string{"prod", "dev"}) || len(d.Items) != 1 {
		t.Errorf("discrepancies -o json: exit %d\n%s", code, out)
	}
}

func TestParseTimeFlag(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-01-02T15:04:05Z": time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		"36h":                  now.Add(-36 * time.Hour),
	} {
		if got, err := reports.ParseTime(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := reports.ParseTime("yesterday", now); err == nil {
		t.Error("yesterday was accepted")
	}
	for d, want := range map[time.Duration]string{42 * time.Second: "42s", 3*time.Minute + 5*time.Second: "3m05s",
		26*time.Hour + 3*time.Minute: "26h03m", 75 * time.Hour: "3d03h"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

// A host registered but not reported yet prints no version ("-"), not an
// unknown one: it runs nothing the hub knows of.
func TestGetNotReportedHost(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		url := startHub(t, st)
		loadFleet(t, url)
		registered := fleetReport("prod-3", "main", "", "", "")
		delete(registered["spec"].(map[string]any), "deployment")
		mustPush(t, url, "/api/v1/reconcilers", registered)
		get := getter(t, url)
		if out := get("targets", "--environment", "prod"); !strings.Contains(out, "1.0.0 success 2, - not_reported 1") || strings.Contains(out, "<unknown>") {
			t.Errorf("targets --environment prod:\n%s", out)
		}
		if out := get("hosts", "--host", "prod-3"); tableRow(out, "prod-3", "prod", "acme", "shop", "api", "drone", "-") == nil {
			t.Errorf("hosts --host prod-3:\n%s", out)
		}
	})
}

// getter runs `tidemark get` against the hub at url and returns its
// output, failing the test when it exits non-zero.
func getter(t *testing.T, url string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", append([]string{"get", "--server", url}, args...)...)
		if code != 0 {
			t.Fatalf("get %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
}

// --at reads the fleet as it was: before dev-3 reported 1.1.0 (failing),
// all three dev hosts ran 1.0.0 successfully.
func TestGetAt(t *testing.T) {
	url := waitHub(t)
	then := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	mustPush(t, url, "/api/v1/reconcilers", fleetReport("dev-3", "dev", fleetSHA(2), "failure", "ImagePullBackOff"))
	get := getter(t, url)

	at := then.Format(time.RFC3339Nano)
	if out := get("environments", "--at", at); tableRow(out, "dev", "acme", "shop", "api", "drone", "1.1.0", "1.0.0", "success", "3") == nil {
		t.Errorf("environments --at %s:\n%s", at, out)
	}
	if out := get("environments"); tableRow(out, "dev", "acme", "shop", "api", "drone", "1.1.0", "1.0.0", "success", "2") == nil {
		t.Errorf("environments now:\n%s", out)
	}
	if out := get("hosts", "--at", at, "--status", "success"); strings.Count(out, "\n") != 4 || tableRow(out, "dev-3", "dev", "acme", "shop", "api", "drone", "1.0.0") == nil {
		t.Errorf("hosts --at %s --status success:\n%s", at, out)
	}
	code, _, errOut := runCLI(t, "", "get", "--server", url, "history", "--at", at)
	if code == 0 || !strings.Contains(errOut, "--at applies to environments, targets and hosts, not history") {
		t.Errorf("--at on history: exit %d %s", code, errOut)
	}
}
