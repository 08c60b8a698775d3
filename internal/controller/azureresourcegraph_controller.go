package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// acceptedMessage is the Ready message of a valid AzureResourceGraph.
const acceptedMessage = "the configuration is valid; polling Azure Resource Graph is not implemented yet " +
	"(it arrives with the sources issue), so nothing is polled or stored from it"

// AzureResourceGraphReconciler validates AzureResourceGraph resources. It
// does not poll Azure Resource Graph and reads no Secret.
type AzureResourceGraphReconciler struct {
	client.Client
	Recorder recorder.EventRecorder
}

// SetupWithManager registers the controller.
func (r *AzureResourceGraphReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("azureresourcegraph").
		For(&v1alpha1.AzureResourceGraph{}, builder.WithPredicates(specChanged)).
		WithOptions(opts).
		Complete(r)
}

// Reconcile validates one AzureResourceGraph and reports the outcome on it.
func (r *AzureResourceGraphReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	defer func() { err = unlessStopping(ctx, err) }()
	var arg v1alpha1.AzureResourceGraph
	if err := r.Get(ctx, req.NamespacedName, &arg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !arg.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := arg.DeepCopy()
	gen := arg.Generation
	arg.Status.ObservedGeneration = gen
	err = resource.ValidateAzureResourceGraph(&arg)
	if verr, ok := asValidation(err); ok {
		msg := fieldErrors(verr)
		if setReady(&arg.Status.Conditions, gen, metav1.ConditionFalse, ReasonInvalidSpec, msg) {
			emit(r.Recorder, &arg, corev1.EventTypeWarning, ReasonInvalidSpec, actionValidate, msg)
		}
	} else if err != nil {
		return ctrl.Result{}, err
	} else if setReady(&arg.Status.Conditions, gen, metav1.ConditionTrue, ReasonAccepted, acceptedMessage) {
		emit(r.Recorder, &arg, corev1.EventTypeNormal, ReasonAccepted, actionValidate, acceptedMessage)
	}
	return ctrl.Result{}, patchStatus(ctx, r.Client, &arg, before)
}
