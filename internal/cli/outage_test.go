package cli

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// While the hub's PostgreSQL is down, the hub answers 503 with
// Retry-After; apply and get wait and retry, wait keeps polling, and all
// three finish once PostgreSQL is back.
func TestClientsRetryWhileTheStoreIsDown(t *testing.T) {
	// A server of its own: this test stops it.
	pg, err := testenv.StartPostgres()
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(pg.Stop)
	st := testenv.OpenStore(t, "postgres", pg.NewDatabase(t))
	url := startHub(t, st)
	mustPush(t, url, "/api/v1/deploymentdescriptors", fleetDescriptor("dev", "main", "1.0.0", fleetSHA(1)))

	pg.Halt()
	type result struct {
		code        int
		out, errOut string
	}
	var (
		wg      sync.WaitGroup
		results = map[string]result{}
		mu      sync.Mutex
	)
	run := func(name, stdin string, args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errOut := runCLI(t, stdin, args...)
			mu.Lock()
			results[name] = result{code, out, errOut}
			mu.Unlock()
		}()
	}
	run("apply", kubectlList(4), "apply", "--server", url, "-f", "-", "--retry-unavailable", "2m")
	run("get", "", "get", "hosts", "--server", url, "--retry-unavailable", "2m")
	run("wait", "", "wait", "--server", url, "--target", "drone", "--version", "1.0.0", "--timeout", "2m", "--interval", "200ms")
	time.Sleep(3 * time.Second) // every client has met the outage
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	retried := "the hub answered 503 Store unavailable: retrying in 5s"
	for name, want := range map[string]struct{ out, errOut string }{
		"apply": {"reconciler/drone-3 configured", retried},
		"get":   {"HOST", retried},
		"wait":  {"waiting: Store unavailable", ""},
	} {
		r := results[name]
		if r.code != 0 || !strings.Contains(r.out, want.out) || !strings.Contains(r.errOut, want.errOut) {
			t.Errorf("%s: exit %d\n%s\n%s", name, r.code, r.out, r.errOut)
		}
	}
	if !strings.Contains(results["wait"].out, "reached success on all 4 hosts") {
		t.Errorf("wait did not see the reconcilers apply stored:\n%s", results["wait"].out)
	}

	// Without retries, apply fails at once and says nothing was stored.
	pg.Halt()
	code, _, errOut := runCLI(t, kubectlList(1), "apply", "--server", url, "-f", "-", "--retry-unavailable", "0")
	want := "nothing was stored; resource 1 failed (nothing of them was stored): Store unavailable"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("apply without retries: exit %d: %s", code, errOut)
	}
}
