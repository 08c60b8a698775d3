package controller_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// fixtureFiles are the Kalypso users' samples, in name order.
func fixtureFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(testenv.Testdata("kalypso-samples", "*.yaml"))
	if err != nil || len(files) != 12 {
		t.Fatalf("want the 12 files of testdata/kalypso-samples, found %d (%v)", len(files), err)
	}
	return files
}

// Every sample and the seed README's examples, created through the API
// server, end up in the store. The README's examples go last, in another
// namespace: their descriptor (named like a sample's) moves the
// functional-test target to another repository host, as it should.
func TestFixturesThroughAPIServer(t *testing.T) {
	for _, engine := range testenv.Engines {
		t.Run(engine, func(t *testing.T) {
			st := testenv.NewStore(t, engine)
			h := startController(t, st)
			var samples []string
			for _, f := range fixtureFiles(t) {
				samples = append(samples, kindNames(h.createFile(t, h.ns, f))...)
			}
			h.waitFixtures(t, h.ns, samples)
			readme := kindNames(h.createFile(t, h.other, testenv.Testdata("seed", "readme-examples.yaml")))
			h.waitFixtures(t, h.other, readme)
			checkFixtureStore(t, st)
			checkFixtureEvents(t, h)
		})
	}
}

// The same files, applied with the real kubectl. The README's descriptor
// has a sample's name: kubectl updates that object, and the target moves.
// Applying again changes nothing.
func TestFixturesWithKubectl(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := startController(t, st)
	kubeconfig := h.kube.KubeconfigFile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := h.kube.Kubectl(ctx, kubeconfig, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	readmeFile := testenv.Testdata("seed", "readme-examples.yaml")
	out := kubectl("apply", "-n", h.ns, "-f", testenv.Testdata("kalypso-samples"))
	if n := strings.Count(out, " created"); n != 12 {
		t.Fatalf("kubectl apply created %d objects, want 12:\n%s", n, out)
	}
	var objs []string
	for _, f := range fixtureFiles(t) {
		objs = append(objs, kindNames(readObjects(t, f))...)
	}
	h.waitFixtures(t, h.ns, objs)

	out = kubectl("apply", "-n", h.ns, "-f", readmeFile)
	if !strings.Contains(out, "deploymentdescriptor.hub.kalypso.io/hello-world-functional-test-0-0-1 configured") ||
		!strings.Contains(out, "reconciler.hub.kalypso.io/kalypso-rg-flux-hello-world created") {
		t.Fatalf("kubectl apply of the README examples:\n%s", out)
	}
	h.waitFixtures(t, h.ns, kindNames(readObjects(t, readmeFile)))
	if dd := h.waitDescriptor(t, h.ns, "hello-world-functional-test-0-0-1", controller.ReasonCommitPending); dd.Generation != 2 {
		t.Errorf("updated descriptor has generation %d, want 2", dd.Generation)
	}
	checkFixtureStore(t, st)

	out = kubectl("apply", "-n", h.ns, "-f", readmeFile)
	if n := strings.Count(out, " unchanged"); n != 2 {
		t.Errorf("second kubectl apply: %d unchanged, want 2:\n%s", n, out)
	}
	time.Sleep(500 * time.Millisecond)
	checkFixtureStore(t, st)

	// The printer columns.
	out = kubectl("get", "deploymentdescriptors,reconcilers", "-n", h.ns)
	for _, col := range []string{"ENVIRONMENT", "TARGET", "WORKLOAD", "VERSION", "COMMIT", "READY", "AGE", "HOST", "STATUS"} {
		if !strings.Contains(out, col) {
			t.Errorf("kubectl get: no %s column:\n%s", col, out)
		}
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"deploymentdescriptor.hub.kalypso.io/rs-dispatcher-framework-1-1-140-d2-ssu d2 msu rs-dispatcher-framework 1.1.140 True",
		"reconciler.hub.kalypso.io/kalypso-rg-flux-hello-world kalypso-rg-flux dev/" + shaA + " success True",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("kubectl get: no row %q:\n%s", want, out)
		}
	}
	t.Logf("kubectl get deploymentdescriptors,reconcilers:\n%s", out)
}

