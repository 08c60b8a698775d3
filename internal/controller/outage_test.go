package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// PostgreSQL stops mid-run: the controller reports not-ready, marks what it
// cannot store Ready=False StoreUnavailable and retries with backoff; once
// PostgreSQL is back, everything created or deleted meanwhile is stored.
func TestPostgresOutage(t *testing.T) {
	testenv.SharedKube(t)
	// A server of its own: this test stops it.
	pg, err := testenv.StartPostgres()
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(pg.Stop)
	ctx := context.Background()
	drv, err := postgres.Open(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(ctx, drv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := startController(t, st, quiet)

	// Before the outage.
	before := descriptor(h.ns, "drone", "drone", "1.0.0")
	before.Spec.GitOpsCommitID = shaA
	create(t, h.c, before,
		reconciler(h.ns, "aks-0-drone", "aks-0", "drone", shaA, "success"),
		reconciler(h.ns, "aks-1-drone", "aks-1", "drone", shaA, "success"))
	h.waitDescriptor(t, h.ns, "drone", controller.ReasonStored)
	h.waitReconciler(t, h.ns, "aks-0-drone", controller.ReasonStored)
	h.waitReconciler(t, h.ns, "aks-1-drone", controller.ReasonStored)
	// Two versions of one target, both with their commit pending.
	create(t, h.c, descriptor(h.ns, "lab-1", "lab", "1.0.0"))
	h.waitDescriptor(t, h.ns, "lab-1", controller.ReasonCommitPending)
	create(t, h.c, descriptor(h.ns, "lab-2", "lab", "2.0.0"))
	h.waitDescriptor(t, h.ns, "lab-2", controller.ReasonCommitPending)

	pg.Halt()
	outage := time.Now()
	h.waitProbe(t, "/readyz", http.StatusInternalServerError)
	if code, err := h.probeStatus("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the outage: %d %v, want 200 (the process is alive)", code, err)
	}
	errorsBefore := reconcileErrors(t, "deploymentdescriptor") + reconcileErrors(t, "reconciler")

	// During the outage: 20 descriptors, 20 reconcilers, one deletion.
	const n = 20
	for i := range n {
		target := fmt.Sprintf("t%02d", i)
		dd := descriptor(h.ns, "d-"+target, target, "1.0.0")
		dd.Spec.GitOpsCommitID = shaB
		create(t, h.c, dd, reconciler(h.ns, "r-"+target, fmt.Sprintf("aks-%02d", i+10), target, shaB, "success"))
	}
	gone := &v1alpha1.Reconciler{}
	if err := h.c.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "aks-0-drone"}, gone); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		target := fmt.Sprintf("t%02d", i)
		h.waitDescriptor(t, h.ns, "d-"+target, controller.ReasonStoreUnavailable)
		h.waitReconciler(t, h.ns, "r-"+target, controller.ReasonStoreUnavailable)
	}
	// The deletion waits for the store, held by the finalizer.
	eventually(t, 30*time.Second, func() (bool, string) {
		if err := h.c.Get(ctx, client.ObjectKeyFromObject(gone), gone); err != nil {
			return false, err.Error()
		}
		c := ready(gone.Status.Conditions, gone.Generation)
		return c != nil && c.Reason == controller.ReasonStoreUnavailable && c.Status == metav1.ConditionFalse,
			"deleted reconciler: " + describe(c)
	})
	// A new leader during the outage: what was stored before stays Ready.
	h.restart(t)
	time.Sleep(3*time.Second - time.Since(outage))
	h.waitDescriptor(t, h.ns, "drone", controller.ReasonStored)
	h.waitDescriptor(t, h.ns, "lab-1", controller.ReasonCommitPending)
	h.waitReconciler(t, h.ns, "aks-1-drone", controller.ReasonStored)
	retries := reconcileErrors(t, "deploymentdescriptor") + reconcileErrors(t, "reconciler") - errorsBefore
	elapsed := time.Since(outage)
	t.Logf("%.0f failed reconciliations of %d resources in a %s outage, with a restart", retries, 2*n+2, elapsed.Round(100*time.Millisecond))
	// Every resource is retried, with backoff: 20 ms doubling up to 1 s
	// (the test's settings) allows about 6 + 1/s attempts each, twice
	// that across the restart.
	if min, max := float64(2*(2*n+2)), float64(2*n+2)*2*(8+elapsed.Seconds()); retries < min || retries > max {
		t.Errorf("%.0f failed reconciliations, want between %.0f and %.0f", retries, min, max)
	}

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitProbe(t, "/readyz", http.StatusOK)
	for i := range n {
		target := fmt.Sprintf("t%02d", i)
		h.waitDescriptor(t, h.ns, "d-"+target, controller.ReasonStored)
		h.waitReconciler(t, h.ns, "r-"+target, controller.ReasonStored)
	}
	h.waitGone(t, gone)

	// Nothing lost, nothing recorded twice.
	for table, want := range map[string]int{"targets": n + 2, "assignments": n + 3, "hosts": n + 2, "reconcilers": n + 2, "deployments": n + 2} {
		if got := count(t, st, table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	if got := count(t, st, "reconcilers", "retired_at IS NOT NULL"); got != 1 {
		t.Errorf("%d retired reconcilers, want 1 (aks-0)", got)
	}
	var latest string
	if err := st.Read().QueryRow(ctx, `SELECT v.version FROM assignments a JOIN targets t ON t.id = a.target_id
		JOIN workload_versions v ON v.id = a.version_id WHERE t.name = 'lab' ORDER BY a.assigned_at DESC, a.id DESC LIMIT 1`).Scan(&latest); err != nil || latest != "2.0.0" {
		t.Errorf("lab's latest assignment: %q (%v), want 2.0.0", latest, err)
	}
	hts := hostTargets(t, st)
	if len(hts) != n+1 {
		t.Errorf("HostTargets lists %d, want %d", len(hts), n+1)
	}
	for _, ht := range hts {
		if ht.Host == "aks-0" || ht.Version != "1.0.0" || ht.Status != "success" {
			t.Errorf("host target %s/%s: version %q status %s", ht.Host, ht.Target, ht.Version, ht.Status)
		}
	}
}
