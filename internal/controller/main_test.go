package controller_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// One envtest control plane (and one PostgreSQL server) per test binary.
func TestMain(m *testing.M) {
	flag.Parse()
	ctrl.SetLogger(testLogger())
	if !testing.Short() {
		k, err := testenv.StartSharedKube()
		if err != nil {
			fmt.Fprintf(os.Stderr, "envtest did not start (tests needing it skip, or fail under CI=true): %v\n", err)
		} else {
			fmt.Printf("envtest: kube-apiserver %s and etcd started, CRDs installed, in %s\n",
				k.Assets, k.Startup.Round(time.Millisecond))
		}
	}
	code := m.Run()
	testenv.StopSharedKube()
	testenv.StopShared()
	os.Exit(code)
}

// testLogger writes the controllers' warnings and errors to stderr (all of
// it with TIDEMARK_TEST_LOG=debug).
func testLogger() logr.Logger {
	level := slog.LevelWarn
	if os.Getenv("TIDEMARK_TEST_LOG") == "debug" {
		level = slog.Level(-4)
	}
	return logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// harness is a running controller manager over one store, watching the
// test's own namespaces.
type harness struct {
	kube *testenv.Kube
	// c reads and writes through the API server directly (no cache).
	c  client.Client
	st *store.Store
	// ns and other are the test's namespaces.
	ns, other string
	// probe is the base URL of /healthz and /readyz.
	probe string
	// opts and cfg start the manager; stop stops the running one.
	opts controller.Options
	cfg  *rest.Config
	stop func()
}

// harnessOption changes the manager's options or its client configuration.
type harnessOption func(*controller.Options, *rest.Config)

// quiet drops the controllers' logs (tests that make errors on purpose).
func quiet(o *controller.Options, _ *rest.Config) {
	o.Logger = logr.FromSlogHandler(slog.NewTextHandler(io.Discard, nil))
}

// startController starts a manager over st. It stops when the test ends.
func startController(t testing.TB, st *store.Store, opts ...harnessOption) *harness {
	t.Helper()
	kube := testenv.SharedKube(t)
	h := &harness{kube: kube, c: newClient(t, kube.Config), st: st}
	h.ns = h.namespace(t, "t")
	h.other = h.namespace(t, "o")
	port := freePort(t)
	h.probe = fmt.Sprintf("http://127.0.0.1:%d", port)
	o := controller.Options{
		Ingest:                 ingest.New(st, ingest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))),
		Store:                  st,
		Logger:                 testLogger(),
		HealthProbeBindAddress: fmt.Sprintf("127.0.0.1:%d", port),
		MetricsBindAddress:     "0",
		Namespaces:             []string{h.ns, h.other},
		RetryBaseDelay:         20 * time.Millisecond,
		RetryMaxDelay:          time.Second,
	}
	h.cfg = rest.CopyConfig(kube.Config)
	for _, opt := range opts {
		opt(&o, h.cfg)
	}
	h.opts = o
	h.stop = runManager(t, h.cfg, o)
	h.waitProbe(t, "/readyz", http.StatusOK)
	return h
}

// restart stops the manager and starts a new one, as a new leader would:
// it lists and reconciles every resource again.
func (h *harness) restart(t testing.TB) {
	t.Helper()
	h.stop()
	h.stop = runManager(t, h.cfg, h.opts)
	h.waitProbe(t, "/healthz", http.StatusOK)
}

