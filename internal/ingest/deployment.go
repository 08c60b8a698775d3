package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// DeploymentResult says what a DeploymentReport became.
type DeploymentResult struct {
	// Host is the host the report was stored for.
	Host string
	ReportResult
}

// ApplyDeployments stores reports that name their reconciler only (the
// original's Deployment resource). Each reconciler must be known: its host
// is the report's, else the one host that has a reconciler of that name;
// its type and endpoint are the stored ones. A name that no host has, or
// that several hosts have while the report names none, is refused with a
// ConflictError saying how to fix it, and nothing of the batch is stored.
func (s *Service) ApplyDeployments(ctx context.Context, ds []model.DeploymentReport) ([]DeploymentResult, error) {
	reps := make([]model.Report, len(ds))
	for i, d := range ds {
		var v model.ValidationError
		d.Reconciler = v.Name("spec.reconcilerName", d.Reconciler, true)
		d.Host = v.Name("metadata.labels."+v1alpha1.HostLabel, d.Host, false)
		if err := v.Err(); err != nil {
			return nil, &InputError{Kind: "deployment", Index: i, Err: err}
		}
		host, err := s.deploymentHost(ctx, d)
		if err != nil {
			return nil, err
		}
		id, err := store.GetReconcilerIdentity(ctx, s.store.Primary(), host, d.Reconciler)
		if errors.Is(err, store.ErrNoRows) {
			return nil, &ConflictError{Field: "spec.reconcilerName", Problem: fmt.Sprintf(
				"host %s has no reconciler %s: register it first (a Reconciler resource or POST /api/v1/reconcilers with its type and manifests endpoint), or fix the %s label",
				host, d.Reconciler, v1alpha1.HostLabel)}
		}
		if err != nil {
			return nil, err
		}
		reps[i] = model.Report{Host: host, Reconciler: d.Reconciler, ReconcilerType: id.Type, Endpoint: id.Endpoint,
			Commit: d.Commit, Status: d.Status, Message: d.Message, ObservedAt: d.ObservedAt}
	}
	outs, err := s.ApplyReports(ctx, reps)
	if err != nil {
		return nil, err
	}
	res := make([]DeploymentResult, len(outs))
	for i, o := range outs {
		res[i] = DeploymentResult{Host: reps[i].Host, ReportResult: o}
	}
	return res, nil
}

// deploymentHost is the host of a deployment report's reconciler.
func (s *Service) deploymentHost(ctx context.Context, d model.DeploymentReport) (string, error) {
	if d.Host != "" {
		return d.Host, nil
	}
	hosts, err := store.HostsWithReconciler(ctx, s.store.Primary(), d.Reconciler)
	if err != nil {
		return "", err
	}
	var live, retired []string
	for _, h := range hosts {
		if h.Retired {
			retired = append(retired, h.Host)
		} else {
			live = append(live, h.Host)
		}
	}
	switch {
	case len(live) == 1:
		return live[0], nil
	case len(live) == 0 && len(retired) == 1:
		return retired[0], nil
	case len(live) == 0 && len(retired) == 0:
		return "", &ConflictError{Field: "spec.reconcilerName", Problem: fmt.Sprintf(
			"no host has a reconciler named %s: register it first (a Reconciler resource or POST /api/v1/reconcilers with its host, type and manifests endpoint), then report its deployments",
			d.Reconciler)}
	}
	candidates := live
	if len(candidates) == 0 {
		candidates = retired
	}
	shown := candidates
	if len(shown) > 5 {
		shown = append(shown[:5:5], "...")
	}
	return "", &ConflictError{Field: "metadata.labels." + v1alpha1.HostLabel, Problem: fmt.Sprintf(
		"reconciler %s runs on %d hosts (%s): label the Deployment %s=<host> to say which",
		d.Reconciler, len(candidates), strings.Join(shown, ", "), v1alpha1.HostLabel)}
}
