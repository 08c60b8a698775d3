package controller_test

import (
	"context"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// Deleting a Reconciler retires it: it no longer counts as a host of its
// target, its history stays. Creating it again restores it.
func TestDeletingAReconcilerRetiresIt(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := startController(t, st)
	ctx := context.Background()

	dd := descriptor(h.ns, "drone-1-0-0", "drone", "1.0.0")
	dd.Spec.GitOpsCommitID = "dev@sha1:" + shaA
	create(t, h.c, dd)
	h.waitDescriptor(t, h.ns, dd.Name, controller.ReasonStored)
	create(t, h.c,
		reconciler(h.ns, "aks-1-drone", "aks-1", "drone", shaA, "success"),
		reconciler(h.ns, "aks-2-drone", "aks-2", "drone", shaA, "in_progress"))
	h.waitReconciler(t, h.ns, "aks-1-drone", controller.ReasonStored)
	rec := h.waitReconciler(t, h.ns, "aks-2-drone", controller.ReasonStored)
	wantHosts(t, st, "aks-1/success/1.0.0", "aks-2/in_progress/1.0.0")

	if err := h.c.Delete(ctx, rec); err != nil {
		t.Fatal(err)
	}
	h.waitGone(t, rec)
	wantHosts(t, st, "aks-1/success/1.0.0")
	if n := count(t, st, "reconcilers", "retired_at IS NOT NULL"); n != 1 {
		t.Errorf("%d retired reconcilers, want 1", n)
	}
	if n := count(t, st, "deployment_history"); n != 2 {
		t.Errorf("%d deployment_history rows, want 2: history stays", n)
	}
	waitEvent(t, h, h.ns, "aks-2-drone", "Retired", "Normal")

	// Created again, with news: it counts again, its history grows.
	again := reconciler(h.ns, "aks-2-drone", "aks-2", "drone", shaA, "success")
	create(t, h.c, again)
	h.waitReconciler(t, h.ns, "aks-2-drone", controller.ReasonStored)
	wantHosts(t, st, "aks-1/success/1.0.0", "aks-2/success/1.0.0")
	if n := count(t, st, "reconcilers", "retired_at IS NOT NULL"); n != 0 {
		t.Errorf("%d retired reconcilers after re-creation, want 0", n)
	}
	if n := count(t, st, "deployment_history"); n != 3 {
		t.Errorf("%d deployment_history rows, want 3", n)
	}
}

// wantHosts checks Host State as "host/status/version" of the
// drone target.
func wantHosts(t *testing.T, st *store.Store, want ...string) {
	t.Helper()
	var got []string
	for _, ht := range hostTargets(t, st) {
		if ht.Target != "drone" || ht.Environment != "dev" || ht.Workload != "hello-world" {
			t.Errorf("unexpected host target %+v", ht)
		}
		got = append(got, ht.Host+"/"+ht.Status+"/"+ht.Version)
	}
	if len(got) != len(want) {
		t.Fatalf("HostTargets = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("HostTargets = %v, want %v", got, want)
		}
	}
}
