// Package model holds Tidemark's logical model (SPEC §1): the inputs the hub
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
	n := strings.ToLower(strings.TrimSpace(s))
	n = strings.NewReplacer("-", "_", " ", "_").Replace(n)
	switch Status(n) {
	case StatusSuccess, StatusFailure, StatusInProgress:
		return Status(n), nil
	}
	return "", fmt.Errorf("status %q is not one of success, failure, in_progress", s)
}

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
