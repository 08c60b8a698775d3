package arg_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resourcegraph/armresourcegraph"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resourcegraph/armresourcegraph/fake"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/sources/arg"
	"github.com/tidemark-dev/tidemark/internal/sources/arg/fluxconfig"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

const gitopsRepo = "https://github.com/contoso/fleet-gitops"

func sha(s string) string { return fmt.Sprintf("%040x", []byte(s))[:40] }

// fleet is what Azure Resource Graph holds: Flux configuration rows by
// subscription, served by the SDK's fake server in pages.
type fleet struct {
	mu   sync.Mutex
	rows map[string][]map[string]any // subscription -> rows, in id order
	// extra rows that are not Flux configurations as the hub expects.
	junk     map[string][]any
	pageSize int
	// quotaAfterPage, when > 0, makes that page say the quota is spent
	// for a second.
	quotaAfterPage int
	// pages counts the pages served.
	pages atomic.Int64
}

func newFleet() *fleet {
	return &fleet{rows: map[string][]map[string]any{}, junk: map[string][]any{}, pageSize: arg.DefaultPageSize}
}

// clusterID is the resource id of an Arc cluster.
func clusterID(sub, name string) string {
	return "/subscriptions/" + sub + "/resourceGroups/rg-fleet/providers/Microsoft.Kubernetes/connectedClusters/" + name
}

// config is a Flux configuration row of cluster name in sub, with one
// kustomization per path, at commit (none when empty) and compliance
// state.
func config(sub, cluster string, commit, state string, paths ...string) map[string]any {
	kust := map[string]any{}
	statuses := []any{map[string]any{"name": "fleet", "namespace": "flux-system", "kind": "GitRepository", "complianceState": "Compliant",
		"statusConditions": []any{map[string]any{"type": "Ready", "status": "True", "message": "stored artifact for revision 'main@sha1:" + commit + "'"}}}}
	for _, p := range paths {
		k := strings.ReplaceAll(p, "/", "-")
		kust[k] = map[string]any{"name": k, "path": "./" + p, "prune": true}
		msg := "Applied revision: main@sha1:" + commit
		status := "True"
		if state == "Non-Compliant" {
			msg, status = "kustomize build failed: accumulating resources", "False"
		}
		statuses = append(statuses, map[string]any{"name": "fleet-" + k, "namespace": "flux-system", "kind": "Kustomization",
			"complianceState": state, "statusConditions": []any{map[string]any{"type": "Ready", "status": status, "message": msg}}})
	}
	props := map[string]any{
		"scope": "cluster", "namespace": "flux-system", "sourceKind": "GitRepository",
		"gitRepository":   map[string]any{"url": gitopsRepo + ".git", "repositoryRef": map[string]any{"branch": "main"}},
		"kustomizations":  kust,
		"statuses":        statuses,
		"complianceState": state,
		"statusUpdatedAt": "2026-05-01T08:00:00Z",
		"sourceUpdatedAt": "2026-05-01T07:59:00Z",
	}
	if commit != "" {
		props["sourceSyncedCommitId"] = "main@sha1:" + commit
	} else {
		props["complianceState"] = "Pending"
		props["statuses"] = []any{}
	}
	return map[string]any{
		"id":   clusterID(sub, cluster) + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/fleet",
		"name": "fleet", "type": "microsoft.kubernetesconfiguration/fluxconfigurations",
		"subscriptionId": sub, "resourceGroup": "rg-fleet", "properties": props,
	}
}

func (f *fleet) add(sub string, row map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows[sub] = append(f.rows[sub], row)
}

// set replaces the row of cluster in sub (nil removes it).
func (f *fleet) set(sub, cluster string, row map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := clusterID(sub, cluster) + "/"
	rows := f.rows[sub]
	for i, r := range rows {
		if strings.HasPrefix(r["id"].(string), id) {
			if row == nil {
				f.rows[sub] = slices.Delete(rows, i, i+1)
			} else {
				rows[i] = row
			}
			return
		}
	}
}