func kindNames(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

// waitFixtures waits until every object ("Kind/name") has the Ready
// condition its content calls for: the samples carry no GitOps commit and
// no Flux labels, so descriptors are stored with the commit pending.
func (h *harness) waitFixtures(t *testing.T, ns string, objs []string) {
	t.Helper()
	for _, o := range objs {
		kind, name, _ := strings.Cut(o, "/")
		switch kind {
		case "DeploymentDescriptor":
			dd := h.waitDescriptor(t, ns, name, controller.ReasonCommitPending)
			if dd.Status.GitOpsCommitID != "" || dd.Status.ObservedGeneration != dd.Generation {
				t.Errorf("%s: status %+v", o, dd.Status)
			}
			if c := ready(dd.Status.Conditions, dd.Generation); !strings.Contains(c.Message, "GitOps commit pending") {
				t.Errorf("%s: message %q", o, c.Message)
			}
		case "Reconciler":
			rec := h.waitReconciler(t, ns, name, controller.ReasonStored)
			if got := rec.Finalizers; len(got) != 1 || got[0] != controller.Finalizer {
				t.Errorf("%s: finalizers %v, want [%s]", o, got, controller.Finalizer)
			}
		case "AzureResourceGraph":
			h.waitARG(t, ns, name, controller.ReasonAccepted)
		default:
			t.Fatalf("unexpected kind in %s", o)
		}
	}
}

// checkFixtureStore checks what the samples and the README examples make
// in the store: the same as `tidemark apply` of the same files.
func checkFixtureStore(t *testing.T, st *store.Store) {
	t.Helper()
	for table, want := range map[string]int{
		"workspaces": 2, "applications": 2, "workloads": 3, "environments": 4,
		"targets": 10, "workload_versions": 7, "hosts": 1, "reconcilers": 1, "deployments": 1, "deployment_history": 1,
		// The ssu/msu samples declare one target and version: one
		// assignment. No sample names its commit: every one is pending.
		"assignments": 10,
	} {
		if got := count(t, st, table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	if n := count(t, st, "assignments", "commit_sha IS NULL"); n != 10 {
		t.Errorf("%d pending assignments, want 10", n)
	}
	ctx := context.Background()
	// The README's descriptor moved functional-test to wxl.best.
	var repo, branch, path string
	if err := st.Read().QueryRow(ctx, `SELECT e.repo, e.branch, e.path FROM targets t JOIN endpoints e ON e.id = t.endpoint_id
		JOIN environments env ON env.id = t.environment_id WHERE t.name = 'functional-test' AND env.name = 'dev'`).Scan(&repo, &branch, &path); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(repo, "wxl.best/kaizentm/hello-world-gitops") || branch != "dev" || path != "functional-test" {
		t.Errorf("functional-test endpoint = %s %s %s, want the README's wxl.best repository, dev, functional-test", repo, branch, path)
	}
	// The rs-dispatcher-framework 1.1.140 build, from the d2 samples.
	var build, commit string
	if err := st.Read().QueryRow(ctx, `SELECT v.build, v.build_commit FROM workload_versions v JOIN workloads w ON w.id = v.workload_id
		WHERE w.name = 'rs-dispatcher-framework' AND v.version = '1.1.140'`).Scan(&build, &commit); err != nil {
		t.Fatal(err)
	}
	if build != "build-134" || commit != "cd7673d9da7e164d3f127f210b03f2facc2d8a6b" {
		t.Errorf("rs-dispatcher-framework 1.1.140: build %q commit %q", build, commit)
	}
	// The README's Reconciler, with its message's trailing newline dropped.
	var host, name, typ, sha, status, msg string
	if err := st.Read().QueryRow(ctx, `SELECT h.name, r.name, r.type, d.commit_sha, d.status, d.message
		FROM reconcilers r JOIN hosts h ON h.id = r.host_id JOIN deployments d ON d.id = r.current_deployment_id`).
		Scan(&host, &name, &typ, &sha, &status, &msg); err != nil {
		t.Fatal(err)
	}
	if host != "kalypso-rg-flux" || name != "kalypso-rg-flux-hello-world" || typ != "flux" || sha != shaA || status != "success" || msg != "Resource is Ready" {
		t.Errorf("reconciler stored as %q %q %q %q %q %q", host, name, typ, sha, status, msg)
	}
	// Its endpoint (kalypso-gitops/dev/drone) is no sample's target's: it
	// counts as a host of none.
	if hts := hostTargets(t, st); len(hts) != 0 {
		t.Errorf("HostTargets = %+v, want none", hts)
	}
}

// The controller reports what it did as events.
func checkFixtureEvents(t *testing.T, h *harness) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		seen := map[string]bool{}
		for _, ns := range []string{h.ns, h.other} {
			var evs eventsv1.EventList
			if err := h.c.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
				return false, err.Error()
			}
			for _, e := range evs.Items {
				if e.ReportingController == controller.Name {
					seen[e.Regarding.Kind+"/"+e.Reason] = true
				}
			}
		}
		ok := seen["DeploymentDescriptor/"+controller.ReasonCommitPending] && seen["Reconciler/"+controller.ReasonStored] &&
			seen["AzureResourceGraph/"+controller.ReasonAccepted]
		return ok, "events seen: " + strings.Join(keys(seen), ", ")
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
