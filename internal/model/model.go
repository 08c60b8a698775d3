// Package model holds Tidemark's logical model: the inputs the hub
// accepts, the normalization rules that make reports from different tools
// comparable, and their validation. It has no dependencies on storage or
// transport.
package model

import (
	"fmt"
	"strings"
	"time"
)

// Status is the state a reconciler reports for the commit it applies.
type Status string

// The deployment statuses.
const (
	StatusSuccess    Status = "success"
	StatusFailure    Status = "failure"
	StatusInProgress Status = "in_progress"
)

// ParseStatus accepts the canonical statuses case-insensitively, with "-" or
// " " for "_".
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case StatusSuccess, StatusFailure, StatusInProgress:
		return Status(s), nil // already in stored form: the common case
	}
	n := statusSeparators.Replace(strings.ToLower(strings.TrimSpace(s)))
	switch Status(n) {
	case StatusSuccess, StatusFailure, StatusInProgress:
		return Status(n), nil
	}
	return "", fmt.Errorf("status %s is not one of success, failure, in_progress", Quote(s))
}

// statusSeparators spells a status's separators as stored ("in-progress",
// "in progress" -> "in_progress").
var statusSeparators = strings.NewReplacer("-", "_", " ", "_")

// Host types.
const (
	HostCluster = "cluster"
	HostVM      = "vm"
)

// Descriptor is a deployment descriptor: what a team meant to deploy where.
// It becomes workspace, application, workload, environment, target, version
// and assignment.
type Descriptor struct {
	Workspace   string
	Application string
	Workload    string
	Source      WorkloadSource

	Environment string
	Target      string
	Manifests   Endpoint
	Labels      map[string]string

	Version     string
	Build       string
	BuildCommit string
	BuildTime   time.Time // zero when unknown

	// Commit is the GitOps commit that carries this assignment, normalized;
	// empty while it is pending (see FluxSource).
	Commit string
	// FluxSource names the Flux Kustomization ("namespace/name") that
	// applied the descriptor; a pending commit is resolved from its
	// lastAppliedRevision.
	FluxSource string
	// AssignedAt is when the assignment took effect; zero means "now".
	AssignedAt time.Time
}

// WorkloadSource is where a workload's code lives.
type WorkloadSource struct {
	Repo, Branch, Path string
}

// Report is one reconciler's report of what it applied on a host: the real
// state.
//
// A report without Commit and Status registers the reconciler before its
// first sync (a cluster joining the fleet, an Arc configuration still
// pending): its host counts for its target as "not yet reported" until a
// report with a commit arrives. Registering a reconciler that has reported
// keeps its deployment.
type Report struct {
	Host       string
	HostType   string // "cluster" (default) or "vm"
	HostLabels map[string]string

	Reconciler     string
	ReconcilerType string // flux, argocd, arc-flux, agent, ...
	Endpoint       Endpoint

	Commit  string // normalized
	Status  Status
	Message string
	// MessageBytes is the length of the message as reported when Check cut
	// it to MaxStatusMessage bytes; else 0.
	MessageBytes int
	// ObservedAt is when the reconciler reached this state; zero means "now".
	ObservedAt time.Time

	// Source names what reports the reconciler, such as
	// "azure-resource-graph/fleet" or "agent/cluster-7"; empty for resources
	// and hand-written pushes. A source can retire the reconcilers it
	// reported that have vanished (ingest.Service.RetireMissing).
	Source string
}

// Registered reports whether r only registers its reconciler: no commit
// and no status yet.
func (r Report) Registered() bool { return r.Commit == "" && r.Status == "" }

// ReconcilerKey names a reconciler: reconciler names repeat across hosts.
type ReconcilerKey struct {
	Host, Name string
}

// FieldError is one problem with one field of an input, phrased so that the
// user knows what to change.
type FieldError struct {
	Field   string // JSON path, e.g. "spec.workloadVersion.version"
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// ValidationError lists every problem found in one input. Nothing of an
// input with a ValidationError is stored.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return "invalid input: " + strings.Join(msgs, "; ")
}

