package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// readyzBody is /readyz's JSON.
type readyzBody struct {
	Status   string `json:"status"`
	Store    string `json:"store"`
	Replicas []struct {
		Name       string   `json:"name"`
		Healthy    bool     `json:"healthy"`
		LagSeconds *float64 `json:"lagSeconds"`
		Error      string   `json:"error"`
		Reads      uint64   `json:"reads"`
	} `json:"replicas"`
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %d %s: %v", url, resp.StatusCode, body, err)
	}
	return resp.StatusCode
}

// TestServeReadReplica runs `tidemark serve` over PostgreSQL with a real
// streaming replica, as --read-database: /readyz lists it with its lag,
// reports read from it (they miss a write it has not replayed), and once
// it lags beyond --max-replica-lag, /readyz shows the lag and reports read
// from the primary again.
func TestServeReadReplica(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	db := pg.NewDatabase(t)
	replica := pg.StartReplica(t)
	addr := loopbackAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var errOut strings.Builder
	go func() {
		done <- run(ctx, []string{"serve", "--addr", addr, "--database", db,
			"--read-database", replica.DatabaseURL(db), "--max-replica-lag", "1s", "--replica-check-interval", "50ms",
			"--history-retention", "400d", "--log-level", "warn"}, strings.NewReader(""), io.Discard, &errOut)
	}()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			select {
			case code := <-done:
				t.Fatalf("tidemark serve exited with %d while waiting for %s:\n%s", code, what, errOut.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 30s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var ready readyzBody
	wait("a healthy replica in /readyz", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return getJSON(t, base+"/readyz", &ready) == http.StatusOK && len(ready.Replicas) == 1 && ready.Replicas[0].Healthy
	})
	if r := ready.Replicas[0]; ready.Store != "postgres" || r.LagSeconds == nil || !strings.HasPrefix(r.Name, "127.0.0.1:") {
		t.Errorf("/readyz: %+v; want postgres with one replica named host:port/database, with its lag", ready)
	}

	loadFleet(t, base)
	replica.WaitReplayed(t)
	hostState := func(host string) string {
		t.Helper()
		var page struct {
			Items []struct {
				Status string `json:"status"`
			} `json:"items"`
		}
		if code := getJSON(t, base+"/api/v1/reports/host-state?host="+host, &page); code != http.StatusOK || len(page.Items) != 1 {
			t.Fatalf("host-state of %s: %d, %d rows", host, code, len(page.Items))
		}
		return page.Items[0].Status
	}
	wait("dev-3's failure on the replica", func() bool { return hostState("dev-3") == "failure" })

	// Replay paused: a new report is on the primary only; reports miss it.
	replica.PauseReplay(t)
	mustPush(t, base, "/api/v1/reconcilers", fleetReport("dev-3", "dev", fleetSHA(2), "success", "ready"))
	if got := hostState("dev-3"); got != "failure" {
		t.Errorf("host-state while the replica's replay is paused: %s, want failure (read from the replica)", got)
	}
	getJSON(t, base+"/readyz", &ready)
	if ready.Replicas[0].Reads == 0 {
		t.Errorf("/readyz: %+v; want reads served by the replica", ready.Replicas[0])
	}
	// Beyond the bound: /readyz shows the lag, reports read the primary.
	wait("the lag in /readyz", func() bool {
		getJSON(t, base+"/readyz", &ready)
		r := ready.Replicas[0]
		return !r.Healthy && r.LagSeconds != nil && *r.LagSeconds > 1
	})
	t.Logf("/readyz with replay paused: %+v (lag %.3fs)", ready.Replicas[0], *ready.Replicas[0].LagSeconds)
	if got := hostState("dev-3"); got != "success" {
		t.Errorf("host-state with the replica lagging: %s, want success (read from the primary)", got)
	}
	replica.ResumeReplay(t)
	wait("the replica healthy again", func() bool {
		getJSON(t, base+"/readyz", &ready)
		return ready.Replicas[0].Healthy
	})

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("tidemark serve exited with %d, want 0:\n%s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tidemark serve did not stop in 30s")
	}
}

func TestServeScaleFlagErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tidemark.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--read-database", "postgres://db-replica/tidemark"}, "read replicas need a PostgreSQL --database"},
		{[]string{"--history-retention", "a year"}, `"a year": give a positive number of days (400d)`},
		{[]string{"--history-retention", "-5d"}, "give a positive number"},
	} {
		code, _, errOut := runCLI(t, "", append([]string{"serve", "--database", db, "--addr", "127.0.0.1:0"}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("serve %q: exit %d, stderr %q; want an error containing %q", tc.args, code, errOut, tc.want)
		}
	}
	t.Setenv("TIDEMARK_HISTORY_RETENTION", "forever")
	code, _, errOut := runCLI(t, "", "serve", "--database", db, "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "TIDEMARK_HISTORY_RETENTION") {
		t.Errorf("serve with TIDEMARK_HISTORY_RETENTION=forever: exit %d, stderr %q; want an error naming the variable", code, errOut)
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "": 0, "400d": 400 * 24 * time.Hour, "9600h": 9600 * time.Hour, " 30d ": 30 * 24 * time.Hour,
	} {
		if got, err := parseRetention(in); err != nil || got != want {
			t.Errorf("parseRetention(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"1y", "d", "-1h", "12", "99999999999d"} {
		if _, err := parseRetention(in); err == nil {
			t.Errorf("parseRetention(%q) accepted", in)
		}
	}
}

func TestSplitURLs(t *testing.T) {
	got := splitURLs([]string{
		"postgres://u@r1/db,postgresql://u@r2/db",
		"postgres://u@h1,h2,h3/db?target_session_attrs=any", // one URL, several hosts
		" ",
	})
	want := []string{"postgres://u@r1/db", "postgresql://u@r2/db", "postgres://u@h1,h2,h3/db?target_session_attrs=any"}
	if !slices.Equal(got, want) {
		t.Errorf("splitURLs = %q, want %q", got, want)
	}
}
