package resource

import (
	"strings"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// KindDeployment is the original system's Deployment resource.
const KindDeployment = "Deployment"

// Deployment validates a Deployment and converts it. Its host is the
// hub.kalypso.io/host label when set (else ingest looks the reconciler
// name up).
func Deployment(d *v1alpha1.Deployment) (model.DeploymentReport, error) {
	var v model.ValidationError
	sp := d.Spec
	rep := model.DeploymentReport{
		Host:       strings.TrimSpace(d.Labels[v1alpha1.HostLabel]),
		Reconciler: strings.TrimSpace(sp.ReconcilerName),
		Message:    strings.TrimRight(sp.StatusMessage, "\n"),
	}
	v.Required("spec.reconcilerName", sp.ReconcilerName)
	if sha, err := model.NormalizeRevision(sp.GitOpsCommitID); err != nil {
		v.Add("spec.gitOpsCommitId", "%v", err)
	} else {
		rep.Commit = sha
	}
	if st, err := model.ParseStatus(sp.Status); err != nil {
		v.Add("spec.status", "%v", err)
	} else {
		rep.Status = st
	}
	rep.ObservedAt = parseTime(&v, "spec.observedAt", sp.ObservedAt)
	return rep, v.Err()
}
