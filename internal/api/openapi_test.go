package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// servedRoutes are the patterns Handler registers. The test checks that
// this table equals both the patterns in server.go and the operations of
// openapi.yaml: a route added to one of them must be added to the others.
var servedRoutes = []string{
	"GET /healthz",
	"GET /readyz",
	"GET /api/v1/openapi.yaml",
	"POST /api/v1/apply",
	"POST /api/v1/deploymentdescriptors",
	"POST /api/v1/reconcilers",
	"DELETE /api/v1/hosts/{host}/reconcilers/{name}",
	"POST /api/v1/azureresourcegraphs",
	"DELETE /api/v1/azureresourcegraphs/{name}",
	"POST /api/v1/deployments",
	"POST /api/v1/reconcilers/retire-missing",
	"GET /api/v1/reports/environment-state",
	"GET /api/v1/reports/host-state",
	"GET /api/v1/reports/environment-history",
	"GET /api/v1/reports/discrepancies",
	"GET /api/v1/reports/drift",
	"GET /api/v1/reports/dora",
	"GET /api/v1/rollouts",
	"GET /api/v1/environments",
	"GET /api/v1/search",
	"GET /api/v1/compare",
	"GET /api/v1/reports/environment-state-at",
	"GET /api/v1/reports/host-state-at",
	"GET /metrics",
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// documentedRoutes lists the document's operations as ServeMux patterns.
func documentedRoutes(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

// handlerPatterns reads the patterns registered in server.go's Handler:
// every call in it whose first argument is a string "METHOD /path".
func handlerPatterns(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "server.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	pattern := regexp.MustCompile(`^[A-Z]+ /`)
	var out []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "Handler" {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && pattern.MatchString(s) {
					out = append(out, s)
				}
			}
			return true
		})
	}
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	for route, op := range documentedRoutes(doc) {
		open := op.Security != nil && len(*op.Security) == 0
		scope, _ := op.Extensions["x-required-scope"].(string)
		switch {
		case open && scope != "":
			t.Errorf("%s: open (security: []) but x-required-scope %q", route, scope)
		case !open && scope != "read" && scope != "write":
			t.Errorf("%s: x-required-scope %q: want read or write", route, scope)
		case !open && (op.Responses.Status(401) == nil || op.Responses.Status(403) == nil):
			t.Errorf("%s: needs a token but documents no 401 and 403", route)
		}
	}
}

func TestOpenAPIRoutesMatchServer(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := slices.Sorted(maps.Keys(documentedRoutes(doc)))
	table := slices.Sorted(slices.Values(servedRoutes))
	if !slices.Equal(documented, table) {
		t.Errorf("openapi.yaml operations\n  %s\ndiffer from the served routes\n  %s", strings.Join(documented, "\n  "), strings.Join(table, "\n  "))
	}
	inSource := slices.Sorted(slices.Values(handlerPatterns(t)))
	if !slices.Equal(inSource, table) {
		t.Errorf("server.go registers\n  %s\nbut the test's table lists\n  %s", strings.Join(inSource, "\n  "), strings.Join(table, "\n  "))
	}

	// Every documented operation is routed: the mux answers neither its
	// own 404 (text/plain) nor 405. Handlers' 404s are problems.
	st := testenv.NewStore(t, "sqlite")
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{}).Handler())
	t.Cleanup(srv.Close)
	for _, route := range documented {
		method, path, _ := strings.Cut(route, " ")
		path = strings.NewReplacer("{host}", "h", "{name}", "r").Replace(path)
		resp, body := authRequest(t, method, srv.URL+path, "", "")
		if resp.StatusCode == http.StatusMethodNotAllowed ||
			(resp.StatusCode == http.StatusNotFound && resp.Header.Get("Content-Type") != "application/problem+json") {
			t.Errorf("%s is documented but not routed: %d %s", route, resp.StatusCode, body)
		}
	}
}

