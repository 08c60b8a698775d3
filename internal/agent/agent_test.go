package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tidemark-dev/tidemark/internal/agent"
	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	testenv.StopSharedKube()
	testenv.StopShared()
	os.Exit(code)
}

const (
	writeToken = "agent-write-token"
	repo       = "https://github.com/contoso/edge-gitops"
)

func sha(s string) string { return fmt.Sprintf("%040x", []byte(s))[:40] }

// writeOnly lets the agent's token write, as the hub's static tokens do.
type writeOnly struct{}

func (writeOnly) Authenticate(r *http.Request, scope api.Scope) (string, error) {
	if r.Header.Get("Authorization") != "Bearer "+writeToken {
		return "", api.ErrUnauthenticated
	}
	if scope != api.ScopeWrite {
		return "", api.ErrForbidden
	}
	return "agent", nil
}

// hub is a real hub (the HTTP API over a store) that can be stopped and
// started again on the same address, and that records the reports it
// accepted, in order.
type hub struct {
	st      *store.Store
	ingest  *ingest.Service
	reports *reports.Service
	addr    string
	handler http.Handler

	mu       sync.Mutex
	srv      *http.Server
	received []received
}

type received struct{ reconciler, commit, status string }

func newHub(t testing.TB, st *store.Store) *hub {
	ing := ingest.New(st, ingest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	h := &hub{st: st, ingest: ing, reports: reports.New(st)}
	apiHandler := api.New(st, ing, api.Options{Auth: writeOnly{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()
	h.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/reconcilers" {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := &statusRecorder{ResponseWriter: w}
		apiHandler.ServeHTTP(rec, r)
		if body == nil || rec.status != http.StatusOK {
			return
		}
		var list struct {
			Items []struct {
				Spec struct {
					ReconcilerName string `json:"reconcilerName"`
					Deployment     *struct {
						GitOpsCommitID string `json:"gitOpsCommitId"`
						Status         string `json:"status"`
					} `json:"deployment"`
				} `json:"spec"`
			} `json:"items"`
		}
		_ = json.Unmarshal(body, &list)
		h.mu.Lock()
		for _, it := range list.Items {
			r := received{reconciler: it.Spec.ReconcilerName}
			if d := it.Spec.Deployment; d != nil {
				r.commit, r.status = d.GitOpsCommitID, d.Status
			}
			h.received = append(h.received, r)
		}
		h.mu.Unlock()
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	h.serve(l)
	t.Cleanup(h.stop)
	return h
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (h *hub) serve(l net.Listener) {
	srv := &http.Server{Handler: h.handler, ReadHeaderTimeout: 5 * time.Second}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (h *hub) stop() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (h *hub) start(t testing.TB) {
	t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the old socket may linger a moment
		if l, err = net.Listen("tcp", h.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	h.serve(l)
}

func (h *hub) receivedFor(name string) []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []received
	for _, r := range h.received {
		if r.reconciler == name {
			out = append(out, r)
		}
	}
	return out
}

func (h *hub) state(t *testing.T, host, name string) store.ReconcilerState {
	t.Helper()
	s, err := store.GetReconcilerState(context.Background(), h.st.Read(), host, name)
	if err != nil && !errors.Is(err, store.ErrNoRows) {
		t.Fatal(err)
	}
	return s
}

func (h *hub) hostState(t *testing.T, host string) []reports.HostStateRow {
	t.Helper()
	rows, _, err := h.reports.HostState(context.Background(), reports.Filter{Host: host}, reports.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cluster is the workload cluster: envtest with the Flux and Argo CD CRDs.
type cluster struct {
	dyn dynamic.Interface
	ns  string
}

var (
	gvrKustomization = agent.KindKustomization.GVR("v1")
	gvrGitRepository = agent.KindGitRepository.GVR("v1")
	gvrOCIRepository = agent.KindOCIRepository.GVR("v1")
	gvrHelmRelease   = agent.KindHelmRelease.GVR("v2")
	gvrApplication   = agent.KindApplication.GVR("v1alpha1")
)

func (c *cluster) create(t testing.TB, gvr schema.GroupVersionResource, kind, name string, spec map[string]any) {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gvr.GroupVersion().String(), "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": c.ns}, "spec": spec}}
	if _, err := c.dyn.Resource(gvr).Namespace(c.ns).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s: %v", kind, name, err)
	}
}

func (c *cluster) setStatus(t testing.TB, gvr schema.GroupVersionResource, name string, status map[string]any) {
	t.Helper()
	ctx := context.Background()
	obj, err := c.dyn.Resource(gvr).Namespace(c.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obj.Object["status"] = status
	if _, err := c.dyn.Resource(gvr).Namespace(c.ns).UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("status of %s: %v", name, err)
	}
}

// fluxStatus is a Flux object's status: Ready (True, False or Unknown
// while reconciling) at revision.
func fluxStatus(ready, revision, message string, at time.Time) map[string]any {
	conds := []any{map[string]any{"type": "Ready", "status": ready, "reason": "x", "message": message,
		"lastTransitionTime": at.UTC().Format(time.RFC3339)}}
	st := map[string]any{"lastAttemptedRevision": revision, "conditions": conds}
	if ready == "Unknown" {
		conds = append(conds, map[string]any{"type": "Reconciling", "status": "True", "reason": "Progressing", "message": message,
			"lastTransitionTime": at.UTC().Format(time.RFC3339)})
		st["conditions"] = conds
	}
	if ready == "True" {
		st["lastAppliedRevision"] = revision
	}
	return st
}

// agentRole grants the user exactly the agent's PolicyRules.
func agentRole(t *testing.T, admin *rest.Config, user string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: agent.PolicyRules()}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: user, APIGroup: "rbac.authorization.k8s.io"}}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func newNamespace(t testing.TB, cfg *rest.Config) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "agent-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// TestAgent runs the agent as a user with exactly its RBAC against a
// cluster with Flux and Argo CD objects and a real hub over HTTP: reports
// arrive, every change of a hub outage arrives in order after it, and a
// deleted Kustomization's reconciler is retired.
func TestAgent(t *testing.T) {
	kube := testenv.SharedKube(t)
	admin := kube.Config
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{dyn: dyn, ns: newNamespace(t, admin)}
	h := newHub(t, testenv.NewStore(t, "sqlite"))
	ctx := context.Background()
	c1, c2 := sha("c1"), sha("c2")
	ep, _ := model.NewEndpoint("git", repo, "main", "apps")
	if _, err := h.ingest.ApplyDescriptor(ctx, model.Descriptor{Workspace: "contoso", Application: "edge", Workload: "apps",
		Environment: "prod", Target: "apps", Manifests: ep, Version: "1.0.0", Commit: c1,
		AssignedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// The cluster: a Kustomization and its GitRepository, a HelmRelease
	// from an OCIRepository, an Argo CD Application, before the agent starts.
	c.create(t, gvrGitRepository, "GitRepository", "edge", map[string]any{"url": repo + ".git", "ref": map[string]any{"branch": "main"}})
	c.create(t, gvrKustomization, "Kustomization", "apps", map[string]any{"path": "./apps", "sourceRef": map[string]any{"kind": "GitRepository", "name": "edge"}})
	c.create(t, gvrOCIRepository, "OCIRepository", "podinfo", map[string]any{"url": "oci://ghcr.io/stefanprodan/charts/podinfo", "ref": map[string]any{"tag": "6.5.0"}})
	c.create(t, gvrHelmRelease, "HelmRelease", "podinfo", map[string]any{"chartRef": map[string]any{"kind": "OCIRepository", "name": "podinfo"}})
	c.create(t, gvrApplication, "Application", "guestbook", map[string]any{"source": map[string]any{
		"repoURL": "https://github.com/argoproj/argocd-example-apps.git", "targetRevision": "HEAD", "path": "guestbook"}})
	digest := "sha256:" + strings.Repeat("ab", 32)
	hr := fluxStatus("True", "6.5.0", "Helm install succeeded", time.Now())
	hr["lastAttemptedRevisionDigest"] = digest
	c.setStatus(t, gvrHelmRelease, "podinfo", hr)
	c.setStatus(t, gvrApplication, "guestbook", map[string]any{"sync": map[string]any{"status": "Synced", "revision": c1},
		"health": map[string]any{"status": "Healthy"}, "operationState": map[string]any{"phase": "Succeeded", "message": "successfully synced",
			"finishedAt": time.Now().UTC().Format(time.RFC3339)}})

	const user, host = "tidemark-agent", "edge-1"
	agentRole(t, admin, user)
	userCfg := kube.UserConfig(t, user)
	reg := prometheus.NewRegistry()
	a, err := agent.New(agent.Options{Kube: userCfg, Hub: &agent.Hub{URL: "http://" + h.addr, Token: writeToken, HTTP: &http.Client{Timeout: 5 * time.Second}},
		Host: host, HostLabels: map[string]string{"env": "prod"}, Namespace: c.ns, FlushInterval: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond, ResyncInterval: time.Hour, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	// Registered before its first sync; the others report.
	kust := "kustomization/" + c.ns + "/apps"
	eventually(t, 30*time.Second, func() (bool, string) {
		s := h.state(t, host, kust)
		return s.ID != 0 && s.Commit == "" && !s.Retired() && s.Source == agent.Source(host), fmt.Sprintf("kustomization: %+v", s)
	})
	eventually(t, 10*time.Second, func() (bool, string) {
		hs := h.state(t, host, "helmrelease/"+c.ns+"/podinfo")
		as := h.state(t, host, "application/"+c.ns+"/guestbook")
		return hs.Commit == strings.TrimPrefix(digest, "sha256:") && hs.Status == "success" && hs.EndpointKey == "ghcr.io/stefanprodan/charts/podinfo/6.5.0" &&
				as.Commit == c1 && as.Status == "success" && as.Type == "argocd",
			fmt.Sprintf("helmrelease %+v\napplication %+v", hs, as)
	})

	// A status change arrives.
	c.setStatus(t, gvrKustomization, "apps", fluxStatus("True", "main@sha1:"+c1, "Applied revision: main@sha1:"+c1, time.Now()))
	eventually(t, 10*time.Second, func() (bool, string) {
		rows := h.hostState(t, host)
		return len(rows) == 1 && rows[0].Reconciler == kust && rows[0].Commit == c1 && rows[0].Status == "success" && rows[0].Version == "1.0.0",
			fmt.Sprintf("host state %+v", rows)
	})

	// The hub goes away; the Kustomization moves on meanwhile.
	h.stop()
	changes := func() float64 { return testutil.ToFloat64(counter(t, reg, "tidemark_agent_changes_total")) }
	outage := []struct{ ready, status string }{{"Unknown", "in_progress"}, {"False", "failure"}, {"Unknown", "in_progress"}, {"True", "success"}}
	for i, s := range outage {
		before := changes()
		c.setStatus(t, gvrKustomization, "apps", fluxStatus(s.ready, "main@sha1:"+c2, fmt.Sprintf("step %d", i), time.Now()))
		eventually(t, 10*time.Second, func() (bool, string) { return changes() > before, "the agent did not see step " + fmt.Sprint(i) })
	}
	time.Sleep(300 * time.Millisecond) // a few failed pushes
	if up := testutil.ToFloat64(gauge(t, reg, "tidemark_agent_hub_up")); up != 0 {
		t.Errorf("tidemark_agent_hub_up = %v during the outage", up)
	}
	h.start(t)
	eventually(t, 30*time.Second, func() (bool, string) {
		s := h.state(t, host, kust)
		return s.Commit == c2 && s.Status == "success", fmt.Sprintf("after the outage: %+v", s)
	})
	var got []string
	for _, r := range h.receivedFor(kust) {
		if n, _ := model.NormalizeRevision(r.commit); n == c2 {
			got = append(got, r.status)
		}
	}
	want := []string{"in_progress", "failure", "in_progress", "success"}
	if !slices.Equal(got, want) {
		t.Errorf("reports of the outage arrived as %v, want %v in order (all reports: %+v)", got, want, h.receivedFor(kust))
	}
	var history int
	if err := h.st.Read().QueryRow(ctx, `SELECT count(*) FROM deployment_history dh JOIN deployments d ON d.id = dh.deployment_id
		WHERE d.commit_sha = $1`, c2).Scan(&history); err != nil || history != 4 {
		t.Errorf("the hub kept %d status changes of commit c2 (%v), want 4", history, err)
	}

	// Deleting the Kustomization retires its reconciler.
	if err := c.dyn.Resource(gvrKustomization).Namespace(c.ns).Delete(ctx, "apps", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		s := h.state(t, host, kust)
		return s.Retired(), fmt.Sprintf("deleted kustomization: %+v", s)
	})
	if rows := h.hostState(t, host); len(rows) != 0 {
		t.Errorf("host state after the deletion: %+v", rows)
	}

	// The agent's user can read, not write.
	userDyn, err := dynamic.NewForConfig(userCfg)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := userDyn.Resource(gvrApplication).Namespace(c.ns).Get(ctx, "guestbook", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the agent's user cannot read an Application: %v", err)
	}
	obj.SetLabels(map[string]string{"touched": "yes"})
	if _, err := userDyn.Resource(gvrApplication).Namespace(c.ns).Update(ctx, obj, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the agent's user may update an Application: %v", err)
	}
	if _, err := kubernetes.NewForConfigOrDie(userCfg).CoreV1().Secrets(c.ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the agent's user may list Secrets: %v", err)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	return metric(t, reg, name, func(m float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m })
	})
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	return metric(t, reg, name, func(m float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return m })
	})
}

func metric(t *testing.T, reg *prometheus.Registry, name string, wrap func(float64) prometheus.Collector) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			m := mf.GetMetric()[0]
			switch {
			case m.GetCounter() != nil:
				return wrap(m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				return wrap(m.GetGauge().GetValue())
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
