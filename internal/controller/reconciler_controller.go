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
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// ReconcilerReconciler stores Reconciler resources: what a reconciler on a
// host applied, the real state. A finalizer makes deleting the resource
// retire the reconciler in the store: it stops counting as a host of its
// target and its history stays. Creating it again restores it.
type ReconcilerReconciler struct {
	client.Client
	Ingest   *ingest.Service
	Recorder recorder.EventRecorder
}

// SetupWithManager registers the controller.
func (r *ReconcilerReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("reconciler").
		For(&v1alpha1.Reconciler{}, builder.WithPredicates(specChanged)).
		WithOptions(opts).
		Complete(r)
}

// Reconcile stores (or retires) one reconciler and reports the outcome on
// it.
func (r *ReconcilerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	defer func() { err = unlessStopping(ctx, err) }()
	log := ctrl.LoggerFrom(ctx)
	var rec v1alpha1.Reconciler
	if err := r.Get(ctx, req.NamespacedName, &rec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rec.DeletionTimestamp.IsZero() {
		return r.retire(ctx, &rec)
	}
	if !controllerutil.ContainsFinalizer(&rec, Finalizer) {
		controllerutil.AddFinalizer(&rec, Finalizer)
		if err := r.Update(ctx, &rec, client.FieldOwner(Name)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	before := rec.DeepCopy()
	defer func() {
		if perr := patchStatus(ctx, r.Client, &rec, before); perr != nil {
			err = errors.Join(err, fmt.Errorf("write status: %w", perr))
		}
	}()
	gen := rec.Generation

	rep, err := resource.Report(&rec)
	if verr, ok := asValidation(err); ok {
		rec.Status.ObservedGeneration = gen
		markStalled(r.Recorder, &rec, &rec.Status.Conditions, gen, ReasonInvalidSpec, actionValidate, fieldErrors(verr))
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}

	res, err := r.Ingest.ApplyReport(ctx, rep)
	if err != nil {
		// A generation already stored stays Ready: storing it again
		// (a resync, a new leader) failed, what it says is in the store.
		if c := readyFor(rec.Status.Conditions, gen); c == nil || c.Reason != ReasonStored {
			markRetrying(r.Recorder, &rec, &rec.Status.Conditions, gen, ReasonStoreUnavailable, actionStore,
				"storing the report failed, retrying with backoff: "+err.Error())
		}
		return ctrl.Result{}, fmt.Errorf("store report: %w", err)
	}
	msg := fmt.Sprintf("reconciler %s on host %s reports GitOps commit %s: %s",
		rep.Reconciler, rep.Host, rep.Commit, rep.Status)
	if rep.Registered() {
		msg = fmt.Sprintf("reconciler %s on host %s is registered; its host counts as not yet reported until spec.deployment says what it applied",
			rep.Reconciler, rep.Host)
	}
	rec.Status.ObservedGeneration = gen
	if markReady(&rec.Status.Conditions, gen, ReasonStored, msg) || res.Changed {
		emit(r.Recorder, &rec, corev1.EventTypeNormal, ReasonStored, actionStore, msg)
	}
	if res.Changed {
		log.V(1).Info("report stored", "host", rep.Host, "reconciler", rep.Reconciler, "commit", rep.Commit, "status", rep.Status)
	}
	return ctrl.Result{}, nil
}

// retire retires a deleted reconciler in the store, then lets the API
// server remove the resource.
func (r *ReconcilerReconciler) retire(ctx context.Context, rec *v1alpha1.Reconciler) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(rec, Finalizer) {
		return ctrl.Result{}, nil
	}
	host, name := reconcilerIdentity(rec)
	if host != "" && name != "" {
		retired, err := r.Ingest.RetireReconciler(ctx, host, name)
		if err != nil {
			before := rec.DeepCopy()
			markRetrying(r.Recorder, rec, &rec.Status.Conditions, rec.Generation, ReasonStoreUnavailable, actionRetire,
				"retiring the reconciler failed, retrying with backoff: "+err.Error())
			if perr := patchStatus(ctx, r.Client, rec, before); perr != nil {
				ctrl.LoggerFrom(ctx).Error(perr, "cannot report the store failure on the reconciler")
			}
			return ctrl.Result{}, fmt.Errorf("retire reconciler: %w", err)
		}
		if retired {
			emit(r.Recorder, rec, corev1.EventTypeNormal, "Retired", actionRetire,
				fmt.Sprintf("reconciler %s on host %s no longer counts as a host of its target; its history stays", name, host))
			ctrl.LoggerFrom(ctx).Info("reconciler retired", "host", host, "reconciler", name)
		}
	}
	controllerutil.RemoveFinalizer(rec, Finalizer)
	if err := r.Update(ctx, rec, client.FieldOwner(Name)); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// reconcilerIdentity is the (host, reconciler name) a Reconciler is stored
// under, as resource.Report derives it; the CRD keeps both
// immutable.
func reconcilerIdentity(rec *v1alpha1.Reconciler) (host, name string) {
	host = strings.TrimSpace(rec.Spec.HostName)
	name = strings.TrimSpace(rec.Spec.ReconcilerName)
	if name == "" {
		name = rec.Name
	}
	return host, name
}