// The scope each operation documents is the scope the hub enforces.
func TestOpenAPIScopesMatchServer(t *testing.T) {
	doc := loadOpenAPI(t)
	st := testenv.NewStore(t, "sqlite")
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{Auth: staticTokens(t)}).Handler())
	t.Cleanup(srv.Close)
	for route, op := range documentedRoutes(doc) {
		method, path, _ := strings.Cut(route, " ")
		path = strings.NewReplacer("{host}", "h", "{name}", "r").Replace(path)
		scope, _ := op.Extensions["x-required-scope"].(string)
		for _, c := range []struct {
			token string
			grant bool
		}{{"", scope == ""}, {readToken, scope != "write"}, {writeToken, scope != "read"}} {
			resp, body := authRequest(t, method, srv.URL+path, c.token, "")
			refused := resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
			if refused == c.grant {
				t.Errorf("%s (scope %q) with token %q: %d %s", route, scope, c.token, resp.StatusCode, body)
			}
		}
	}
}

// specClient sends requests to a hub and validates each request and
// response against the document.
type specClient struct {
	t      *testing.T
	url    string
	router routers.Router
	seen   map[string]bool // "METHOD path status"
	// lastHeader is the header of the last answer.
	lastHeader http.Header
}

func newSpecClient(t *testing.T, doc *openapi3.T, url string) *specClient {
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &specClient{t: t, url: url, router: router, seen: map[string]bool{}}
}

// do sends the request and fails the test unless the status is want and
// both request and response match the document. It returns the body.
func (c *specClient) do(method, path, token string, body []byte, want int) []byte {
	c.t.Helper()
	ctx := context.Background()
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The router matches on the document's relative server: route a copy
	// of the request without the test server's host.
	local := req.Clone(ctx)
	local.URL = &url.URL{Path: req.URL.Path, RawQuery: req.URL.RawQuery}
	local.Host = ""
	route, params, err := c.router.FindRoute(local)
	if err != nil {
		c.t.Errorf("%s %s: not in openapi.yaml: %v", method, path, err)
		return nil
	}
	in := &openapi3filter.RequestValidationInput{Request: local, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if body != nil {
		local.Body = io.NopCloser(bytes.NewReader(body))
	}
	if want < 400 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			c.t.Errorf("%s %s: the request does not match openapi.yaml: %v", method, path, err)
		}
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	c.lastHeader = resp.Header
	if resp.StatusCode != want {
		c.t.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, got)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/yaml") {
		opts.ExcludeResponseBody = true // no YAML decoder; the content type is checked
	}
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(got)), Options: opts,
	})
	if err != nil {
		c.t.Errorf("%s %s: the %d response does not match openapi.yaml: %v\n%s", method, path, resp.StatusCode, err, got)
	}
	c.seen[route.Method+" "+route.Path+" "+strconv.Itoa(resp.StatusCode)] = true
	return got
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

const specRepo = "https://github.com/acme/gitops"

func specSHA(n int) string { return fmt.Sprintf("%040x", n) }

func specDescriptor(env, target, branch, version, commit string) map[string]any {
	return map[string]any{
		"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "DeploymentDescriptor",
		"metadata": map[string]any{"name": "api-" + target + "-" + env + "-" + version},
		"spec": map[string]any{
			"workload": map[string]any{"name": "api", "source": map[string]any{"repo": "https://github.com/acme/api", "branch": "main", "path": "."},
				"application": map[string]any{"name": "shop", "workspace": map[string]any{"name": "acme"}}},
			"deploymentTarget": map[string]any{"name": target, "environment": env,
				"manifests": map[string]any{"repo": specRepo, "branch": branch, "path": target}},
			"workloadVersion": map[string]any{"version": version, "build": "build-" + version, "commit": specSHA(0xb0000 + len(version)),
				"buildTime": "2026-01-01T00:00:00Z"},
			"gitOpsCommitId": commit,
		},
	}
}

func specReconciler(host, branch, path, commit, status string, observed time.Time) map[string]any {
	return map[string]any{
		"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "Reconciler",
		"metadata": map[string]any{"name": "api"},
		"spec": map[string]any{"hostName": host, "type": "flux", "manifestsEndpoint": specRepo + "/" + branch + "/" + path,
			"manifestsStorageType": "git",
			"deployment": map[string]any{"gitOpsCommitId": commit, "status": status, "statusMessage": "reported " + status,
				"observedAt": observed.UTC().Format(time.RFC3339)}},
	}
}

