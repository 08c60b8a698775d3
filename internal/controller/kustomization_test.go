package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/resource"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A descriptor delivered by Flux takes the revision its Kustomization
// applied, without racing Flux's status update: while the Kustomization
// is applying, the descriptor is stored pending; when it settles, the
// pending assignments get its lastAppliedRevision.
func TestFluxRevisionResolvesPendingDescriptors(t *testing.T) {
	for _, engine := range testenv.Engines {
		t.Run(engine, func(t *testing.T) {
			st := testenv.NewStore(t, engine)
			h := startController(t, st)
			ctx := context.Background()
			ks := h.kustomization(t, "apps")
			source := h.other + "/apps"

			// Flux has not applied anything yet: pending.
			d1 := fluxDescriptor(h.ns, "drone", "drone", "1.0.0", h.other, "apps")
			create(t, h.c, d1)
			got := h.waitDescriptor(t, h.ns, "drone", controller.ReasonCommitPending)
			if msg := ready(got.Status.Conditions, got.Generation).Message; !strings.Contains(msg, "Flux Kustomization "+source+" has not applied a revision yet") {
				t.Errorf("pending message %q", msg)
			}
			wantAssignments(t, st, source, "drone 1.0.0 pending")

			// Flux settles on revision A: resolved, on the resource too.
			h.setKustomizationStatus(t, ks, "True", "ReconciliationSucceeded", "main@sha1:"+shaA, "main@sha1:"+shaA)
			got = h.waitDescriptor(t, h.ns, "drone", controller.ReasonStored)
			if got.Status.GitOpsCommitID != shaA {
				t.Errorf("status.gitOpsCommitId = %q, want %s", got.Status.GitOpsCommitID, shaA)
			}
			wantAssignments(t, st, source, "drone 1.0.0 "+shaA)

			// Flux starts applying revision B, which changes the descriptor
			// and carries another one that is pruned before B settles.
			// lastAppliedRevision is still A: it must not be taken.
			h.setKustomizationStatus(t, ks, "Unknown", "Progressing", "main@sha1:"+shaB, "main@sha1:"+shaA)
			got.Spec.WorkloadVersion = v1alpha1.WorkloadVersion{Version: "2.0.0", Build: "build-2.0.0"}
			if err := h.c.Update(ctx, got); err != nil {
				t.Fatal(err)
			}
			pruned := fluxDescriptor(h.ns, "pruned", "pruned", "1.0.0", h.other, "apps")
			create(t, h.c, pruned)
			got = h.waitDescriptor(t, h.ns, "drone", controller.ReasonCommitPending)
			if msg := ready(got.Status.Conditions, got.Generation).Message; !strings.Contains(msg, "is applying revision main@sha1:"+shaB+" (last applied main@sha1:"+shaA+")") {
				t.Errorf("pending message %q", msg)
			}
			h.waitDescriptor(t, h.ns, "pruned", controller.ReasonCommitPending)
			if err := h.c.Delete(ctx, pruned); err != nil {
				t.Fatal(err)
			}
			h.waitGone(t, pruned)
			wantAssignments(t, st, source, "drone 1.0.0 "+shaA, "drone 2.0.0 pending", "pruned 1.0.0 pending")

			// B settles: both get it, the deleted one through the
			// Kustomization controller alone.
			h.setKustomizationStatus(t, ks, "True", "ReconciliationSucceeded", "main@sha1:"+shaB, "main@sha1:"+shaB)
			got = h.waitDescriptor(t, h.ns, "drone", controller.ReasonStored)
			if got.Status.GitOpsCommitID != shaB || got.Status.ObservedGeneration != 2 {
				t.Errorf("status %+v, want commit %s at generation 2", got.Status, shaB)
			}
			eventually(t, 10*time.Second, func() (bool, string) {
				n := count(t, st, "assignments", "commit_sha IS NULL")
				return n == 0, "pending assignments remain"
			})
			wantAssignments(t, st, source, "drone 1.0.0 "+shaA, "drone 2.0.0 "+shaB, "pruned 1.0.0 "+shaB)

			// While settled, a new descriptor takes the revision at once; the
			// annotation overrides it.
			lab := fluxDescriptor(h.ns, "lab", "lab", "1.0.0", h.other, "apps")
			pinned := fluxDescriptor(h.ns, "pinned", "pinned", "1.0.0", h.other, "apps")
			pinned.Annotations = map[string]string{v1alpha1.GitOpsCommitAnnotation: "main/" + shaC}
			create(t, h.c, lab, pinned)
			if got := h.waitDescriptor(t, h.ns, "lab", controller.ReasonStored); got.Status.GitOpsCommitID != shaB {
				t.Errorf("lab: commit %q, want %s", got.Status.GitOpsCommitID, shaB)
			}
			if got := h.waitDescriptor(t, h.ns, "pinned", controller.ReasonStored); got.Status.GitOpsCommitID != shaC {
				t.Errorf("pinned: commit %q, want %s", got.Status.GitOpsCommitID, shaC)
			}

			final := []string{"drone 1.0.0 " + shaA, "drone 2.0.0 " + shaB, "lab 1.0.0 " + shaB, "pinned 1.0.0 " + shaC, "pruned 1.0.0 " + shaB}
			wantAssignments(t, st, source, final...)

			// A later revision C leaves these descriptors alone: it does not
			// re-assign them, not even when a restarted controller
			// reconciles every descriptor again.
			h.setKustomizationStatus(t, ks, "True", "ReconciliationSucceeded", "main@sha1:"+shaC, "main@sha1:"+shaC)
			before := reconciles(t, "deploymentdescriptor")
			h.restart(t)
			eventually(t, 20*time.Second, func() (bool, string) {
				n := reconciles(t, "deploymentdescriptor") - before
				return n >= 3, fmt.Sprintf("%v descriptor reconciliations since the restart, want 3", n)
			})
			waitQuiet(t, h)
			wantAssignments(t, st, source, final...)
			for name, commit := range map[string]string{"drone": shaB, "lab": shaB, "pinned": shaC} {
				if got := h.waitDescriptor(t, h.ns, name, controller.ReasonStored); got.Status.GitOpsCommitID != commit {
					t.Errorf("%s after the restart: commit %q, want %s", name, got.Status.GitOpsCommitID, commit)
				}
			}
		})
	}
}

