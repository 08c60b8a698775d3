package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReconcilerSpec is what one reconciler (a Flux Kustomization, an Argo CD
// Application, an agent...) on one host applied: the real state.
//
// Both spellings in use are accepted: the seed README's (type, name from
// metadata.name) and the original code's (reconcilerType, reconcilerName).
//
// The reconciler's identity in the store, (hostName, reconcilerName or
// metadata.name), cannot change: deleting the resource retires exactly the
// reconciler it created.
//
// +kubebuilder:validation:XValidation:rule="self.hostName == oldSelf.hostName",message="spec.hostName is immutable: delete the Reconciler and create it again for another host"
// +kubebuilder:validation:XValidation:rule=`(has(self.reconcilerName) ? self.reconcilerName : "") == (has(oldSelf.reconcilerName) ? oldSelf.reconcilerName : "")`,message="spec.reconcilerName is immutable: delete the Reconciler and create it again to rename it"
type ReconcilerSpec struct {
	// +kubebuilder:validation:MinLength=1
	HostName string `json:"hostName"`
	// HostType is "cluster" (default) or "vm".
	// +kubebuilder:validation:Enum=cluster;vm
	// +optional
	HostType string `json:"hostType,omitempty"`
	// +optional
	HostLabels map[string]string `json:"hostLabels,omitempty"`
	// ReconcilerName names the reconciler on its host; metadata.name when empty.
	// +optional
	ReconcilerName string `json:"reconcilerName,omitempty"`
	// Type is the reconciler's kind: flux, argocd, arc-flux, agent...
	// +optional
	Type string `json:"type,omitempty"`
	// ReconcilerType is the original code's spelling of Type.
	// +optional
	ReconcilerType string `json:"reconcilerType,omitempty"`
	// ManifestsEndpoint is the repository, branch and path the reconciler
	// applies, joined: https://github.com/org/repo/<branch>/<path>.
	// +kubebuilder:validation:MinLength=1
	ManifestsEndpoint string `json:"manifestsEndpoint"`
	// ManifestsStorageType is "git" (default) or "oci".
	// +kubebuilder:validation:Enum=git;oci
	// +optional
	ManifestsStorageType string `json:"manifestsStorageType,omitempty"`
	// Deployment is what the reconciler last applied. A Reconciler without
	// it registers the reconciler before its first sync: its host counts
	// for its target as not yet reported.
	// +optional
	Deployment *Deployment `json:"deployment,omitempty"`
}

// Deployment is the state of the commit a reconciler applies.
type Deployment struct {
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

// ReconcilerStatus is what the hub made of the report.
type ReconcilerStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Reconciler reports what a reconciler on a host applied.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rec
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.hostName`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.manifestsEndpoint`,priority=1
// +kubebuilder:printcolumn:name="Commit",type=string,JSONPath=`.spec.deployment.gitOpsCommitId`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.spec.deployment.status`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Reconciler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ReconcilerSpec   `json:"spec"`
	Status ReconcilerStatus `json:"status,omitempty"`
}

// ReconcilerList is a list of Reconcilers.
//
// +kubebuilder:object:root=true
type ReconcilerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Reconciler `json:"items"`
}
