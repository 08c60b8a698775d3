package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/sources/arg"
)

// acceptedMessage is the Ready message of a valid AzureResourceGraph in a
// controller started without pollers.
const acceptedMessage = "the configuration is valid; this controller runs without Azure Resource Graph pollers, so nothing is polled"

// AzureResourceGraphReconciler runs one Azure Resource Graph poller per
// AzureResourceGraph resource and reports each poll on the resource's
// status. Deleting the resource stops its poller and retires the
// reconcilers it reported (a finalizer holds it until then). Without
// Pollers it only validates.
type AzureResourceGraphReconciler struct {
	client.Client
	Ingest   *ingest.Service
	Pollers  *arg.Manager
	Recorder recorder.EventRecorder
	// polled carries the resources whose poller finished a poll.
	polled chan event.TypedGenericEvent[*v1alpha1.AzureResourceGraph]
}

// SetupWithManager registers the controller.
func (r *AzureResourceGraphReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("azureresourcegraph").
		For(&v1alpha1.AzureResourceGraph{}, builder.WithPredicates(specChanged)).
		WithOptions(opts)
	if r.Pollers != nil {
		r.polled = make(chan event.TypedGenericEvent[*v1alpha1.AzureResourceGraph], 1024)
		r.Pollers.Notify(r.notify)
		b = b.WatchesRawSource(source.Channel(r.polled, &handler.TypedEnqueueRequestForObject[*v1alpha1.AzureResourceGraph]{}))
	}
	return b.Complete(r)
}

// notify asks for the status of a Kubernetes-origin configuration to be
// updated after a poll; it never blocks the poller.
func (r *AzureResourceGraphReconciler) notify(key string, _ arg.Result) {
	ns, name, ok := strings.Cut(key, "/")
	if !ok {
		return // a configuration from a file or the API
	}
	obj := &v1alpha1.AzureResourceGraph{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	select {
	case r.polled <- event.TypedGenericEvent[*v1alpha1.AzureResourceGraph]{Object: obj}:
	default: // the next poll updates it
	}
}

// Reasons of an AzureResourceGraph's Ready condition.
const (
	// ReasonPolling: the first poll is under way.
	ReasonPolling = "Polling"
	// ReasonPolled: the latest poll succeeded.
	ReasonPolled = "Polled"
	// ReasonPollFailed: the latest poll failed; retried with backoff.
	ReasonPollFailed = "PollFailed"
)

// Reconcile starts, reconfigures or stops the poller of one
// AzureResourceGraph and reports its latest poll on it.
func (r *AzureResourceGraphReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	defer func() { err = unlessStopping(ctx, err) }()
	var a v1alpha1.AzureResourceGraph
	if err := r.Get(ctx, req.NamespacedName, &a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	key := types.NamespacedName{Namespace: a.Namespace, Name: a.Name}.String()
	if !a.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.remove(ctx, &a, key)
	}
	if r.Pollers != nil && !controllerutil.ContainsFinalizer(&a, Finalizer) {
		controllerutil.AddFinalizer(&a, Finalizer)
		if err := r.Update(ctx, &a, client.FieldOwner(Name)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	before := a.DeepCopy()
	defer func() {
		if perr := patchStatus(ctx, r.Client, &a, before); perr != nil {
			err = errors.Join(err, fmt.Errorf("write status: %w", perr))
		}
	}()
	gen := a.Generation
	a.Status.ObservedGeneration = gen
	cfg, err := arg.ConfigFrom(&a)
	if verr, ok := asValidation(err); ok {
		if r.Pollers != nil {
			r.Pollers.Remove(key)
		}
		markStalled(r.Recorder, &a, &a.Status.Conditions, gen, ReasonInvalidSpec, actionValidate, fieldErrors(verr))
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if r.Pollers == nil {
		if markReady(&a.Status.Conditions, gen, ReasonAccepted, acceptedMessage) {
			emit(r.Recorder, &a, corev1.EventTypeNormal, ReasonAccepted, actionValidate, acceptedMessage)
		}
		return ctrl.Result{}, nil
	}
	r.Pollers.Set(arg.OriginKubernetes, cfg)
	res, polled := r.Pollers.Result(key)
	switch {
	case !polled:
		meta.RemoveStatusCondition(&a.Status.Conditions, StalledCondition)
		setReady(&a.Status.Conditions, gen, metav1.ConditionUnknown, ReasonPolling,
			fmt.Sprintf("polling Azure Resource Graph every %s; the first poll is under way", cfg.Interval))
	case res.Err != nil:
		a.Status.LastPollTime = &metav1.Time{Time: res.Started.Add(res.Duration)}
		a.Status.LastPoll = res.Summary()
		markRetrying(r.Recorder, &a, &a.Status.Conditions, gen, ReasonPollFailed, actionPoll, res.Message())
	default:
		a.Status.LastPollTime = &metav1.Time{Time: res.Started.Add(res.Duration)}
		a.Status.LastPoll = res.Summary()
		if markReady(&a.Status.Conditions, gen, ReasonPolled, res.Message()) && (res.Changed > 0 || res.Retired > 0) {
			emit(r.Recorder, &a, corev1.EventTypeNormal, ReasonPolled, actionPoll, res.Message())
		}
	}
	return ctrl.Result{}, nil
}

// actionPoll is the event action of a poll.
const actionPoll = "Poll"

// remove stops a deleted resource's poller, retires the reconcilers it
// reported, then lets the API server remove the resource.
func (r *AzureResourceGraphReconciler) remove(ctx context.Context, a *v1alpha1.AzureResourceGraph, key string) error {
	if !controllerutil.ContainsFinalizer(a, Finalizer) {
		return nil
	}
	if r.Pollers != nil {
		r.Pollers.Remove(key)
	}
	source := arg.Config{Namespace: a.Namespace, Name: a.Name}.Source()
	retired, err := r.Ingest.RetireMissing(ctx, source, nil)
	if err != nil {
		return fmt.Errorf("retire the reconcilers of %s: %w", key, err)
	}
	if len(retired) > 0 {
		ctrl.LoggerFrom(ctx).Info("AzureResourceGraph deleted: its reconcilers are retired", "reconcilers", len(retired))
	}
	controllerutil.RemoveFinalizer(a, Finalizer)
	return client.IgnoreNotFound(r.Update(ctx, a, client.FieldOwner(Name)))
}

// SecretReader reads AzureResourceGraph service principals from Secrets
// through c (uncached: the controller watches no Secrets). The RBAC lets
// the controller read Secrets only in the namespaces the chart lists.
func SecretReader(c client.Reader) arg.SecretReader {
	return func(ctx context.Context, namespace, name string) (arg.ServicePrincipal, error) {
		var s corev1.Secret
		if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
			return arg.ServicePrincipal{}, fmt.Errorf("read Secret %s/%s: %w", namespace, name, err)
		}
		sp, err := arg.ServicePrincipalFrom(s.Data)
		if err != nil {
			return arg.ServicePrincipal{}, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
		}
		return sp, nil
	}
}

// storedEvery is how often the controller reads the AzureResourceGraphs
// pushed through the API.
const storedEvery = 30 * time.Second
