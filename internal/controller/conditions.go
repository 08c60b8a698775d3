package controller

import (
	"context"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// Conditions every hub resource carries, as kstatus reads them: Ready,
// and Stalled while a terminal problem (an invalid spec, a conflict with
// the store) waits for the resource to change.
const (
	ReadyCondition   = "Ready"
	StalledCondition = "Stalled"
)

// Reasons of the Ready condition.
const (
	// ReasonStored: what the resource says is in the store.
	ReasonStored = "Stored"
	// ReasonCommitPending: a descriptor is stored, its GitOps commit is
	// not known yet (it is resolved when its Flux Kustomization settles).
	ReasonCommitPending = "CommitPending"
	// ReasonAccepted: an AzureResourceGraph is valid.
	ReasonAccepted = "Accepted"
	// ReasonInvalidSpec: the resource has invalid fields; nothing of it was
	// stored. Terminal until the resource changes.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonConflict: the resource contradicts what is stored (a published
	// version re-published with another build, a commit assigning two
	// versions to one target). Terminal until the resource changes.
	ReasonConflict = "Conflict"
	// ReasonStoreUnavailable: the store failed; retried with backoff.
	ReasonStoreUnavailable = "StoreUnavailable"
)

// Finalizer holds a Reconciler until the controller has retired it in the
// store.
const Finalizer = "hub.kalypso.io/finalizer"

// Event actions (events.k8s.io requires one).
const (
	actionStore    = "Store"
	actionValidate = "Validate"
	actionRetire   = "Retire"
)

// Kubernetes limits: a condition message to 32 KiB, an event note to 1 KiB.
const (
	maxConditionMessage = 32 << 10
	maxEventNote        = 1 << 10
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "..."
	cut := n - len(more)
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// setReady sets the Ready condition for generation gen and reports whether
// its status, reason or message changed.
func setReady(conds *[]metav1.Condition, gen int64, status metav1.ConditionStatus, reason, msg string) bool {
	msg = truncate(msg, maxConditionMessage)
	old := meta.FindStatusCondition(*conds, ReadyCondition)
	changed := old == nil || old.Status != status || old.Reason != reason || old.Message != msg
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               ReadyCondition,
		Status:             status,
		Reason:             reason,
		Message:            msg,
		ObservedGeneration: gen,
	})
	return changed
}

// markReady sets Ready=True and clears Stalled; it reports whether Ready's
// status, reason or message changed.
func markReady(conds *[]metav1.Condition, gen int64, reason, msg string) bool {
	meta.RemoveStatusCondition(conds, StalledCondition)
	return setReady(conds, gen, metav1.ConditionTrue, reason, msg)
}

// markStalled records a terminal problem: Ready=False and Stalled=True with
// the same reason, and a warning event when it is new. Nothing is retried
// until the resource changes.
func markStalled(rec recorder.EventRecorder, obj runtime.Object, conds *[]metav1.Condition, gen int64, reason, action, msg string) {
	msg = truncate(msg, maxConditionMessage)
	meta.SetStatusCondition(conds, metav1.Condition{Type: StalledCondition, Status: metav1.ConditionTrue,
		Reason: reason, Message: msg, ObservedGeneration: gen})
	if setReady(conds, gen, metav1.ConditionFalse, reason, msg) {
		emit(rec, obj, corev1.EventTypeWarning, reason, action, msg)
	}
}

// markRetrying records a problem that is retried with backoff: Ready=False,
// not Stalled, and a warning event when it is new.
func markRetrying(rec recorder.EventRecorder, obj runtime.Object, conds *[]metav1.Condition, gen int64, reason, action, msg string) {
	meta.RemoveStatusCondition(conds, StalledCondition)
	if setReady(conds, gen, metav1.ConditionFalse, reason, msg) {
		emit(rec, obj, corev1.EventTypeWarning, reason, action, msg)
	}
}

// readyFor returns the Ready condition when it was set for generation gen.
func readyFor(conds []metav1.Condition, gen int64) *metav1.Condition {
	c := meta.FindStatusCondition(conds, ReadyCondition)
	if c == nil || c.ObservedGeneration != gen {
		return nil
	}
	return c
}

// fieldErrors lists every field error: "spec.x: problem; spec.y: problem".
func fieldErrors(err *model.ValidationError) string {
	msgs := make([]string, len(err.Fields))
	for i, f := range err.Fields {
		msgs[i] = f.Error()
	}
	return strings.Join(msgs, "; ")
}

// asValidation returns the validation error in err, if any.
func asValidation(err error) (*model.ValidationError, bool) {
	var v *model.ValidationError
	ok := errors.As(err, &v)
	return v, ok
}

// patchStatus writes obj's status when it differs from before's. A
// resource deleted meanwhile is no error.
func patchStatus(ctx context.Context, c client.Client, obj, before client.Object) error {
	patch := client.MergeFrom(before)
	data, err := patch.Data(obj)
	if err != nil {
		return err
	}
	if string(data) == "{}" {
		return nil
	}
	err = c.Status().Patch(ctx, obj, patch, client.FieldOwner(Name))
	return client.IgnoreNotFound(err)
}

// emit records an event about obj.
func emit(rec recorder.EventRecorder, obj runtime.Object, eventType, reason, action, msg string) {
	if rec == nil {
		return
	}
	rec.Eventf(obj, nil, eventType, reason, action, "%s", truncate(msg, maxEventNote))
}

// specChanged passes creations, deletions and updates that change the
// spec (generation), labels or annotations: status updates, including the
// controller's own, do not trigger a reconciliation.
var specChanged = predicate.Or[client.Object](
	predicate.GenerationChangedPredicate{},
	predicate.LabelChangedPredicate{},
	predicate.AnnotationChangedPredicate{},
	predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !e.ObjectNew.GetDeletionTimestamp().IsZero()
	}},
)

// unlessStopping drops the error of a reconciliation cut short because the
// manager is stopping: there is nothing to retry in this process, and the
// next leader reconciles every resource anyway.
func unlessStopping(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return err
}

// isGone reports an error that means the resource no longer exists.
func isGone(err error) bool { return apierrors.IsNotFound(err) }