// runManager starts a manager. The returned function stops it and waits;
// it also runs when the test ends.
func runManager(t testing.TB, cfg *rest.Config, o controller.Options) (stop func()) {
	t.Helper()
	mgr, err := controller.NewManager(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("manager: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("manager did not stop in 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// reconciles is how many reconciliations a controller ("deploymentdescriptor",
// "reconciler"...) finished in this process, from controller-runtime's
// metrics.
func reconciles(t testing.TB, name string) float64 {
	t.Helper()
	return counter(t, "controller_runtime_reconcile_total", name)
}

// reconcileErrors is how many reconciliations of a controller failed.
func reconcileErrors(t testing.TB, name string) float64 {
	t.Helper()
	return counter(t, "controller_runtime_reconcile_errors_total", name)
}

func counter(t testing.TB, metric, name string) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == name {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func newClient(t testing.TB, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// namespace creates a namespace named after the test.
func (h *harness) namespace(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, t.Name())
	if len(base) > 40 {
		base = base[:40]
	}
	name := strings.Trim(prefix+"-"+strings.Trim(base, "-"), "-") + "-" + hex.EncodeToString(b)
	if err := h.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// probeStatus GETs a health endpoint.
func (h *harness) probeStatus(path string) (int, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(h.probe + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (h *harness) waitProbe(t testing.TB, path string, want int) {
	t.Helper()
	eventually(t, 30*time.Second, func() (bool, string) {
		code, err := h.probeStatus(path)
		return code == want, fmt.Sprintf("%s: status %d, error %v; want %d", path, code, err, want)
	})
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not so after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readObjects decodes every document of a YAML file.
func readObjects(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("%s: %v", path, err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// create creates the objects of a YAML file in namespace ns, unchanged
// otherwise, and returns them.
func (h *harness) createFile(t testing.TB, ns, path string) []*unstructured.Unstructured {
	t.Helper()
	objs := readObjects(t, path)
	for _, o := range objs {
		o.SetNamespace(ns)
		if err := h.c.Create(context.Background(), o); err != nil {
			t.Fatalf("%s: create %s %s: %v", path, o.GetKind(), o.GetName(), err)
		}
	}
	return objs
}

// ready returns the Ready condition when it is set for the object's
// current generation.
func ready(conds []metav1.Condition, gen int64) *metav1.Condition {
	c := meta.FindStatusCondition(conds, controller.ReadyCondition)
	if c == nil || c.ObservedGeneration != gen {
		return nil
	}
	return c
}

func describe(c *metav1.Condition) string {
	if c == nil {
		return "no Ready condition for the current generation"
	}
	return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
}

// waitDescriptor waits until the descriptor's Ready condition for its
// current generation has the reason, and returns the descriptor.
func (h *harness) waitDescriptor(t testing.TB, ns, name, reason string) *v1alpha1.DeploymentDescriptor {
	t.Helper()
	var dd v1alpha1.DeploymentDescriptor
	eventually(t, 30*time.Second, func() (bool, string) {
		if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &dd); err != nil {
			return false, err.Error()
		}
		c := ready(dd.Status.Conditions, dd.Generation)
		return c != nil && c.Reason == reason, "descriptor " + name + ": " + describe(c) + "; want reason " + reason
	})
	return &dd
}

func (h *harness) waitReconciler(t testing.TB, ns, name, reason string) *v1alpha1.Reconciler {
	t.Helper()
	var rec v1alpha1.Reconciler
	eventually(t, 30*time.Second, func() (bool, string) {
		if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &rec); err != nil {
			return false, err.Error()
		}
		c := ready(rec.Status.Conditions, rec.Generation)
		return c != nil && c.Reason == reason, "reconciler " + name + ": " + describe(c) + "; want reason " + reason
	})
	return &rec
}

func (h *harness) waitARG(t testing.TB, ns, name, reason string) *v1alpha1.AzureResourceGraph {
	t.Helper()
	var arg v1alpha1.AzureResourceGraph
	eventually(t, 30*time.Second, func() (bool, string) {
		if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &arg); err != nil {
			return false, err.Error()
		}
		c := ready(arg.Status.Conditions, arg.Generation)
		return c != nil && c.Reason == reason, "AzureResourceGraph " + name + ": " + describe(c) + "; want reason " + reason
	})
	return &arg
}

// waitGone waits until the object no longer exists.
func (h *harness) waitGone(t testing.TB, obj client.Object) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	eventually(t, 30*time.Second, func() (bool, string) {
		err := h.c.Get(context.Background(), key, obj)
		return apierrors.IsNotFound(err), fmt.Sprintf("%s still exists (finalizers %v, err %v)", key, obj.GetFinalizers(), err)
	})
}

// count counts the rows of a store table.
func count(t testing.TB, st *store.Store, table string, where ...string) int {
	t.Helper()
	q := "SELECT count(*) FROM " + table
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := st.Read().QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// hostTargets lists, through the Host State report, what every live
// reconciler deploys for each target whose endpoint it applies.
func hostTargets(t testing.TB, st *store.Store) []reports.HostStateRow {
	t.Helper()
	rs := reports.New(st)
	var out []reports.HostStateRow
	page := reports.Page{Limit: reports.MaxLimit}
	for {
		rows, next, err := rs.HostState(context.Background(), reports.Filter{}, page)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
		if next == "" {
			return out
		}
		page.Cursor = next
	}
}

// Test resources built in Go.

const (
	shaA = "5ce065315cc1702b6cb4eb9d3f804413706570d8"
	shaB = "8f3e9a1b2c4d5e6f708192a3b4c5d6e7f8091a2b"
	shaC = "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3"
)

func descriptor(ns, name, target, version string) *v1alpha1.DeploymentDescriptor {
	return &v1alpha1.DeploymentDescriptor{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.DeploymentDescriptorSpec{
			Workload: v1alpha1.Workload{
				Name:        "hello-world",
				Source:      v1alpha1.WorkloadSource{Repo: "https://github.com/kaizentm/hello-world", Branch: "main", Path: "."},
				Application: v1alpha1.Application{Name: "greeting-service", Workspace: v1alpha1.Workspace{Name: "kaizentm"}},
			},
			DeploymentTarget: v1alpha1.DeploymentTarget{
				Name:        target,
				Environment: "dev",
				Manifests:   v1alpha1.Manifests{Repo: "https://github.com/kaizentm/hello-world-gitops", Branch: "dev", Path: target},
			},
			WorkloadVersion: v1alpha1.WorkloadVersion{Version: version, Build: "build-" + version},
		},
	}
}

func reconciler(ns, name, host, target, commit, status string) *v1alpha1.Reconciler {
	return &v1alpha1.Reconciler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ReconcilerSpec{
			HostName:          host,
			Type:              "flux",
			ManifestsEndpoint: "https://github.com/kaizentm/hello-world-gitops/dev/" + target,
			Deployment:        &v1alpha1.Deployment{GitOpsCommitID: commit, Status: status, StatusMessage: "Applied revision " + commit},
		},
	}
}

func create(t testing.TB, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}
