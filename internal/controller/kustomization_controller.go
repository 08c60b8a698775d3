package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// KustomizationGVK is the Flux Kustomization the controller reads.
var KustomizationGVK = schema.GroupVersionKind{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Kind: "Kustomization"}

// KustomizationReconciler watches Flux Kustomizations, read-only. When one
// settles on a revision, it gives that revision to the descriptors it
// applied that are still pending (ingest.ResolveFluxRevision), then has
// those descriptors reconciled again so their status shows the commit.
type KustomizationReconciler struct {
	client.Client
	Ingest *ingest.Service
	// Requeue receives the descriptors to reconcile again.
	Requeue chan<- event.TypedGenericEvent[*v1alpha1.DeploymentDescriptor]
	// Now is the source of the time a revision is taken as applied at.
	Now func() time.Time
}

// SetupWithManager registers the controller.
func (r *KustomizationReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	k := &unstructured.Unstructured{}
	k.SetGroupVersionKind(KustomizationGVK)
	return ctrl.NewControllerManagedBy(mgr).
		Named("kustomization").
		For(k, builder.WithPredicates(settledChanged)).
		WithOptions(opts).
		Complete(r)
}

// settledChanged passes a Kustomization when it is created (or listed at
// start) and when it settles on a revision it had not settled on before.
var settledChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		newRev, _ := settledRevision(asUnstructured(e.ObjectNew))
		if newRev.Revision == "" {
			return false
		}
		oldRev, _ := settledRevision(asUnstructured(e.ObjectOld))
		return oldRev.Revision != newRev.Revision
	},
	DeleteFunc: func(event.DeleteEvent) bool { return false },
}

func asUnstructured(o client.Object) *unstructured.Unstructured {
	u, _ := o.(*unstructured.Unstructured)
	return u
}

// Reconcile resolves the pending descriptors of one Kustomization.
func (r *KustomizationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	defer func() { err = unlessStopping(ctx, err) }()
	log := ctrl.LoggerFrom(ctx)
	k, err := getKustomization(ctx, r.Client, req.Namespace, req.Name)
	if err != nil || k == nil {
		return ctrl.Result{}, err
	}
	applied, why := settledRevision(k)
	if applied.Revision == "" {
		log.V(1).Info("kustomization not settled", "why", why)
		return ctrl.Result{}, nil
	}
	rev := applied.Revision
	src := req.Namespace + "/" + req.Name
	if _, err := model.NormalizeRevision(rev); err != nil {
		// Nothing to retry: the revision is not one the hub can read.
		log.Error(err, "kustomization's status.lastAppliedRevision is not a revision; pending descriptors stay pending", "revision", rev)
		return ctrl.Result{}, nil
	}
	n, err := r.Ingest.ResolveFluxRevision(ctx, src, rev, applied.At)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("resolve descriptors of %s at %s: %w", src, rev, err)
	}
	if n > 0 {
		log.Info("pending descriptors resolved", "revision", rev, "assignments", n)
	}

	var dds v1alpha1.DeploymentDescriptorList
	if err := r.List(ctx, &dds, client.MatchingLabels{
		resource.FluxNameLabel:      req.Name,
		resource.FluxNamespaceLabel: req.Namespace,
	}); err != nil {
		return ctrl.Result{}, err
	}
	for i := range dds.Items {
		dd := &dds.Items[i]
		if dd.Status.GitOpsCommitID != "" && dd.Status.ObservedGeneration == dd.Generation {
			continue
		}
		select {
		case r.Requeue <- event.TypedGenericEvent[*v1alpha1.DeploymentDescriptor]{Object: dd}:
		case <-ctx.Done():
			return ctrl.Result{}, ctx.Err()
		}
	}
	return ctrl.Result{}, nil
}

// getKustomization reads a Kustomization from the API server (not from a
// cache: the descriptor controller must see its current status). It
// returns nil when it does not exist or Flux is not installed.
func getKustomization(ctx context.Context, c client.Client, namespace, name string) (*unstructured.Unstructured, error) {
	k := &unstructured.Unstructured{}
	k.SetGroupVersionKind(KustomizationGVK)
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, k)
	switch {
	case err == nil:
		return k, nil
	case isGone(err), meta.IsNoMatchError(err):
		return nil, nil
	default:
		return nil, err
	}
}

// settledRevision returns a Kustomization's lastAppliedRevision when it
// has settled: Ready=True, status.observedGeneration == metadata.generation
// and lastAttemptedRevision == lastAppliedRevision; with when it applied
// that revision: the firstReconciled time of the revision's entry in
// status.history (Flux 2.5 and later), else when Ready last became True.
// Otherwise it returns no revision and why not.
func settledRevision(k *unstructured.Unstructured) (_ resource.FluxApplied, why string) {
	var none resource.FluxApplied
	if k == nil {
		return none, "does not exist (or the Flux Kustomization CRD is not installed)"
	}
	applied, _, _ := unstructured.NestedString(k.Object, "status", "lastAppliedRevision")
	attempted, _, _ := unstructured.NestedString(k.Object, "status", "lastAttemptedRevision")
	observed, _, _ := unstructured.NestedInt64(k.Object, "status", "observedGeneration")
	ready, reason, since := "Unknown", "", ""
	conds, _, _ := unstructured.NestedSlice(k.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != ReadyCondition {
			continue
		}
		ready, _ = m["status"].(string)
		reason, _ = m["reason"].(string)
		since, _ = m["lastTransitionTime"].(string)
	}
	switch {
	case applied == "":
		return none, "has not applied a revision yet"
	case observed != k.GetGeneration():
		return none, fmt.Sprintf("has not reconciled its latest spec yet (observedGeneration %d, generation %d)", observed, k.GetGeneration())
	case attempted != applied:
		return none, fmt.Sprintf("is applying revision %s (last applied %s)", attempted, applied)
	case ready != "True":
		return none, fmt.Sprintf("is not Ready (Ready=%s %s)", ready, reason)
	}
	history, _, _ := unstructured.NestedSlice(k.Object, "status", "history")
	for _, h := range history {
		m, ok := h.(map[string]any)
		if rev, _, _ := unstructured.NestedString(m, "metadata", "revision"); !ok || rev != applied {
			continue
		}
		if first, _ := m["firstReconciled"].(string); first != "" {
			since = first
		}
		break
	}
	at, _ := time.Parse(time.RFC3339, since) // zero when absent: the hub's time then
	return resource.FluxApplied{Revision: applied, At: at}, ""
}
