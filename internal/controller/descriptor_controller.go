package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// DescriptorReconciler stores DeploymentDescriptors: the desired state.
//
// A descriptor's GitOps commit is spec.gitOpsCommitId, else the
// hub.kalypso.io/gitops-commit annotation, else the lastAppliedRevision of
// the Flux Kustomization that applied it (its kustomize.toolkit.fluxcd.io
// labels), read only when that Kustomization has settled; else the
// descriptor is stored with its commit pending and the Kustomization
// controller resolves it when the Kustomization settles.
type DescriptorReconciler struct {
	client.Client
	Ingest   *ingest.Service
	Recorder recorder.EventRecorder
}

// SetupWithManager registers the controller. requeue carries descriptors
// that the Kustomization controller wants reconciled again.
func (r *DescriptorReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options, requeue <-chan event.TypedGenericEvent[*v1alpha1.DeploymentDescriptor]) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("deploymentdescriptor").
		For(&v1alpha1.DeploymentDescriptor{}, builder.WithPredicates(specChanged)).
		WatchesRawSource(source.Channel(requeue, &handler.TypedEnqueueRequestForObject[*v1alpha1.DeploymentDescriptor]{})).
		WithOptions(opts).
		Complete(r)
}

// Reconcile stores one descriptor and reports the outcome on it. The
// status is written once, when the reconciliation ends.
func (r *DescriptorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	defer func() { err = unlessStopping(ctx, err) }()
	log := ctrl.LoggerFrom(ctx)
	var dd v1alpha1.DeploymentDescriptor
	if err := r.Get(ctx, req.NamespacedName, &dd); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !dd.DeletionTimestamp.IsZero() {
		// The desired state is history: deleting a descriptor removes
		// nothing from the store.
		return ctrl.Result{}, nil
	}
	before := dd.DeepCopy()
	defer func() {
		if perr := patchStatus(ctx, r.Client, &dd, before); perr != nil {
			err = errors.Join(err, fmt.Errorf("write status: %w", perr))
		}
	}()
	gen := dd.Generation
	stored := isStored(&dd)

	commit, err := r.commitSource(ctx, &dd, stored)
	if err != nil {
		return ctrl.Result{}, err
	}
	if commit.skip {
		log.V(1).Info("descriptor already stored with its commit pending; nothing new to resolve it", "why", commit.why)
		return ctrl.Result{}, nil
	}

	d, err := resource.Descriptor(&dd, commit.flux)
	if verr, ok := asValidation(err); ok {
		dd.Status.ObservedGeneration = gen
		dd.Status.GitOpsCommitID = "" // this generation is not stored
		markStalled(r.Recorder, &dd, &dd.Status.Conditions, gen, ReasonInvalidSpec, actionValidate, fieldErrors(verr))
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}

	res, err := r.Ingest.ApplyDescriptor(ctx, d)
	var conflict *ingest.ConflictError
	switch {
	case errors.As(err, &conflict):
		dd.Status.ObservedGeneration = gen
		dd.Status.GitOpsCommitID = "" // this generation is not stored
		markStalled(r.Recorder, &dd, &dd.Status.Conditions, gen, ReasonConflict, actionStore, conflict.Error())
		return ctrl.Result{}, nil
	case err != nil:
		// A generation already stored stays Ready: storing it again
		// (a resync, a new leader) failed, what it says is in the store.
		if !stored {
			markRetrying(r.Recorder, &dd, &dd.Status.Conditions, gen, ReasonStoreUnavailable, actionStore,
				"storing the descriptor failed, retrying with backoff: "+err.Error())
		}
		return ctrl.Result{}, fmt.Errorf("store descriptor: %w", err)
	}

	what := fmt.Sprintf("version %s of workload %s assigned to target %s in environment %s",
		d.Version, d.Workload, d.Target, d.Environment)
	reason, msg := ReasonStored, what+" at GitOps commit "+res.Commit
	if res.Commit == "" {
		reason, msg = ReasonCommitPending, what+"; GitOps commit pending: "+commit.why
	}
	dd.Status.ObservedGeneration = gen
	dd.Status.GitOpsCommitID = res.Commit
	if markReady(&dd.Status.Conditions, gen, reason, msg) || res.Changed {
		emit(r.Recorder, &dd, corev1.EventTypeNormal, reason, actionStore, msg)
	}
	if res.Changed {
		log.Info("descriptor stored", "workload", d.Workload, "version", d.Version, "target", d.Target,
			"environment", d.Environment, "commit", res.Commit)
	}
	return ctrl.Result{}, nil
}

// commitChoice is where a descriptor's commit comes from on this pass.
type commitChoice struct {
	// flux is passed to resource.Descriptor: used only when neither
	// spec.gitOpsCommitId nor the annotation gives a commit.
	flux resource.FluxApplied
	// why the commit is pending, for the condition's message.
	why string
	// skip: this generation is stored pending and nothing new is known;
	// storing it again could only record it anew.
	skip bool
}

// commitSource decides which Flux revision, if any, is this descriptor's
// GitOps commit.
//
// A generation already stored keeps the commit it was stored with (a
// later revision of its Kustomization did not carry it). A generation not
// yet stored takes its Kustomization's lastAppliedRevision only when the
// Kustomization has settled (Ready, observedGeneration current,
// lastAttemptedRevision == lastAppliedRevision): while it is applying a
// new revision, lastAppliedRevision is still the previous one.
func (r *DescriptorReconciler) commitSource(ctx context.Context, dd *v1alpha1.DeploymentDescriptor, stored bool) (commitChoice, error) {
	if strings.TrimSpace(dd.Spec.GitOpsCommitID) != "" || strings.TrimSpace(dd.Annotations[v1alpha1.GitOpsCommitAnnotation]) != "" {
		return commitChoice{}, nil
	}
	if stored && dd.Status.GitOpsCommitID != "" {
		return commitChoice{flux: resource.FluxApplied{Revision: dd.Status.GitOpsCommitID}}, nil
	}
	src := resource.FluxSourceOf(dd.Labels)
	if src == "" {
		return commitChoice{
			why: "it has no spec.gitOpsCommitId, no " + v1alpha1.GitOpsCommitAnnotation +
				" annotation and no " + resource.FluxNameLabel + " label naming the Flux Kustomization that applied it",
			skip: stored,
		}, nil
	}
	ns, name, _ := strings.Cut(src, "/")
	k, err := getKustomization(ctx, r.Client, ns, name)
	if err != nil {
		return commitChoice{}, fmt.Errorf("read Flux Kustomization %s: %w", src, err)
	}
	applied, why := settledRevision(k)
	if applied.Revision == "" {
		return commitChoice{why: fmt.Sprintf("Flux Kustomization %s %s", src, why), skip: stored}, nil
	}
	return commitChoice{flux: applied}, nil
}

// isStored reports whether the descriptor's current generation is in the
// store: its Ready condition for this generation says Stored or
// CommitPending. (A failed attempt to store it again leaves that
// condition as it is.)
func isStored(dd *v1alpha1.DeploymentDescriptor) bool {
	c := readyFor(dd.Status.Conditions, dd.Generation)
	return c != nil && (c.Reason == ReasonStored || c.Reason == ReasonCommitPending)
}
