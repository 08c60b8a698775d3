package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HostLabel on a Deployment names the host of its reconciler. Reconciler
// names repeat across hosts: without the label the hub takes the one host
// that has a reconciler of that name, and refuses the Deployment when
// several have.
const HostLabel = "hub.kalypso.io/host"

// DeploymentSpec is what a reconciler applied, reported by a custom agent
// that knows its reconciler's name only. The reconciler must be known to
// the hub already (a Reconciler resource, an API push, a poller or an
// agent registered it): its host, type and manifests endpoint come from
// there.
type DeploymentSpec struct {
	// ReconcilerName names the reconciler on its host.
	// +kubebuilder:validation:MinLength=1
	ReconcilerName string `json:"reconcilerName"`
	// GitOpsCommitID in any revision format: <sha>, main@sha1:<sha>,
	// main/<sha>, <tag>@sha256:<digest>.
	// +kubebuilder:validation:MinLength=1
	GitOpsCommitID string `json:"gitOpsCommitId"`
	// +kubebuilder:validation:Enum=success;failure;in_progress
	Status string `json:"status"`
	// +optional
	StatusMessage string `json:"statusMessage,omitempty"`
	// ObservedAt is when the reconciler reached this state (RFC 3339).
	// +optional
	ObservedAt string `json:"observedAt,omitempty"`
}

// DeploymentStatus is what the hub made of the report.
type DeploymentStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// HostName is the host the report was stored for.
	// +optional
	HostName string `json:"hostName,omitempty"`
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Deployment reports the state of one reconciler's GitOps commit: the way
// custom agents on clusters and VMs report to the hub directly.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dep
// +kubebuilder:printcolumn:name="Reconciler",type=string,JSONPath=`.spec.reconcilerName`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.status.hostName`
// +kubebuilder:printcolumn:name="Commit",type=string,JSONPath=`.spec.gitOpsCommitId`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.spec.status`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Deployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DeploymentSpec   `json:"spec"`
	Status DeploymentStatus `json:"status,omitempty"`
}

// DeploymentList is a list of Deployments.
//
// +kubebuilder:object:root=true
type DeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Deployment `json:"items"`
}