// Without the Flux CRD the controller runs, skips the Kustomization watch,
// and stores Flux-delivered descriptors pending.
func TestWithoutFluxCRD(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := startController(t, st, func(o *controller.Options, _ *rest.Config) {
		o.MapperProvider = func(cfg *rest.Config, c *http.Client) (meta.RESTMapper, error) {
			m, err := apiutil.NewDynamicRESTMapper(cfg, c)
			return withoutGroup{RESTMapper: m, group: controller.KustomizationGVK.Group}, err
		}
	})
	create(t, h.c, fluxDescriptor(h.ns, "drone", "drone", "1.0.0", h.other, "apps"))
	got := h.waitDescriptor(t, h.ns, "drone", controller.ReasonCommitPending)
	if msg := ready(got.Status.Conditions, got.Generation).Message; !strings.Contains(msg, "the Flux Kustomization CRD is not installed") {
		t.Errorf("pending message %q", msg)
	}
	wantAssignments(t, st, h.other+"/apps", "drone 1.0.0 pending")
}

// withoutGroup is a REST mapper that does not know one API group, as if
// its CRDs were not installed.
type withoutGroup struct {
	meta.RESTMapper
	group string
}

func (m withoutGroup) noMatch(gk schema.GroupKind) error {
	return &meta.NoKindMatchError{GroupKind: gk}
}

func (m withoutGroup) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if gk.Group == m.group {
		return nil, m.noMatch(gk)
	}
	return m.RESTMapper.RESTMapping(gk, versions...)
}

func (m withoutGroup) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	if gk.Group == m.group {
		return nil, m.noMatch(gk)
	}
	return m.RESTMapper.RESTMappings(gk, versions...)
}

func (m withoutGroup) KindFor(r schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	if r.Group == m.group {
		return schema.GroupVersionKind{}, &meta.NoResourceMatchError{PartialResource: r}
	}
	return m.RESTMapper.KindFor(r)
}

func fluxDescriptor(ns, name, target, version, ksNamespace, ksName string) *v1alpha1.DeploymentDescriptor {
	d := descriptor(ns, name, target, version)
	d.Labels = map[string]string{resource.FluxNameLabel: ksName, resource.FluxNamespaceLabel: ksNamespace}
	return d
}

// kustomization creates a Flux Kustomization in the harness's other
// namespace, as Flux users write them.
func (h *harness) kustomization(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	k := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"interval":  "10m",
			"path":      "./dev",
			"prune":     true,
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "gitops"},
		},
	}}
	k.SetGroupVersionKind(controller.KustomizationGVK)
	k.SetNamespace(h.other)
	k.SetName(name)
	create(t, h.c, k)
	return k
}

// setKustomizationStatus writes a Kustomization's status as
// kustomize-controller does, through the status subresource.
func (h *harness) setKustomizationStatus(t *testing.T, k *unstructured.Unstructured, ready, reason, attempted, applied string) {
	t.Helper()
	ctx := context.Background()
	if err := h.c.Get(ctx, client.ObjectKeyFromObject(k), k); err != nil {
		t.Fatal(err)
	}
	k.Object["status"] = map[string]any{
		"observedGeneration":    k.GetGeneration(),
		"lastAttemptedRevision": attempted,
		"lastAppliedRevision":   applied,
		"conditions": []any{map[string]any{
			"type": "Ready", "status": ready, "reason": reason,
			"message":            "Applied revision: " + applied,
			"lastTransitionTime": "2026-01-01T00:00:00Z",
			"observedGeneration": k.GetGeneration(),
		}},
	}
	if err := h.c.Status().Update(ctx, k); err != nil {
		t.Fatal(err)
	}
}

// waitQuiet waits until the store's row counts have not changed for a
// second.
func waitQuiet(t *testing.T, h *harness) {
	t.Helper()
	last, since := "", time.Now()
	eventually(t, 20*time.Second, func() (bool, string) {
		var b strings.Builder
		for _, table := range []string{"assignments", "deployments", "deployment_history", "reconcilers", "resolutions"} {
			fmt.Fprintf(&b, "%s=%d ", table, count(t, h.st, table))
		}
		if b.String() != last {
			last, since = b.String(), time.Now()
		}
		return time.Since(since) > time.Second, "store still changing: " + last
	})
}

// wantAssignments checks the assignments recorded from a Kustomization, as
// "target version commit-or-pending", by target and time.
func wantAssignments(t *testing.T, st *store.Store, fluxSource string, want ...string) {
	t.Helper()
	rows, err := st.Read().Query(context.Background(), `SELECT t.name, v.version, COALESCE(a.commit_sha, 'pending')
		FROM assignments a JOIN targets t ON t.id = a.target_id JOIN workload_versions v ON v.id = a.version_id
		WHERE a.flux_source = $1 ORDER BY t.name, a.assigned_at, a.id`, fluxSource)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var target, version, commit string
		if err := rows.Scan(&target, &version, &commit); err != nil {
			t.Fatal(err)
		}
		got = append(got, target+" "+version+" "+commit)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("assignments of %s:\n%s\nwant:\n%s", fluxSource, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