// Every operation's answers, successes and problems, match the document.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{Auth: staticTokens(t), Metrics: metrics.New(metrics.NewRegistry())}).Handler())
		t.Cleanup(srv.Close)
		c := newSpecClient(t, doc, srv.URL)
		now := time.Now().Add(-time.Minute)

		// The desired state, in the three body forms: one document, an
		// array, a List. dev's commit 1 assigns two targets.
		c.do("POST", "/api/v1/deploymentdescriptors", writeToken, mustJSON(specDescriptor("dev", "drone", "dev", "1.0.0", specSHA(1))), 200)
		c.do("POST", "/api/v1/deploymentdescriptors", writeToken, mustJSON([]any{
			specDescriptor("dev", "idle", "dev", "1.0.0", specSHA(1)),
			specDescriptor("dev", "drone", "dev", "1.1.0", specSHA(2)),
		}), 200)
		c.do("POST", "/api/v1/deploymentdescriptors", writeToken, mustJSON(map[string]any{
			"apiVersion": "v1", "kind": "List", "items": []any{specDescriptor("prod", "drone", "main", "1.0.0", specSHA(3))},
		}), 200)
		// A descriptor whose commit is not known yet.
		pending := specDescriptor("prod", "edge", "main", "1.0.0", "")
		delete(pending["spec"].(map[string]any), "gitOpsCommitId")
		c.do("POST", "/api/v1/deploymentdescriptors", writeToken, mustJSON(pending), 200)

		// The real state: success, in progress, failure, an unknown
		// commit, a stale host, a reconciler of an endpoint no target has.
		c.do("POST", "/api/v1/reconcilers", writeToken, mustJSON(map[string]any{"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "ReconcilerList", "items": []any{
			specReconciler("dev-1", "dev", "drone", specSHA(2), "success", now),
			specReconciler("dev-2", "dev", "drone", "dev@sha1:"+specSHA(2), "in_progress", now),
			specReconciler("dev-3", "dev", "drone", specSHA(1), "failure", now),
			specReconciler("dev-4", "dev", "drone", specSHA(99), "success", now),
			specReconciler("prod-1", "main", "drone", specSHA(3), "success", now.Add(-3*time.Hour)),
		}}), 200)
		c.do("POST", "/api/v1/reconcilers", writeToken, mustJSON(specReconciler("prod-2", "main", "drone", specSHA(3), "success", now)), 200)
		c.do("POST", "/api/v1/reconcilers", writeToken, mustJSON([]any{specReconciler("dev-5", "dev", "nowhere", specSHA(2), "success", now)}), 200)
		c.do("POST", "/api/v1/azureresourcegraphs", writeToken, mustJSON(map[string]any{
			"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "AzureResourceGraph", "metadata": map[string]any{"name": "fleet"},
			"spec": map[string]any{"tenant": "00000000-0000-0000-0000-000000000001", "subscription": "00000000-0000-0000-0000-000000000002", "interval": "5m",
				"managedIdentity": "00000000-0000-0000-0000-000000000003"},
		}), 200)

		// Descriptors and reconcilers together, in one transaction.
		c.do("POST", "/api/v1/apply", writeToken, mustJSON(map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{
			specDescriptor("qa", "drone", "qa", "1.0.0", specSHA(5)),
			specReconciler("qa-1", "qa", "drone", specSHA(5), "success", now),
		}}), 200)

		// Every report, whole and page by page.
		for _, path := range []string{
			"/api/v1/reports/environment-state",
			"/api/v1/reports/host-state",
			"/api/v1/reports/environment-history",
			"/api/v1/reports/drift?staleAfter=1h",
			"/api/v1/reports/dora?since=2025-12-01T00:00:00Z&until=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)),
			"/api/v1/reports/discrepancies?order=prod,dev",
		} {
			var whole struct {
				Items      []json.RawMessage `json:"items"`
				NextCursor string            `json:"nextCursor"`
			}
			if err := json.Unmarshal(c.do("GET", path, readToken, nil, 200), &whole); err != nil || len(whole.Items) == 0 {
				t.Errorf("%s: %d items (%v)", path, len(whole.Items), err)
			}
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			pages, items := 0, 0
			for cursor := ""; pages == 0 || cursor != ""; pages++ {
				p := path + sep + "limit=1"
				if cursor != "" {
					p += "&cursor=" + url.QueryEscape(cursor)
				}
				var page struct {
					Items      []json.RawMessage `json:"items"`
					NextCursor string            `json:"nextCursor"`
				}
				if err := json.Unmarshal(c.do("GET", p, readToken, nil, 200), &page); err != nil || pages > 100 {
					t.Fatalf("%s: %v after %d pages", p, err, pages)
				}
				items += len(page.Items)
				cursor = page.NextCursor
			}
			if items != len(whole.Items) {
				t.Errorf("%s: %d items in pages of 1, %d in one", path, items, len(whole.Items))
			}
		}
		c.do("GET", "/api/v1/reports/environment-state?environment=dev&status=success&workload=api&workspace=acme&application=shop&target=drone", readToken, nil, 200)
		c.do("GET", "/api/v1/reports/host-state?host=dev-1", readToken, nil, 200)
		c.do("GET", "/api/v1/environments?order=prod", readToken, nil, 200)
		c.do("GET", "/api/v1/rollouts?target=drone&environment=dev&version=1.1.0", readToken, nil, 200)
		c.do("GET", "/api/v1/search?q="+specSHA(2)[:9], readToken, nil, 200)
		c.do("GET", "/api/v1/search?q=1.0.0&limit=5", readToken, nil, 200)
		c.do("GET", "/api/v1/compare?from=dev&to=prod", readToken, nil, 200)
		at := url.QueryEscape(time.Now().UTC().Format(time.RFC3339))
		c.do("GET", "/api/v1/reports/environment-state-at?at="+at, readToken, nil, 200)
		c.do("GET", "/api/v1/reports/host-state-at?environment=dev&at="+at, readToken, nil, 200)
		c.do("GET", "/api/v1/search", readToken, nil, 400)
		c.do("GET", "/api/v1/compare?from=dev&to=dev", readToken, nil, 400)
		c.do("GET", "/api/v1/reports/host-state-at?at=yesterday", readToken, nil, 400)
		c.do("GET", "/api/v1/rollouts?endpoint="+url.QueryEscape(specRepo+"/main/drone")+"&commit="+specSHA(3), readToken, nil, 200)

		// Problems.
		c.do("GET", "/api/v1/rollouts?target=drone&version=1.1.0", readToken, nil, 409) // dev and prod
		c.do("GET", "/api/v1/rollouts?target=nothing&version=1.1.0", readToken, nil, 404)
		c.do("GET", "/api/v1/rollouts?target=drone", readToken, nil, 400)
		c.do("GET", "/api/v1/reports/host-state?limit=0", readToken, nil, 400)
		c.do("GET", "/api/v1/reports/drift?staleAfter=soon", readToken, nil, 400)
		c.do("GET", "/api/v1/reports/environment-state", "", nil, 401)
		c.do("GET", "/api/v1/reports/environment-state", writeToken, nil, 403)
		c.do("POST", "/api/v1/reconcilers", readToken, mustJSON(specReconciler("x", "dev", "drone", specSHA(2), "success", now)), 403)
		c.do("POST", "/api/v1/reconcilers", writeToken, []byte(`{"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "Reconciler", "spec": {"hostName": "x"}}`), 422)
		c.do("POST", "/api/v1/reconcilers", writeToken, []byte(`{not json`), 400)
		conflict := specDescriptor("qa", "drone", "qa", "1.0.0", specSHA(4))
		conflict["spec"].(map[string]any)["workloadVersion"].(map[string]any)["build"] = "another-build"
		c.do("POST", "/api/v1/deploymentdescriptors", writeToken, mustJSON(conflict), 409)
		c.do("POST", "/api/v1/apply", writeToken, mustJSON([]any{specReconciler("qa-2", "qa", "drone", specSHA(5), "success", now), conflict}), 409)
		c.do("POST", "/api/v1/apply", writeToken, mustJSON([]any{map[string]any{"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "AzureResourceGraph"}}), 422)
		c.do("POST", "/api/v1/reconcilers", writeToken, []byte("[\"\xff\"]"), 400)
		c.do("GET", "/api/v1/reports/host-state?host=a%00b", readToken, nil, 400)
		c.do("GET", "/api/v1/reports/host-state?cursor=AA", readToken, nil, 400)
		c.do("DELETE", "/api/v1/hosts/a%FFb/reconcilers/api", writeToken, nil, 400)
		c.do("POST", "/api/v1/azureresourcegraphs", writeToken, bytes.Repeat([]byte(" "), api.MaxBodyBytes+1), 413)

		// The original's Deployment: by host label, and refused when the
		// reconciler name is on several hosts without one.
		deployment := func(host string) map[string]any {
			d := map[string]any{"apiVersion": "hub.kalypso.io/v1alpha1", "kind": "Deployment", "metadata": map[string]any{"name": "d"},
				"spec": map[string]any{"reconcilerName": "api", "gitOpsCommitId": specSHA(2), "status": "success", "statusMessage": "done"}}
			if host != "" {
				d["metadata"].(map[string]any)["labels"] = map[string]any{"hub.kalypso.io/host": host}
			}
			return d
		}
		c.do("POST", "/api/v1/deployments", writeToken, mustJSON(deployment("dev-2")), 200)
		c.do("POST", "/api/v1/deployments", writeToken, mustJSON(deployment("")), 409)
		c.do("POST", "/api/v1/deployments", writeToken, []byte(`{"kind": "Deployment", "spec": {"reconcilerName": "api", "status": "done"}}`), 422)

		// A source pushes, then retires what it no longer reports.
		agentRec := specReconciler("edge-1", "dev", "drone", specSHA(2), "success", now)
		c.do("POST", "/api/v1/reconcilers?source=agent/edge-1", writeToken, mustJSON(agentRec), 200)
		c.do("POST", "/api/v1/reconcilers?source=azure-resource-graph/x", writeToken, mustJSON(agentRec), 422)
		c.do("POST", "/api/v1/reconcilers/retire-missing", writeToken, []byte(`{"source": "agent/edge-1", "present": []}`), 200)
		c.do("POST", "/api/v1/reconcilers/retire-missing", writeToken, []byte(`{"present": []}`), 422)

		// An AzureResourceGraph pushed through the API is removed.
		c.do("DELETE", "/api/v1/azureresourcegraphs/fleet", writeToken, nil, 204)
		c.do("DELETE", "/api/v1/azureresourcegraphs/fleet", writeToken, nil, 404)

		// Retiring a reconciler, then again.
		c.do("DELETE", "/api/v1/hosts/dev-4/reconcilers/api", writeToken, nil, 204)
		c.do("DELETE", "/api/v1/hosts/dev-4/reconcilers/api", writeToken, nil, 404)
		c.do("GET", "/healthz", "", nil, 200)
		c.do("GET", "/readyz", "", nil, 200)
		c.do("GET", "/api/v1/openapi.yaml", "", nil, 200)
		c.do("GET", "/metrics", readToken, nil, 200)

		// Every operation was answered with success at least once.
		for route := range documentedRoutes(doc) {
			ok := false
			for s := range c.seen {
				if strings.HasPrefix(s, route+" 2") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: no successful answer was validated", route)
			}
		}
	})
}

func TestOpenAPIServed(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{Auth: staticTokens(t)}).Handler())
	t.Cleanup(srv.Close)
	resp, body := authRequest(t, "GET", srv.URL+"/api/v1/openapi.yaml", "", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || body != string(api.OpenAPI) {
		t.Fatalf("GET /api/v1/openapi.yaml: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if _, err := openapi3.NewLoader().LoadFromData([]byte(body)); err != nil {
		t.Fatal(err)
	}
}
