package model

import "time"

// DeploymentReport is a report that names its reconciler but not its host,
// type or endpoint: the original system's Deployment resource, sent by
// custom agents. The reconciler must be known already; ingest completes
// the report from what is stored.
type DeploymentReport struct {
	// Host is the reconciler's host; empty means the one host that has a
	// reconciler of that name.
	Host       string
	Reconciler string
	Commit     string // normalized
	Status     Status
	Message    string
	// ObservedAt is when the reconciler reached this state; zero means "now".
	ObservedAt time.Time
}
