// Package reports answers the hub's questions from the store: what
// runs where (Environment State, Host State), history, the differences
// between environments, drift, DORA metrics and the rollout gate. Every
// report gives the same answers on every store engine.
package reports

import "time"

// Filter narrows a report. Empty fields do not filter. Since and Until
// bound the time the report is about (see each report).
type Filter struct {
	Workspace   string `json:"workspace,omitempty"`
	Application string `json:"application,omitempty"`
	Environment string `json:"environment,omitempty"`
	Workload    string `json:"workload,omitempty"`
	Target      string `json:"target,omitempty"`
	Host        string `json:"host,omitempty"`
	// Status is success, failure or in_progress.
	Status string    `json:"status,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
}

// timed says whether the filter has a time range (Since or Until).
func (f Filter) timed() bool { return !f.Since.IsZero() || !f.Until.IsZero() }

// TargetRef names a deployment target.
type TargetRef struct {
	Workspace   string `json:"workspace"`
	Application string `json:"application"`
	Workload    string `json:"workload"`
	Environment string `json:"environment"`
	Target      string `json:"target"`
}

// Scheduled is a target's latest assignment: the version meant to run.
type Scheduled struct {
	Version    string    `json:"version"`
	Commit     string    `json:"commit,omitempty"` // empty while pending
	AssignedAt time.Time `json:"assignedAt"`
}

// EnvironmentStateRow is one (target, deployed version, status) group, as
// in the Environment State mockup: a target whose hosts disagree has several
// rows. A target that no host reconciles has one row with Hosts 0.
type EnvironmentStateRow struct {
	TargetRef
	Scheduled *Scheduled `json:"scheduled,omitempty"` // nil: no assignment yet
	// DeployedVersion is "" when the hosts report a commit the hub cannot
	// place (unknown version).
	DeployedVersion string `json:"deployedVersion"`
	DeployedKnown   bool   `json:"deployedKnown"`
	// Status is success, failure, in_progress, not_reported (registered
	// reconcilers that have not reported yet), or "" for a target without
	// hosts.
	Status string `json:"status"`
	Hosts  int    `json:"hosts"`
	// UpToDate is true when DeployedVersion is the scheduled version.
	UpToDate bool `json:"upToDate"`
}

// HostStateRow is what one host (one reconciler on it) deploys for one
// target.
type HostStateRow struct {
	Host       string `json:"host"`
	HostType   string `json:"hostType"`
	Reconciler string `json:"reconciler"`
	TargetRef
	Version      string `json:"version"` // "" when unknown
	VersionKnown bool   `json:"versionKnown"`
	Commit       string `json:"commit"` // "" when not reported yet
	Status       string `json:"status"` // success, failure, in_progress or not_reported
	Message      string `json:"message,omitempty"`
	// MessageBytes is the length of the message as reported, when the hub
	// cut it to its maximum; else 0.
	MessageBytes int `json:"messageBytes,omitempty"`
	// StatusSince is when the host reached its status (for one not
	// reported yet: when its reconciler was registered).
	StatusSince  time.Time `json:"statusSince"`
	LastReportAt time.Time `json:"lastReportAt"`
	Scheduled    string    `json:"scheduledVersion,omitempty"`
	UpToDate     bool      `json:"upToDate"`
}

// HistoryRow is one assignment of a target, with how its hosts fared:
// each live host counts once, by its latest report of a commit that resolves
// to this assignment; hosts with none count as not reported.
type HistoryRow struct {
	TargetRef
	Version     string    `json:"version"`
	Commit      string    `json:"commit,omitempty"`
	AssignedAt  time.Time `json:"assignedAt"`
	BuildTime   time.Time `json:"buildTime,omitzero"`
	Success     int       `json:"success"`
	Failure     int       `json:"failure"`
	InProgress  int       `json:"inProgress"`
	NotReported int       `json:"notReported"`
	// FirstSuccessAt is when the first host first succeeded;
	// AllSucceededAt when the last host first did, set only while every
	// host succeeds. A host that applies the commit again (in progress,
	// then success) moves neither.
	FirstSuccessAt *time.Time `json:"firstSuccessAt,omitempty"`
	AllSucceededAt *time.Time `json:"allSucceededAt,omitempty"`
}

// Discrepancies is the workloads × environments matrix.
type Discrepancies struct {
	// Environments are the columns: every environment in the data, ordered
	// by the promotion order, unknown ones last by name.
	Environments []string         `json:"environments"`
	Items        []DiscrepancyRow `json:"items"`
}

// DiscrepancyRow is one workload across environments.
type DiscrepancyRow struct {
	Workspace   string `json:"workspace"`
	Application string `json:"application"`
	Workload    string `json:"workload"`
	// Cells align with Discrepancies.Environments.
	Cells []DiscrepancyCell `json:"cells"`
	// Differs is true when environments deploy different version sets.
	Differs bool `json:"differs"`
}

// DiscrepancyCell is one workload in one environment.
type DiscrepancyCell struct {
	Environment string         `json:"environment"`
	Targets     []string       `json:"targets"`
	Scheduled   []string       `json:"scheduled"`
	Deployed    []VersionHosts `json:"deployed"`
}

// VersionHosts counts the hosts deploying a version ("" unknown).
type VersionHosts struct {
	Version string `json:"version"`
	Hosts   int    `json:"hosts"`
}

// Drift kinds.
const (
	DriftVersion  = "version"  // a host is not at its target's scheduled version
	DriftUnknown  = "unknown"  // a host reports a commit the hub cannot place
	DriftUnplaced = "unplaced" // a reconciler applies an endpoint no target has
	DriftNoHosts  = "no_hosts" // a target no host reconciles
	DriftStale    = "stale"    // a host has not reported for longer than the stale limit
	DriftFailed   = "failed"   // a host failed at the scheduled version
	// DriftNotReported: a host's reconciler is registered but has not
	// reported yet.
	DriftNotReported = "not_reported"
)

// DriftRow is one thing that differs from the desired state, since when.
type DriftRow struct {
	Kind string `json:"kind"`
	TargetRef
	Host       string    `json:"host,omitempty"`
	Reconciler string    `json:"reconciler,omitempty"`
	Scheduled  string    `json:"scheduledVersion,omitempty"`
	Deployed   string    `json:"deployedVersion,omitempty"`
	Commit     string    `json:"commit,omitempty"`
	Status     string    `json:"status,omitempty"`
	Message    string    `json:"message,omitempty"`
	Since      time.Time `json:"since"`
	// For is how long it has been so, in seconds.
	For float64 `json:"forSeconds"`
}

// DORARow holds the four DORA metrics of one workload in one environment
// over the filter's time range.
type DORARow struct {
	Workspace   string `json:"workspace"`
	Application string `json:"application"`
	Workload    string `json:"workload"`
	Environment string `json:"environment"`
	// Deployments is the number of assignments in the range that reached
	// success on every host; PerDay divides by the range's days.
	Deployments int     `json:"deployments"`
	PerDay      float64 `json:"deploymentsPerDay"`
	// LeadTime is the median time from build to success on every host.
	LeadTimeSeconds *float64 `json:"leadTimeSeconds,omitempty"`
	// ChangeFailureRate is the share of assignments in the range that
	// failed on any host.
	Changes           int      `json:"changes"`
	Failed            int      `json:"failed"`
	ChangeFailureRate *float64 `json:"changeFailureRate,omitempty"`
	// TimeToRestore is the median time from a failed assignment's first
	// failure to the next success on every host.
	TimeToRestoreSeconds *float64 `json:"timeToRestoreSeconds,omitempty"`
}

// GateQuery names what a rollout gate waits for: a target (by name, with
// workload/application/workspace/environment to tell apart targets of the
// same name) or a manifests endpoint, and a version or a GitOps commit.
type GateQuery struct {
	Target      string `json:"target,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
	Workload    string `json:"workload,omitempty"`
	Application string `json:"application,omitempty"`
	Workspace   string `json:"workspace,omitempty"`
	Environment string `json:"environment,omitempty"`
	Version     string `json:"version,omitempty"`
	Commit      string `json:"commit,omitempty"`
}

// Gate is the state of a rollout on a target's hosts.
type Gate struct {
	TargetRef
	Version     string     `json:"version,omitempty"`
	Commit      string     `json:"commit,omitempty"`
	Total       int        `json:"total"`
	Succeeded   int        `json:"succeeded"`
	Failed      int        `json:"failed"`
	InProgress  int        `json:"inProgress"`
	NotReported int        `json:"notReported"`
	Hosts       []GateHost `json:"hosts"`
	// Done is true when every host succeeded; Failing when any failed.
	Done    bool `json:"done"`
	Failing bool `json:"failing"`
}

// GateHost is one host of a gate.
type GateHost struct {
	Host       string `json:"host"`
	Reconciler string `json:"reconciler"`
	State      string `json:"state"` // succeeded, failed, in_progress, not_reported
	// Commit, Version, Message and Since are those of the deployment
	// counted; for a not_reported host, of what it runs now (nothing before
	// its first report; no version when its commit resolves to none on the
	// target).
	Commit  string    `json:"commit,omitempty"`
	Version string    `json:"version,omitempty"`
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}
