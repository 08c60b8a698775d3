package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// While PostgreSQL is down, pushes and reads answer 503 with Retry-After,
// never 500; connections an administrator terminates are retried; once
// PostgreSQL is back, the same requests succeed.
func TestStoreOutageIs503(t *testing.T) {
	// A server of its own: this test stops it.
	pg, err := testenv.StartPostgres()
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(pg.Stop)
	dsn := pg.NewDatabase(t)
	st := testenv.OpenStore(t, "postgres", dsn)
	var logs bytes.Buffer
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler())
	t.Cleanup(srv.Close)
	c := newSpecClient(t, loadOpenAPI(t), srv.URL)
	h := &hub{t: t, st: st, srv: srv}
	c.do("POST", "/api/v1/deploymentdescriptors", "", []byte(descriptorJSON), 200)

	// An administrator terminates every connection of the hub: a request
	// that meets a dead pooled connection answers 503 (the pool then drops
	// it), and a retry after it succeeds.
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var terminated int
	err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&terminated)
	admin.Close(ctx)
	if err != nil || terminated == 0 {
		t.Fatalf("terminated %d connections: %v", terminated, err)
	}
	first := []byte(reconcilerOf("h1", "drone", "5ce065315cc1702b6cb4eb9d3f804413706570d8"))
	for attempt := 1; ; attempt++ {
		code, body, hdr := h.do("POST", "/api/v1/reconcilers", string(first))
		if code == 200 {
			t.Logf("push after the connections were terminated: 200 at attempt %d", attempt)
			break
		}
		if code != 503 || hdr.Get("Retry-After") == "" || attempt == terminated+1 {
			t.Fatalf("push %d after the connections were terminated: %d %s", attempt, code, body)
		}
	}

	pg.Halt()
	during := reconcilerOf("h2", "drone", "5ce065315cc1702b6cb4eb9d3f804413706570d8")
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/v1/reconcilers", during},
		{"POST", "/api/v1/apply", "[" + during + "," + descriptorJSON + "]"},
		{"POST", "/api/v1/deploymentdescriptors", descriptorJSON},
		{"POST", "/api/v1/azureresourcegraphs", `{"kind":"AzureResourceGraph","metadata":{"name":"a"},"spec":{"tenant":"t","subscription":"s","managedIdentity":"m"}}`},
		{"DELETE", "/api/v1/hosts/h1/reconcilers/kalypso-rg-flux-hello-world", ""},
		{"GET", "/api/v1/reports/environment-state", ""},
		{"GET", "/api/v1/reports/host-state?host=h1", ""},
		{"GET", "/api/v1/reports/environment-history", ""},
		{"GET", "/api/v1/reports/discrepancies", ""},
		{"GET", "/api/v1/reports/drift", ""},
		{"GET", "/api/v1/reports/dora", ""},
		{"GET", "/api/v1/rollouts?target=drone&version=0.0.1", ""},
		{"GET", "/api/v1/environments", ""},
		{"GET", "/readyz", ""},
	} {
		var body []byte
		if r.body != "" {
			body = []byte(r.body)
		}
		got := c.do(r.method, r.path, "", body, 503)
		var p api.Problem
		if err := json.Unmarshal(got, &p); err != nil || p.Type != "https://tidemark.dev/problems/unavailable" {
			t.Errorf("%s %s during the outage: %s", r.method, r.path, got)
		}
		if ra := c.lastHeader.Get("Retry-After"); ra != "5" {
			t.Errorf("%s %s during the outage: Retry-After %q, want 5", r.method, r.path, ra)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), `level=WARN msg="store unavailable"`) {
		t.Errorf("the outage is not logged as a warning:\n%s", logs.String())
	}

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	got := c.do("POST", "/api/v1/reconcilers", "", []byte(during), 200)
	if !strings.Contains(string(got), `"changed": true`) {
		t.Errorf("the push refused during the outage, sent again: %s", got)
	}
	if got := c.do("GET", "/api/v1/rollouts?target=drone&version=0.0.1", "", nil, 200); !strings.Contains(string(got), `"succeeded": 2`) {
		t.Errorf("gate after the outage: %s", got)
	}
	c.do("GET", "/readyz", "", nil, 200)
}
