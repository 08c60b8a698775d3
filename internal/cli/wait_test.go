package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// waitHub is a hub with dev's drone target at 1.0.0 on three hosts and
// 1.1.0 just assigned (commit 2), its hosts not reporting it yet.
func waitHub(t *testing.T) string {
	st := testenv.NewStore(t, "sqlite")
	url := startHub(t, st)
	mustPush(t, url, "/api/v1/deploymentdescriptors", fleetDescriptor("dev", "dev", "1.0.0", fleetSHA(1)))
	mustPush(t, url, "/api/v1/reconcilers",
		fleetReport("dev-1", "dev", fleetSHA(1), "success", "ready"),
		fleetReport("dev-2", "dev", fleetSHA(1), "success", "ready"),
		fleetReport("dev-3", "dev", fleetSHA(1), "success", "ready"))
	mustPush(t, url, "/api/v1/deploymentdescriptors", fleetDescriptor("dev", "dev", "1.1.0", fleetSHA(2)))
	return url
}

// feed sends batches of reports, one every step, from a goroutine.
func feed(t *testing.T, url string, step time.Duration, batches ...[]map[string]any) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range batches {
			time.Sleep(step)
			if err := push(url, "", "/api/v1/reconcilers", b...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return done
}

func TestWaitSucceeds(t *testing.T) {
	url := waitHub(t)
	c2 := fleetSHA(2)
	done := feed(t, url, 300*time.Millisecond,
		[]map[string]any{fleetReport("dev-1", "dev", c2, "in_progress", "applying")},
		[]map[string]any{fleetReport("dev-1", "dev", c2, "success", "ready"), fleetReport("dev-2", "dev", c2, "in_progress", "applying")},
		[]map[string]any{fleetReport("dev-2", "dev", c2, "success", "ready"), fleetReport("dev-3", "dev", c2, "success", "ready")},
	)
	code, out, errOut := runCLI(t, "", "wait", "--server", url, "--target", "drone", "--environment", "dev",
		"--version", "1.1.0", "--timeout", "20s", "--interval", "20ms")
	<-done
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "waiting for 1.1.0 ("+c2[:7]+") on drone (acme/shop/api in dev): 3 hosts") {
		t.Errorf("first line %q", lines[0])
	}
	for _, want := range []string{
		"0/3 hosts succeeded · 0 in progress · 3 pending",
		"0/3 hosts succeeded · 1 in progress · 2 pending",
		"1/3 hosts succeeded · 1 in progress · 1 pending",
		"3/3 hosts succeeded · 0 in progress · 0 pending",
	} {
		if n := strings.Count(out, want+"\n"); n != 1 {
			t.Errorf("%q printed %d times, want once (lines are printed when they change):\n%s", want, n, out)
		}
	}
	if last := lines[len(lines)-1]; last != "1.1.0 ("+c2[:7]+") reached success on all 3 hosts of drone" {
		t.Errorf("last line %q", last)
	}
}

// A host that runs the version from a later commit of its branch (another
// target's change) counts as succeeded, and the last line names that
// commit, which is the one Host State shows.
func TestWaitNamesLaterCommits(t *testing.T) {
	url := waitHub(t)
	c2, c3 := fleetSHA(2), "c0ffee3"+fleetSHA(3)[7:] // short SHAs that differ
	other := fleetDescriptor("dev", "dev", "7.0.0", c3)
	other["metadata"] = map[string]any{"name": "api-other-dev"}
	other["spec"].(map[string]any)["deploymentTarget"] = map[string]any{"name": "other", "environment": "dev",
		"manifests": map[string]any{"repo": fleetRepo, "branch": "dev", "path": "other"}}
	mustPush(t, url, "/api/v1/deploymentdescriptors", other)
	mustPush(t, url, "/api/v1/reconcilers",
		fleetReport("dev-1", "dev", c2, "success", "ready"),
		fleetReport("dev-2", "dev", c3, "success", "ready"),
		fleetReport("dev-3", "dev", c3, "success", "ready"))
	code, out, errOut := runCLI(t, "", "wait", "--server", url, "--target", "drone", "--environment", "dev",
		"--version", "1.1.0", "--timeout", "5s", "--interval", "20ms")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || lines[len(lines)-2] != "1.1.0 ("+c2[:7]+") reached success on all 3 hosts of drone" ||
		lines[len(lines)-1] != "2 of 3 hosts run it from a later GitOps commit of the branch, as Host State shows: "+c3[:7] {
		t.Errorf("last lines:\n%s", out)
	}
}

