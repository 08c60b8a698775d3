package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// unknownReconcilerRetry is how soon a Deployment whose reconciler the hub
// cannot place is tried again: the reconciler may be registered later.
const unknownReconcilerRetry = time.Minute

// DeploymentReconciler stores Deployment resources: the original system's
// report of one reconciler's commit, by reconciler name. Deleting one
// changes nothing stored: it was a report, not the reconciler.
type DeploymentReconciler struct {
	client.Client
	Ingest   *ingest.Service
	Recorder recorder.EventRecorder
}

// SetupWithManager registers the controller.
func (r *DeploymentReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("deployment").
		For(&v1alpha1.Deployment{}, builder.WithPredicates(specChanged)).
		WithOptions(opts).
		Complete(r)
}

// Reconcile stores one Deployment and reports the outcome on it.
func (r *DeploymentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	defer func() { err = unlessStopping(ctx, err) }()
	var d v1alpha1.Deployment
	if err := r.Get(ctx, req.NamespacedName, &d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !d.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := d.DeepCopy()
	defer func() {
		if perr := patchStatus(ctx, r.Client, &d, before); perr != nil {
			err = errors.Join(err, fmt.Errorf("write status: %w", perr))
		}
	}()
	gen := d.Generation
	d.Status.ObservedGeneration = gen
	rep, err := resource.Deployment(&d)
	if verr, ok := asValidation(err); ok {
		markStalled(r.Recorder, &d, &d.Status.Conditions, gen, ReasonInvalidSpec, actionValidate, fieldErrors(verr))
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	out, err := r.Ingest.ApplyDeployments(ctx, []model.DeploymentReport{rep})
	var conflict *ingest.ConflictError
	switch {
	case errors.As(err, &conflict):
		// The reconciler is unknown or its name ambiguous: stalled until
		// the resource changes, tried again now and then in case the hub
		// learns the reconciler.
		markStalled(r.Recorder, &d, &d.Status.Conditions, gen, ReasonConflict, actionStore, conflict.Error())
		return ctrl.Result{RequeueAfter: unknownReconcilerRetry}, nil
	case err != nil:
		if verr, ok := asValidation(err); ok {
			markStalled(r.Recorder, &d, &d.Status.Conditions, gen, ReasonInvalidSpec, actionValidate, fieldErrors(verr))
			return ctrl.Result{}, nil
		}
		markRetrying(r.Recorder, &d, &d.Status.Conditions, gen, ReasonStoreUnavailable, actionStore,
			"storing the report failed, retrying with backoff: "+err.Error())
		return ctrl.Result{}, fmt.Errorf("store deployment: %w", err)
	}
	d.Status.HostName = out[0].Host
	msg := fmt.Sprintf("reconciler %s on host %s reports GitOps commit %s: %s", rep.Reconciler, out[0].Host, rep.Commit, rep.Status)
	if markReady(&d.Status.Conditions, gen, ReasonStored, msg) || out[0].Changed {
		emit(r.Recorder, &d, corev1.EventTypeNormal, ReasonStored, actionStore, msg)
	}
	return ctrl.Result{}, nil
}
