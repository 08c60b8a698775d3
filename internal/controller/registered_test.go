package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A Reconciler without spec.deployment (a cluster joining the fleet, an
// Arc configuration still pending) is Ready: its reconciler is registered
// and its host counts as not yet reported until it says what it applied.
func TestReconcilerWithoutDeploymentRegisters(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := startController(t, st)
	dd := descriptor(h.ns, "v1", "drone", "1.0.0")
	dd.Spec.GitOpsCommitID = shaA
	create(t, h.c, dd)
	h.waitDescriptor(t, h.ns, "v1", controller.ReasonStored)

	rec := reconciler(h.ns, "joining", "aks-new-1", "drone", "", "")
	rec.Spec.Deployment = nil
	create(t, h.c, rec)
	got := h.waitReconciler(t, h.ns, "joining", controller.ReasonStored)
	if c := ready(got.Status.Conditions, got.Generation); c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "registered") {
		t.Errorf("registered: %s", describe(c))
	}
	g, err := reports.New(st).Gate(context.Background(), reports.GateQuery{Target: "drone", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Total != 1 || g.NotReported != 1 || g.Done {
		t.Errorf("gate with a registered host: %+v", g)
	}

	// Its first sync: an ordinary report.
	got.Spec.Deployment = reconciler(h.ns, "", "", "", shaA, "success").Spec.Deployment
	if err := h.c.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		rows := hostTargets(t, st)
		if len(rows) != 1 || rows[0].Status != "success" || rows[0].Version != "1.0.0" {
			return false, "host state: " + describeRows(rows)
		}
		return true, ""
	})
}

func describeRows(rows []reports.HostStateRow) string {
	var parts []string
	for _, r := range rows {
		parts = append(parts, r.Host+" "+r.Version+" "+r.Status)
	}
	return strings.Join(parts, "; ")
}
