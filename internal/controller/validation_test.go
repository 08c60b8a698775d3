package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// The API server's schema rejects what it can check, naming the field.
func TestSchemaRejectsInvalidResources(t *testing.T) {
	h := startController(t, testenv.NewStore(t, "sqlite"))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		obj  client.Object
		want []string
	}{
		{"reconciler status not in the enum", func() client.Object {
			r := reconciler(h.ns, "bad-status", "aks-1", "drone", shaA, "done")
			return r
		}(), []string{"spec.deployment.status", `Unsupported value: "done"`}},
		{"reconciler without host", reconciler(h.ns, "no-host", "", "drone", shaA, "success"),
			[]string{"spec.hostName", "at least 1 chars long"}},
		{"reconciler without commit", reconciler(h.ns, "no-commit", "aks-1", "drone", "", "success"),
			[]string{"spec.deployment.gitOpsCommitId", "at least 1 chars long"}},
		{"reconciler host type not in the enum", func() client.Object {
			r := reconciler(h.ns, "bad-host-type", "aks-1", "drone", shaA, "success")
			r.Spec.HostType = "mainframe"
			return r
		}(), []string{"spec.hostType", `Unsupported value: "mainframe"`}},
		{"descriptor without workload name", func() client.Object {
			d := descriptor(h.ns, "no-workload", "drone", "1.0.0")
			d.Spec.Workload.Name = ""
			return d
		}(), []string{"spec.workload.name", "at least 1 chars long"}},
		{"descriptor with an unknown manifests storage", func() client.Object {
			d := descriptor(h.ns, "bad-storage", "drone", "1.0.0")
			d.Spec.DeploymentTarget.Manifests.Storage = "svn"
			return d
		}(), []string{"spec.deploymentTarget.manifests.storage", `Unsupported value: "svn"`}},
		{"azureresourcegraph with a bad interval", &v1alpha1.AzureResourceGraph{
			ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "bad-interval"},
			Spec:       v1alpha1.AzureResourceGraphSpec{Subscription: "s", Tenant: "t", ManagedIdentity: "m", Interval: "10 minutes"},
		}, []string{"spec.interval", "should match"}},
		{"azureresourcegraph without tenant", &v1alpha1.AzureResourceGraph{
			ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "no-tenant"},
			Spec:       v1alpha1.AzureResourceGraphSpec{Subscription: "s", ManagedIdentity: "m"},
		}, []string{"spec.tenant"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := h.c.Create(ctx, tc.obj)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create: %v, want the API server to reject it as invalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	// A reconciler's identity in the store cannot change.
	rec := reconciler(h.ns, "moving", "aks-1", "drone", shaA, "success")
	create(t, h.c, rec)
	h.waitReconciler(t, h.ns, "moving", controller.ReasonStored)
	for field, edit := range map[string]func(*v1alpha1.Reconciler){
		"spec.hostName is immutable":       func(r *v1alpha1.Reconciler) { r.Spec.HostName = "aks-2" },
		"spec.reconcilerName is immutable": func(r *v1alpha1.Reconciler) { r.Spec.ReconcilerName = "renamed" },
	} {
		var cur v1alpha1.Reconciler
		if err := h.c.Get(ctx, client.ObjectKeyFromObject(rec), &cur); err != nil {
			t.Fatal(err)
		}
		edit(&cur)
		if err := h.c.Update(ctx, &cur); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), field) {
			t.Errorf("update: %v, want %q", err, field)
		}
	}
}

