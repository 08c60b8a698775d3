// Package resource converts the hub.kalypso.io resources (DeploymentDescriptor,
// Reconciler, AzureResourceGraph) into the model's inputs, validating every
// field. The API and the Kubernetes controller call it at the edge, so that
// ingest sees model types only.
package resource

import (
	"fmt"
	"strings"
	"time"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// Labels that Flux puts on the objects a Kustomization applies.
const (
	FluxNameLabel      = "kustomize.toolkit.fluxcd.io/name"
	FluxNamespaceLabel = "kustomize.toolkit.fluxcd.io/namespace"
)

// FluxSourceOf returns "namespace/name" of the Flux Kustomization that
// applied an object, from its labels, or "".
func FluxSourceOf(labels map[string]string) string {
	name, ns := labels[FluxNameLabel], labels[FluxNamespaceLabel]
	if name == "" {
		return ""
	}
	return ns + "/" + name
}

// FluxApplied is what the Flux Kustomization that applied a descriptor
// says: the revision it applied and when. Zero when unknown.
type FluxApplied struct {
	Revision string
	At       time.Time
}

// Descriptor validates a DeploymentDescriptor and converts it.
//
// Its GitOps commit is, in order: spec.gitOpsCommitId, the
// hub.kalypso.io/gitops-commit annotation, the revision of the Flux
// Kustomization that applied it (flux, when the caller knows it); else it
// is pending. The time its assignment took effect is, in order:
// spec.assignedAt, the hub.kalypso.io/assigned-at annotation, when the
// Kustomization applied that revision (only when the commit is that
// revision); else zero, which ingest takes as "now".
func Descriptor(r *v1alpha1.DeploymentDescriptor, flux FluxApplied) (model.Descriptor, error) {
	var v model.ValidationError
	sp := r.Spec
	d := model.Descriptor{
		Workspace:   v.Name("spec.workload.application.workspace.name", sp.Workload.Application.Workspace.Name, true),
		Application: v.Name("spec.workload.application.name", sp.Workload.Application.Name, true),
		Workload:    v.Name("spec.workload.name", sp.Workload.Name, true),
		Environment: v.Name("spec.deploymentTarget.environment", sp.DeploymentTarget.Environment, true),
		Target:      v.Name("spec.deploymentTarget.name", sp.DeploymentTarget.Name, true),
		Labels:      v.Labels("spec.deploymentTarget.labels", sp.DeploymentTarget.Labels),
		Version:     v.Name("spec.workloadVersion.version", sp.WorkloadVersion.Version, true),
		Build:       strings.TrimSpace(v.Text("spec.workloadVersion.build", sp.WorkloadVersion.Build)),
		BuildCommit: strings.ToLower(strings.TrimSpace(v.Text("spec.workloadVersion.commit", sp.WorkloadVersion.Commit))),
		FluxSource:  v.Name("metadata.labels", FluxSourceOf(r.Labels), false),
	}
	before := len(v.Fields)
	for _, f := range []struct{ field, value string }{
		{"spec.workload.source.repo", sp.Workload.Source.Repo}, {"spec.workload.source.branch", sp.Workload.Source.Branch},
		{"spec.workload.source.path", sp.Workload.Source.Path}, {"spec.deploymentTarget.manifests.repo", sp.DeploymentTarget.Manifests.Repo},
		{"spec.deploymentTarget.manifests.branch", sp.DeploymentTarget.Manifests.Branch}, {"spec.deploymentTarget.manifests.path", sp.DeploymentTarget.Manifests.Path},
		{"spec.gitOpsCommitId", sp.GitOpsCommitID},
	} {
		v.Text(f.field, f.value)
	}
	if len(v.Fields) > before {
		return d, v.Err() // parsing invalid text would only repeat the problem
	}
	if src := sp.Workload.Source; src.Repo != "" {
		repo, err := model.NormalizeRepo(src.Repo)
		if err != nil {
			v.Add("spec.workload.source.repo", "%v", err)
		}
		d.Source = model.WorkloadSource{Repo: repo, Branch: model.NormalizeBranch(src.Branch), Path: model.CleanPath(src.Path)}
	}
	m := sp.DeploymentTarget.Manifests
	if strings.TrimSpace(m.Repo) == "" {
		v.Add("spec.deploymentTarget.manifests.repo", "is required: the repository the target's manifests are written to")
	} else if ep, err := model.NewEndpoint(m.Storage, m.Repo, m.Branch, m.Path); err != nil {
		v.Add("spec.deploymentTarget.manifests", "%v", err)
	} else {
		d.Manifests = ep
	}
	d.BuildTime = parseTime(&v, "spec.workloadVersion.buildTime", sp.WorkloadVersion.BuildTime)
	commitField, commit := "spec.gitOpsCommitId", sp.GitOpsCommitID
	if commit == "" {
		commitField, commit = "metadata.annotations."+v1alpha1.GitOpsCommitAnnotation, r.Annotations[v1alpha1.GitOpsCommitAnnotation]
	}
	fromFlux := commit == "" && flux.Revision != ""
	if fromFlux {
		commitField, commit = "the Flux Kustomization's status.lastAppliedRevision", flux.Revision
	}
	if commit != "" {
		sha, err := model.NormalizeRevision(commit)
		if err != nil {
			v.Add(commitField, "%v", err)
		}
		d.Commit = sha
	}
	switch {
	case strings.TrimSpace(sp.AssignedAt) != "":
		d.AssignedAt = parseTime(&v, "spec.assignedAt", sp.AssignedAt)
	case strings.TrimSpace(r.Annotations[v1alpha1.AssignedAtAnnotation]) != "":
		d.AssignedAt = parseTime(&v, "metadata.annotations."+v1alpha1.AssignedAtAnnotation, r.Annotations[v1alpha1.AssignedAtAnnotation])
	case fromFlux:
		d.AssignedAt = flux.At
	}
	return d, v.Err()
}

// Report validates a Reconciler and converts it. The reconciler name is
// spec.reconcilerName or metadata.name; its type spec.type or
// spec.reconcilerType. Without spec.deployment it registers the reconciler
// (model.Report.Registered).
func Report(r *v1alpha1.Reconciler) (model.Report, error) {
	var v model.ValidationError
	sp := r.Spec
	rep := model.Report{
		Host:           v.Name("spec.hostName", sp.HostName, true),
		HostLabels:     v.Labels("spec.hostLabels", sp.HostLabels),
		Reconciler:     v.Name("spec.reconcilerName", sp.ReconcilerName, false),
		ReconcilerType: strings.ToLower(v.Name("spec.type", sp.Type, false)),
	}
	if rep.Reconciler == "" {
		rep.Reconciler = v.Name("metadata.name", r.Name, false)
	}
	before := len(v.Fields)
	v.Text("spec.manifestsEndpoint", sp.ManifestsEndpoint)
	if dep := sp.Deployment; dep != nil {
		v.Text("spec.deployment.gitOpsCommitId", dep.GitOpsCommitID)
		v.Text("spec.deployment.statusMessage", dep.StatusMessage)
	}
	if len(v.Fields) > before {
		return rep, v.Err() // parsing invalid text would only repeat the problem
	}
	if rep.Reconciler == "" {
		v.Add("spec.reconcilerName", "is required when metadata.name is empty")
	}
	if t := strings.ToLower(v.Name("spec.reconcilerType", sp.ReconcilerType, false)); t != "" {
		if rep.ReconcilerType != "" && rep.ReconcilerType != t {
			v.Add("spec.reconcilerType", "%s disagrees with spec.type %s: give one of them", model.Quote(sp.ReconcilerType), model.Quote(sp.Type))
		}
		rep.ReconcilerType = t
	}
	if rep.ReconcilerType == "" {
		v.Add("spec.type", "is required (or spec.reconcilerType): the reconciler's kind, such as flux or argocd")
	}
	switch ht := strings.ToLower(strings.TrimSpace(sp.HostType)); ht {
	case "", model.HostCluster, model.HostVM:
		rep.HostType = ht
	default:
		v.Add("spec.hostType", "%s is not one of cluster, vm", model.Quote(sp.HostType))
	}
	if strings.TrimSpace(sp.ManifestsEndpoint) == "" {
		v.Add("spec.manifestsEndpoint", "is required: the repository URL, branch and path the reconciler applies, joined with /")
	} else if ep, err := model.ParseEndpoint(sp.ManifestsStorageType, sp.ManifestsEndpoint); err != nil {
		v.Add("spec.manifestsEndpoint", "%v", err)
	} else {
		rep.Endpoint = ep
	}
	if dep := sp.Deployment; dep != nil {
		if sha, err := model.NormalizeRevision(dep.GitOpsCommitID); err != nil {
			v.Add("spec.deployment.gitOpsCommitId", "%v (or leave out spec.deployment to register the reconciler before its first sync)", err)
		} else {
			rep.Commit = sha
		}
		if st, err := model.ParseStatus(dep.Status); err != nil {
			v.Add("spec.deployment.status", "%v", err)
		} else {
			rep.Status = st
		}
		rep.Message = strings.TrimRight(dep.StatusMessage, "\n")
		rep.ObservedAt = parseTime(&v, "spec.deployment.observedAt", dep.ObservedAt)
	}
	if v.Err() != nil {
		return rep, v.Err()
	}
	// What is left to check (the message's length) holds for every
	// source: the model's own rules.
	return rep, rep.Check()
}

// parseTime reads an optional RFC 3339 field; blank is the zero time.
func parseTime(v *model.ValidationError, field, value string) time.Time {
	value = strings.TrimSpace(value)
	if value == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		v.Add(field, "%s is not an RFC 3339 time such as 2023-04-27T23:25:05Z", model.Quote(value))
	}
	return t
}