// Add records a problem with a field.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Required records a problem when value is blank.
func (e *ValidationError) Required(field, value string) {
	if strings.TrimSpace(value) == "" {
		e.Add(field, "is required and must not be empty")
	}
}

// Err returns nil when no problem was recorded.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Check validates a descriptor and puts its names in their stored form
// (see NormalizeName). Every input goes through it before it is stored;
// field names are the model's (resource.Descriptor names the resource's
// fields instead).
func (d *Descriptor) Check() error {
	var v ValidationError
	d.Workspace = v.Name("workspace", d.Workspace, true)
	d.Application = v.Name("application", d.Application, true)
	d.Workload = v.Name("workload", d.Workload, true)
	d.Environment = v.Name("environment", d.Environment, true)
	d.Target = v.Name("target", d.Target, true)
	d.Version = v.Name("version", d.Version, true)
	d.Build = v.Text("build", d.Build)
	d.BuildCommit = v.Text("buildCommit", d.BuildCommit)
	d.FluxSource = v.Name("fluxSource", d.FluxSource, false)
	d.Labels = v.Labels("labels", d.Labels)
	for _, p := range []struct{ field, value string }{
		{"source.repo", d.Source.Repo}, {"source.branch", d.Source.Branch}, {"source.path", d.Source.Path},
		{"manifests.repo", d.Manifests.Repo}, {"manifests.branch", d.Manifests.Branch}, {"manifests.path", d.Manifests.Path},
	} {
		v.Text(p.field, p.value)
	}
	if d.Manifests.Key() == "" {
		v.Add("manifests", "is required: the repository the target's manifests are written to")
	}
	checkCommit(&v, "commit", d.Commit)
	return v.Err()
}

// Check validates a report and puts its names in their stored form (see
// NormalizeName); a status message longer than MaxStatusMessage is cut
// (MessageBytes keeps its length). Every report goes through it before it
// is stored.
func (r *Report) Check() error {
	var v ValidationError
	r.Host = v.Name("host", r.Host, true)
	r.Reconciler = v.Name("reconciler", r.Reconciler, true)
	r.ReconcilerType = v.Name("reconcilerType", r.ReconcilerType, true)
	r.Source = v.Name("source", r.Source, false)
	r.HostLabels = v.Labels("hostLabels", r.HostLabels)
	switch r.HostType {
	case "", HostCluster, HostVM:
	default:
		v.Add("hostType", "%s is not one of cluster, vm", Quote(r.HostType))
	}
	for _, p := range []struct{ field, value string }{
		{"endpoint.repo", r.Endpoint.Repo}, {"endpoint.branch", r.Endpoint.Branch}, {"endpoint.path", r.Endpoint.Path},
	} {
		v.Text(p.field, p.value)
	}
	if r.Endpoint.Key() == "" {
		v.Add("endpoint", "is required: the repository, branch and path the reconciler applies")
	}
	checkCommit(&v, "commit", r.Commit)
	switch {
	case r.Commit == "" && r.Status != "":
		v.Add("commit", "is required with a status (leave both out to register the reconciler before its first sync)")
	case r.Commit != "" && r.Status == "":
		v.Add("status", "is required with a commit: one of success, failure, in_progress")
	case r.Status != "":
		if _, err := ParseStatus(string(r.Status)); err != nil || Status(strings.ToLower(string(r.Status))) != r.Status {
			v.Add("status", "%s is not one of success, failure, in_progress", Quote(string(r.Status)))
		}
	}
	if r.Registered() && r.Message != "" {
		v.Add("message", "a reconciler that has not reported has no status message")
	}
	if msg := v.Text("message", r.Message); msg != "" {
		if cut, n := TruncateMessage(msg); n > 0 {
			r.Message, r.MessageBytes = cut, n
		}
	}
	return v.Err()
}

func checkCommit(v *ValidationError, field, sha string) {
	if sha == "" {
		return
	}
	if n, err := NormalizeRevision(sha); err != nil || n != sha {
		v.Add(field, "%s is not a normalized revision: pass it through model.NormalizeRevision", Quote(sha))
	}
}