// server is the SDK's fake Resource Graph server over the fleet.
func (f *fleet) server() *fake.Server {
	return &fake.Server{
		Resources: func(_ context.Context, q armresourcegraph.QueryRequest, _ *armresourcegraph.ClientResourcesOptions) (resp azfake.Responder[armresourcegraph.ClientResourcesResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if q.Query == nil || !strings.Contains(*q.Query, "microsoft.kubernetesconfiguration/fluxconfigurations") {
				errResp.SetResponseError(http.StatusBadRequest, "BadRequest")
				return
			}
			var all []any
			for _, s := range q.Subscriptions {
				for _, r := range f.rows[*s] {
					all = append(all, r)
				}
				all = append(all, f.junk[*s]...)
			}
			start := 0
			if o := q.Options; o != nil && o.SkipToken != nil {
				fmt.Sscanf(*o.SkipToken, "rows-from-%d", &start)
			}
			size := f.pageSize
			if o := q.Options; o != nil && o.Top != nil && int(*o.Top) < size {
				size = int(*o.Top)
			}
			end := min(start+size, len(all))
			page := all[start:end]
			n := f.pages.Add(1)
			out := armresourcegraph.ClientResourcesResponse{QueryResponse: armresourcegraph.QueryResponse{
				Count: ptr(int64(len(page))), Data: page, TotalRecords: ptr(int64(len(all))),
				ResultTruncated: ptr(armresourcegraph.ResultTruncatedFalse),
			}}
			if end < len(all) {
				out.SkipToken = ptr(fmt.Sprintf("rows-from-%d", end))
			}
			h := http.Header{}
			h.Set("x-ms-user-quota-remaining", "14")
			if f.quotaAfterPage > 0 && int(n) == f.quotaAfterPage {
				h.Set("x-ms-user-quota-remaining", "0")
				h.Set("x-ms-user-quota-resets-after", "00:00:01")
			}
			resp.SetResponse(http.StatusOK, out, &azfake.SetResponseOptions{Header: h})
			return
		},
	}
}

func ptr[T any](v T) *T { return &v }

// wire sits between the SDK's pipeline and its fake server, as the
// network would: it records each request and can throttle one page once,
// with a Retry-After.
type wire struct {
	next policy.Transporter
	mu   sync.Mutex
	log  []request
	// throttleToken: the first request for the page with this skip token
	// is answered 429 with Retry-After: 1.
	throttleToken string
	throttled     bool
}

type request struct {
	at            time.Time
	skipToken     string
	subscriptions []string
	authorized    bool
	status        int
}

func (w *wire) Do(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	var q struct {
		Subscriptions []string `json:"subscriptions"`
		Options       struct {
			SkipToken string `json:"$skipToken"`
		} `json:"options"`
	}
	_ = json.Unmarshal(body, &q)
	r := request{at: time.Now(), skipToken: q.Options.SkipToken, subscriptions: q.Subscriptions,
		authorized: strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ")}
	w.mu.Lock()
	throttle := w.throttleToken != "" && q.Options.SkipToken == w.throttleToken && !w.throttled
	if throttle {
		w.throttled = true
	}
	w.mu.Unlock()
	var resp *http.Response
	var err error
	if throttle {
		resp = &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests", Request: req,
			Header: http.Header{"Retry-After": {"1"}, "X-Ms-User-Quota-Remaining": {"0"}, "X-Ms-User-Quota-Resets-After": {"00:00:01"}},
			Body:   io.NopCloser(strings.NewReader(`{"error":{"code":"RateLimiting","message":"Please try again later."}}`))}
	} else {
		resp, err = w.next.Do(req)
	}
	if resp != nil {
		r.status = resp.StatusCode
	}
	w.mu.Lock()
	w.log = append(w.log, r)
	w.mu.Unlock()
	return resp, err
}

func (w *wire) requests() []request {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

// credentials gives each configuration its own fake credential and counts
// the tokens each one was asked for.
type credentials struct {
	mu    sync.Mutex
	creds map[string]*countingCredential
}

type countingCredential struct {
	azfake.TokenCredential
	tokens atomic.Int64
}

func (c *countingCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.tokens.Add(1)
	return c.TokenCredential.GetToken(ctx, o)
}

func (c *credentials) of(key string) *countingCredential {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creds == nil {
		c.creds = map[string]*countingCredential{}
	}
	if c.creds[key] == nil {
		c.creds[key] = &countingCredential{}
	}
	return c.creds[key]
}

// replace gives key a new credential (a rotated Secret).
func (c *credentials) replace(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creds[key] = &countingCredential{}
}

func (c *credentials) Credential(_ context.Context, cfg arg.Config) (azcore.TokenCredential, error) {
	return c.of(cfg.Key()), nil
}

// hub is a store with ingest and reports over it.
type hub struct {
	st      *store.Store
	ingest  *ingest.Service
	reports *reports.Service
}

func newHub(st *store.Store) *hub {
	return &hub{st: st, ingest: ingest.New(st, ingest.WithLogger(quietLog())), reports: reports.New(st)}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// target records the assignment of version (at commit) to a target whose
// manifests are path on the fleet's repository.
func (h *hub) target(t testing.TB, name, version, commit string) {
	t.Helper()
	ep, err := model.NewEndpoint("git", gitopsRepo, "main", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ingest.ApplyDescriptor(ctx, model.Descriptor{Workspace: "contoso", Application: "fleet", Workload: name,
		Environment: "prod", Target: name, Manifests: ep, Version: version, Commit: commit,
		AssignedAt: time.Date(2026, 5, 1, 7, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
}

func (h *hub) gate(t *testing.T, target, commit string) reports.Gate {
	t.Helper()
	g, err := h.reports.Gate(ctx, reports.GateQuery{Target: target, Commit: commit})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (h *hub) hostState(t *testing.T, host string) []reports.HostStateRow {
	t.Helper()
	rows, _, err := h.reports.HostState(ctx, reports.Filter{Host: host}, reports.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func newPoller(t testing.TB, h *hub, cfg arg.Config, srv *fake.Server, w *wire, creds arg.Credentials) *arg.Poller {
	t.Helper()
	w.next = fake.NewServerTransport(srv)
	p, err := arg.NewPoller(cfg, arg.Options{
		Ingest: h.ingest, Credentials: creds, Logger: quietLog(),
		ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: w,
			Retry: policy.RetryOptions{RetryDelay: 10 * time.Millisecond}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func poll(t *testing.T, p *arg.Poller) arg.Result {
	t.Helper()
	res := p.Poll(ctx)
	if res.Err != nil {
		t.Fatalf("poll: %v", res.Err)
	}
	return res
}

// TestPollFleet polls 2,500 Flux configurations over three pages, one page
// throttled, with malformed rows among them, then polls again after one
// configuration vanished and one moved to a new commit.
func TestPollFleet(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		const n, sub = 2500, "11111111-1111-1111-1111-111111111111"
		c1, c2 := sha("release-1"), sha("release-2")
		h := newHub(st)
		h.target(t, "apps", "1.0.0", c1)
		h.target(t, "infra", "1.0.0", c1)
		h.target(t, "monitoring", "1.0.0", c1)

		f := newFleet()
		want := struct{ success, failure, inProgress, registered int }{}
		for i := range n {
			name := fmt.Sprintf("Arc-Cluster-%04d", i)
			switch {
			case i == 0:
				f.add(sub, config(sub, name, c1, "Compliant", "apps", "infra", "monitoring"))
				want.success++
			case i%50 == 2:
				f.add(sub, config(sub, name, "", "", "apps"))
				want.registered++
			case i%10 == 3:
				f.add(sub, config(sub, name, c1, "Non-Compliant", "apps"))
				want.failure++
			case i%10 == 4:
				f.add(sub, config(sub, name, c1, "Pending", "apps"))
				want.inProgress++
			default:
				f.add(sub, config(sub, name, c1, "Compliant", "apps"))
				want.success++
			}
		}
		bucket := config(sub, "bucket-cluster", c1, "Compliant", "apps")
		props := bucket["properties"].(map[string]any)
		props["sourceKind"], props["bucket"] = "Bucket", map[string]any{"url": "https://s3.amazonaws.com", "bucketName": "manifests"}
		delete(props, "gitRepository")
		f.junk[sub] = []any{
			"not an object",
			map[string]any{"id": "/subscriptions/x/odd", "name": "odd", "properties": map[string]any{}},
			map[string]any{"id": clusterID(sub, "no-props") + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/x", "name": "x"},
			bucket,
		}
		// 2,504 rows: pages of 1,000, 1,000 and 504. The first page says
		// the quota is spent for a second; the second page is throttled
		// once.
		f.quotaAfterPage = 1
		w := &wire{throttleToken: "rows-from-1000"}
		creds := &credentials{}
		cfg := arg.Config{Namespace: "hub", Name: "fleet", Tenant: "t", Subscriptions: []string{sub}, Interval: time.Minute, ManagedIdentity: "mi"}
		p := newPoller(t, h, cfg, f.server(), w, creds)

		res := poll(t, p)
		if res.Rows != n+4 || res.Skipped != 4 || res.Reconcilers != n+2 || res.Created != n+2 || res.Changed != n+2 || res.Throttled != 1 {
			t.Errorf("first poll: %+v", res)
		}
		for _, reason := range []string{fluxconfig.SkipNotObject, fluxconfig.SkipID, fluxconfig.SkipNoProperties, fluxconfig.SkipSource} {
			if res.SkippedReasons[reason] != 1 {
				t.Errorf("skipped reasons %v: want one %s", res.SkippedReasons, reason)
			}
		}
		reqs := w.requests()
		if len(reqs) != 4 || reqs[0].skipToken != "" || reqs[1].skipToken != "rows-from-1000" || reqs[1].status != 429 ||
			reqs[2].skipToken != "rows-from-1000" || reqs[2].status != 200 || reqs[3].skipToken != "rows-from-2000" {
			t.Fatalf("requests: %+v", reqs)
		}
		if gap := reqs[1].at.Sub(reqs[0].at); gap < 900*time.Millisecond {
			t.Errorf("page 2 asked %s after page 1 had spent the quota for 1s", gap)
		}
		if gap := reqs[2].at.Sub(reqs[1].at); gap < 900*time.Millisecond {
			t.Errorf("throttled page retried after %s, before its Retry-After of 1s", gap)
		}
		for _, r := range reqs {
			if !r.authorized || !slices.Equal(r.subscriptions, []string{sub}) {
				t.Errorf("request %+v: want a bearer token and subscription %s", r, sub)
			}
		}

		// Configurations without a commit yet count as not reported.
		g := h.gate(t, "apps", c1)
		if g.Total != n || g.Succeeded != want.success || g.Failed != want.failure || g.InProgress != want.inProgress || g.NotReported != want.registered {
			t.Errorf("gate apps at c1: total %d succeeded %d failed %d in progress %d not reported %d; want %d %d %d %d %d",
				g.Total, g.Succeeded, g.Failed, g.InProgress, g.NotReported, n, want.success, want.failure, want.inProgress, want.registered)
		}
		// A configuration with three Kustomizations is three reconcilers,
		// each with its own path; the host is the cluster's name,
		// lower-cased.
		rows := h.hostState(t, "arc-cluster-0000")
		if len(rows) != 3 {
			t.Fatalf("host arc-cluster-0000: %d rows, want 3: %+v", len(rows), rows)
		}
		for i, target := range []string{"apps", "infra", "monitoring"} {
			r := rows[i]
			if r.Reconciler != "fleet/"+target || r.Target != target || r.Commit != c1 || r.Status != "success" || r.Version != "1.0.0" ||
				!strings.Contains(r.Message, "Applied revision") {
				t.Errorf("arc-cluster-0000 row %d: %+v", i, r)
			}
		}
		if r := h.hostState(t, "arc-cluster-0003"); len(r) != 1 || r[0].Status != "failure" || !strings.Contains(r[0].Message, "kustomize build failed") {
			t.Errorf("non-compliant cluster: %+v", r)
		}
		// A configuration without a commit yet registers its reconciler.
		st2, err := store.GetReconcilerState(ctx, st.Read(), "arc-cluster-0002", "fleet/apps")
		if err != nil || st2.Retired() || st2.Commit != "" || st2.Source != "azure-resource-graph/hub/fleet" {
			t.Errorf("registered reconciler: %+v, %v", st2, err)
		}

		// Polling again changes nothing.
		res = poll(t, p)
		if res.Changed != 0 || res.Created != 0 || res.Retired != 0 || res.Reconcilers != n+2 {
			t.Errorf("second poll: %+v", res)
		}

		// Cluster 5 loses its configuration, cluster 7 syncs a new commit,
		// cluster 2 reports its first.
		f.set(sub, "Arc-Cluster-0005", nil)
		f.set(sub, "Arc-Cluster-0007", config(sub, "Arc-Cluster-0007", c2, "Compliant", "apps"))
		f.set(sub, "Arc-Cluster-0002", config(sub, "Arc-Cluster-0002", c1, "Compliant", "apps"))
		res = poll(t, p)
		if res.Changed != 2 || res.Retired != 1 || res.Created != 0 || res.Reconcilers != n+1 {
			t.Errorf("third poll: %+v", res)
		}
		if r := h.hostState(t, "arc-cluster-0005"); len(r) != 0 {
			t.Errorf("vanished cluster still reported: %+v", r)
		}
		// A GitOps commit is branch-wide: c2 resolves to the version in
		// effect when it was first seen.
		if r := h.hostState(t, "arc-cluster-0007"); len(r) != 1 || r[0].Commit != c2 || r[0].Version != "1.0.0" {
			t.Errorf("cluster at a new commit: %+v", r)
		}
		// Cluster 5 no longer counts, cluster 2 has reported.
		g = h.gate(t, "apps", c1)
		if g.Total != n-1 || g.Succeeded != want.success || g.NotReported != want.registered-1 {
			t.Errorf("gate after changes: total %d succeeded %d not reported %d", g.Total, g.Succeeded, g.NotReported)
		}
	})
}