// Kind names of the documents ingest accepts.
const (
	KindDeploymentDescriptor = "DeploymentDescriptor"
	KindReconciler           = "Reconciler"
	KindAzureResourceGraph   = "AzureResourceGraph"
)

// CheckTypeMeta verifies that a document is the kind it is sent as.
func CheckTypeMeta(apiVersion, kind, want string) error {
	var v model.ValidationError
	if apiVersion != "" && apiVersion != v1alpha1.GroupVersion.String() {
		v.Add("apiVersion", "%s is not supported: use %s", model.Quote(apiVersion), v1alpha1.GroupVersion)
	}
	if kind != "" && kind != want {
		v.Add("kind", "%s is not accepted here: expected %s", model.Quote(kind), want)
	}
	return v.Err()
}

// MinPollInterval is the shortest AzureResourceGraph interval accepted:
// shorter polls only meet Resource Graph's throttling.
const MinPollInterval = 5 * time.Second

// ValidateAzureResourceGraph checks an AzureResourceGraph: a name, a
// tenant, at least one subscription, exactly one way to authenticate, and an
// interval of at least MinPollInterval.
func ValidateAzureResourceGraph(r *v1alpha1.AzureResourceGraph) error {
	var v model.ValidationError
	sp := r.Spec
	v.Required("metadata.name", r.Name)
	v.Required("spec.tenant", sp.Tenant)
	if strings.TrimSpace(sp.Subscription) == "" && len(sp.Subscriptions) == 0 {
		v.Add("spec.subscription", "is required (or spec.subscriptions): the subscription ids to poll")
	}
	for i, s := range sp.Subscriptions {
		v.Required(fmt.Sprintf("spec.subscriptions[%d]", i), s)
	}
	switch mi, sr := strings.TrimSpace(sp.ManagedIdentity) != "", strings.TrimSpace(sp.SecretRef) != ""; {
	case mi && sr:
		v.Add("spec.secretRef", "give either spec.managedIdentity or spec.secretRef, not both")
	case !mi && !sr:
		v.Add("spec.managedIdentity", "is required (or spec.secretRef): the client id of a managed identity, or the name of a Secret with a service principal")
	}
	if sp.Interval != "" {
		d, err := time.ParseDuration(sp.Interval)
		switch {
		case err != nil:
			v.Add("spec.interval", "%s is not a duration such as 30s or 5m", model.Quote(sp.Interval))
		case d < MinPollInterval:
			v.Add("spec.interval", "%s is shorter than the minimum %s", d, MinPollInterval)
		}
	}
	return v.Err()
}