func TestWaitFails(t *testing.T) {
	url := waitHub(t)
	c2 := fleetSHA(2)
	done := feed(t, url, 100*time.Millisecond,
		[]map[string]any{fleetReport("dev-1", "dev", c2, "success", "ready"), fleetReport("dev-2", "dev", c2, "failure", "health check failed:\n  ImagePullBackOff")},
	)
	code, out, errOut := runCLI(t, "", "wait", "--server", url, "--target", "drone", "--commit", c2[:8], "--timeout", "20s", "--interval", "20ms")
	<-done
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "1/3 hosts succeeded · 1 failed · 0 in progress · 1 pending\n") ||
		tableRow(out, "dev-2", "api", "1.1.0", c2[:7]) == nil || !strings.Contains(out, "health check failed: ImagePullBackOff") ||
		!strings.Contains(errOut, "1 of 3 hosts failed") {
		t.Errorf("output:\n%s\n%s", out, errOut)
	}
}

func TestWaitTimesOut(t *testing.T) {
	url := waitHub(t)
	start := time.Now()
	code, out, errOut := runCLI(t, "", "wait", "--server", url, "--target", "drone", "--version", "1.1.0", "--timeout", "300ms", "--interval", "50ms")
	if code != 2 || strings.Count(out, "0/3 hosts succeeded") != 1 || !strings.Contains(errOut, "timed out after 300ms") {
		t.Errorf("exit %d, want 2\n%s\n%s", code, out, errOut)
	}
	// It names the hosts it was still waiting for, with what they run.
	if !strings.Contains(out, "PENDING HOST") || strings.Count(out, "\ndev-") != 3 || tableRow(out, "dev-3", "api", "1.0.0", fleetSHA(1)[:7]) == nil {
		t.Errorf("the pending hosts are not listed with the version they run:\n%s", out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("wait --timeout 300ms took %s", d)
	}
	// A version the hub does not know yet is waited for, then times out.
	code, out, _ = runCLI(t, "", "wait", "--server", url, "--target", "drone", "--version", "9.9.9", "--timeout", "200ms", "--interval", "50ms")
	if code != 2 || !strings.Contains(out, "waiting: No such rollout") {
		t.Errorf("unknown version: exit %d\n%s", code, out)
	}
}

func TestWaitErrors(t *testing.T) {
	url := waitHub(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "drone"}, "give --version or --commit"},
		{[]string{"--version", "1"}, "give --target or --endpoint"},
		{[]string{"--target", "drone", "--version", "1", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"--target", "drone", "--version", "1", "extra"}, "wait takes no arguments"},
		{[]string{"--target", "drone", "--version", "1", "--timeout", "0s"}, "must be positive"},
		{[]string{"--target", "drone", "--version", "1.1.0", "--server", "http://127.0.0.1:1", "--timeout", "300ms", "--interval", "50ms"}, "the hub did not answer in 300ms"},
	} {
		code, _, errOut := runCLI(t, "", append([]string{"wait", "--server", url}, c.args...)...)
		if code != 3 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want 3 and %q: %s", c.args, code, c.want, errOut)
		}
	}
}

// Answers 5xx and dropped connections are retried until the hub answers.
func TestWaitRetriesTransientErrors(t *testing.T) {
	url := waitHub(t)
	c2 := fleetSHA(2)
	for _, h := range []string{"dev-1", "dev-2", "dev-3"} {
		mustPush(t, url, "/api/v1/reconcilers", fleetReport(h, "dev", c2, "success", "ready"))
	}
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"title": "Store unavailable", "status": 503}`))
		case 2:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		default:
			resp, err := http.Get(url + r.URL.RequestURI())
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
		}
	}))
	t.Cleanup(flaky.Close)
	code, out, errOut := runCLI(t, "", "wait", "--server", flaky.URL, "--target", "drone", "--version", "1.1.0", "--timeout", "10s", "--interval", "20ms")
	if code != 0 || !strings.Contains(out, "waiting: Store unavailable") || !strings.Contains(out, "3/3 hosts succeeded") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}