// What only the hub can check leaves the resource Ready=False InvalidSpec
// with every field error in the message, stores nothing, and is not
// retried until the resource changes.
func TestInvalidSpecIsReportedOnTheResource(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := startController(t, st)
	ctx := context.Background()

	dd := descriptor(h.ns, "bad-commit", "drone", "1.0.0")
	dd.Spec.GitOpsCommitID = "main@sha1:not-a-commit"
	dd.Spec.WorkloadVersion.BuildTime = "yesterday"
	create(t, h.c, dd)
	got := h.waitDescriptor(t, h.ns, "bad-commit", controller.ReasonInvalidSpec)
	c := ready(got.Status.Conditions, got.Generation)
	if c.Status != metav1.ConditionFalse || got.Status.ObservedGeneration != got.Generation {
		t.Errorf("status %+v", got.Status)
	}
	for _, w := range []string{`spec.workloadVersion.buildTime: "yesterday" is not an RFC 3339 time`, "; ", `spec.gitOpsCommitId: revision "main@sha1:not-a-commit"`} {
		if !strings.Contains(c.Message, w) {
			t.Errorf("message %q does not contain %q", c.Message, w)
		}
	}
	if n := count(t, st, "workloads") + count(t, st, "assignments"); n != 0 {
		t.Errorf("an invalid descriptor stored %d rows", n)
	}
	waitEvent(t, h, h.ns, "bad-commit", controller.ReasonInvalidSpec, "Warning")

	// Fixing the spec stores it.
	got.Spec.GitOpsCommitID = "main@sha1:" + shaB
	got.Spec.WorkloadVersion.BuildTime = "2023-04-27T23:25:05Z"
	if err := h.c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	fixed := h.waitDescriptor(t, h.ns, "bad-commit", controller.ReasonStored)
	if fixed.Status.GitOpsCommitID != shaB || fixed.Status.ObservedGeneration != 2 {
		t.Errorf("fixed descriptor status %+v", fixed.Status)
	}
	if n := count(t, st, "assignments", "commit_sha = '"+shaB+"'"); n != 1 {
		t.Errorf("%d assignments at %s, want 1", n, shaB)
	}

	// A Reconciler: a bad commit, a bad time and no type.
	rec := reconciler(h.ns, "bad-report", "aks-1", "drone", "latest", "success")
	rec.Spec.Type = ""
	rec.Spec.Deployment.ObservedAt = "now"
	create(t, h.c, rec)
	gotRec := h.waitReconciler(t, h.ns, "bad-report", controller.ReasonInvalidSpec)
	msg := ready(gotRec.Status.Conditions, gotRec.Generation).Message
	for _, w := range []string{"spec.type: is required", "spec.deployment.gitOpsCommitId: revision \"latest\"", `spec.deployment.observedAt: "now" is not an RFC 3339 time`} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not contain %q", msg, w)
		}
	}
	if n := strings.Count(msg, "; "); n != 2 {
		t.Errorf("message %q: want 3 field errors joined by \"; \"", msg)
	}
	if n := count(t, st, "reconcilers"); n != 0 {
		t.Errorf("an invalid reconciler stored %d rows", n)
	}
	// Deleting it is not held up: there is nothing to retire.
	if err := h.c.Delete(ctx, gotRec); err != nil {
		t.Fatal(err)
	}
	h.waitGone(t, gotRec)

	// An AzureResourceGraph: no credentials, too short an interval.
	arg := &v1alpha1.AzureResourceGraph{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "no-credentials"},
		Spec:       v1alpha1.AzureResourceGraphSpec{Subscription: "sub", Tenant: "tenant", Interval: "1s"},
	}
	create(t, h.c, arg)
	gotARG := h.waitARG(t, h.ns, "no-credentials", controller.ReasonInvalidSpec)
	msg = ready(gotARG.Status.Conditions, gotARG.Generation).Message
	for _, w := range []string{"spec.managedIdentity: is required (or spec.secretRef)", "spec.interval: 1s is shorter than the minimum 5s"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not contain %q", msg, w)
		}
	}
	gotARG.Spec.ManagedIdentity = "00000000-0000-0000-0000-000000000001"
	gotARG.Spec.Interval = "1m"
	if err := h.c.Update(ctx, gotARG); err != nil {
		t.Fatal(err)
	}
	accepted := h.waitARG(t, h.ns, "no-credentials", controller.ReasonAccepted)
	if c := ready(accepted.Status.Conditions, accepted.Generation); c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "sources issue") {
		t.Errorf("accepted: %s", describe(c))
	}
}

// A descriptor that contradicts the store is Ready=False Conflict, naming
// the field; the stored state is untouched.
func TestConflictIsReportedOnTheResource(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := startController(t, st)

	first := descriptor(h.ns, "v1", "drone", "1.0.0")
	first.Spec.GitOpsCommitID = shaA
	create(t, h.c, first)
	h.waitDescriptor(t, h.ns, "v1", controller.ReasonStored)

	// The same version again, with another build.
	rebuilt := descriptor(h.ns, "v1-rebuilt", "drone", "1.0.0")
	rebuilt.Spec.WorkloadVersion.Build = "build-2"
	rebuilt.Spec.GitOpsCommitID = shaB
	// The same commit assigning another version to the target.
	other := descriptor(h.ns, "v2-same-commit", "drone", "2.0.0")
	other.Spec.GitOpsCommitID = shaA
	create(t, h.c, rebuilt, other)

	for name, want := range map[string]string{
		"v1-rebuilt":     `spec.workloadVersion.build: version "1.0.0" of workload "hello-world" is recorded with build "build-1.0.0", not "build-2"`,
		"v2-same-commit": "spec.gitOpsCommitId: commit " + shaA + ` already assigns another version to target "drone" in "dev"`,
	} {
		got := h.waitDescriptor(t, h.ns, name, controller.ReasonConflict)
		if c := ready(got.Status.Conditions, got.Generation); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, want) {
			t.Errorf("%s: %s; want %q", name, describe(c), want)
		}
		// Terminal until the resource changes: Stalled, as kstatus reads it.
		if c := meta.FindStatusCondition(got.Status.Conditions, controller.StalledCondition); c == nil || c.Status != metav1.ConditionTrue || c.Reason != controller.ReasonConflict {
			t.Errorf("%s: Stalled = %s; want True Conflict", name, describe(c))
		}
	}
	if n := count(t, st, "assignments"); n != 1 {
		t.Errorf("%d assignments, want 1", n)
	}
}

// waitEvent waits for an event about an object.
func waitEvent(t *testing.T, h *harness, ns, name, reason, typ string) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		var evs eventsv1.EventList
		if err := h.c.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == name && e.Reason == reason && e.Type == typ && e.ReportingController == controller.Name {
				return true, ""
			}
		}
		return false, "no " + typ + " " + reason + " event about " + name
	})
}
