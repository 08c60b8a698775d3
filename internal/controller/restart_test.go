package controller_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A new leader reconciles every resource again. That changes nothing in
// the store: not even for descriptors stored with their commit pending
// whose target has since been given another version, which storing again
// would make the latest assignment.
func TestRestartChangesNothing(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := startController(t, st)
	create(t, h.c, descriptor(h.ns, "drone-1", "drone", "1.0.0"))
	h.waitDescriptor(t, h.ns, "drone-1", controller.ReasonCommitPending)
	create(t, h.c, descriptor(h.ns, "drone-2", "drone", "2.0.0"))
	h.waitDescriptor(t, h.ns, "drone-2", controller.ReasonCommitPending)
	pinned := descriptor(h.ns, "lab-1", "lab", "1.0.0")
	pinned.Spec.GitOpsCommitID = shaA
	create(t, h.c, pinned, reconciler(h.ns, "aks-1-lab", "aks-1", "lab", shaA, "success"))
	h.waitDescriptor(t, h.ns, "lab-1", controller.ReasonStored)
	h.waitReconciler(t, h.ns, "aks-1-lab", controller.ReasonStored)
	waitQuiet(t, h)
	want := snapshot(t, h)

	before := reconciles(t, "deploymentdescriptor") + reconciles(t, "reconciler")
	h.restart(t)
	eventually(t, 20*time.Second, func() (bool, string) {
		n := reconciles(t, "deploymentdescriptor") + reconciles(t, "reconciler") - before
		return n >= 4, fmt.Sprintf("%v reconciliations since the restart, want 4", n)
	})
	waitQuiet(t, h)
	if got := snapshot(t, h); got != want {
		t.Errorf("the restart changed the store:\n%s\nwant:\n%s", got, want)
	}
}

// snapshot lists the assignments and reconcilers' report times.
func snapshot(t *testing.T, h *harness) string {
	t.Helper()
	s := fmt.Sprintf("assignments=%d deployments=%d history=%d\n",
		count(t, h.st, "assignments"), count(t, h.st, "deployments"), count(t, h.st, "deployment_history"))
	rows, err := h.st.Read().Query(t.Context(), `SELECT t.name, v.version, COALESCE(a.commit_sha, 'pending')
		FROM assignments a JOIN targets t ON t.id = a.target_id JOIN workload_versions v ON v.id = a.version_id
		ORDER BY a.assigned_at, a.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var target, version, commit string
		if err := rows.Scan(&target, &version, &commit); err != nil {
			t.Fatal(err)
		}
		s += target + " " + version + " " + commit + "\n"
	}
	return s
}
