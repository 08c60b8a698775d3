package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitOpsCommitAnnotation on a DeploymentDescriptor names the GitOps commit
// that carries it, overriding the Flux Kustomization's revision.
const GitOpsCommitAnnotation = "hub.kalypso.io/gitops-commit"

// AssignedAtAnnotation on a DeploymentDescriptor is the time (RFC 3339) its
// assignment took effect, such as when the pipeline merged the promotion;
// spec.assignedAt overrides it.
const AssignedAtAnnotation = "hub.kalypso.io/assigned-at"

// DeploymentDescriptorSpec says which version of a workload is meant to run
// on a deployment target: the desired state.
type DeploymentDescriptorSpec struct {
	Workload         Workload         `json:"workload"`
	DeploymentTarget DeploymentTarget `json:"deploymentTarget"`
	WorkloadVersion  WorkloadVersion  `json:"workloadVersion"`
	// GitOpsCommitID is the GitOps commit that carries this descriptor, in
	// any revision format reconcilers use. It overrides the commit of the
	// Flux Kustomization that applied the descriptor.
	// +optional
	GitOpsCommitID string `json:"gitOpsCommitId,omitempty"`
	// AssignedAt is when the assignment took effect (RFC 3339), such as
	// when the GitOps commit was made. It lets the hub order assignments
	// and reports by their own times, whatever order they arrive in.
	// Without it: the hub.kalypso.io/assigned-at annotation, else when the
	// Flux Kustomization applied the descriptor, else when the hub stored it.
	// +optional
	AssignedAt string `json:"assignedAt,omitempty"`
}

// Workload is a microservice with its source repository.
type Workload struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	Source      WorkloadSource `json:"source,omitempty"`
	Application Application    `json:"application"`
}

// WorkloadSource is where a workload's code lives.
type WorkloadSource struct {
	// +optional
	Repo string `json:"repo,omitempty"`
	// +optional
	Branch string `json:"branch,omitempty"`
	// +optional
	Path string `json:"path,omitempty"`
}

// Application is a service that groups workloads.
type Application struct {
	// +kubebuilder:validation:MinLength=1
	Name      string    `json:"name"`
	Workspace Workspace `json:"workspace"`
}

// Workspace is a team.
type Workspace struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// DeploymentTarget is where a workload is deployed in one environment.
type DeploymentTarget struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	Environment string    `json:"environment"`
	Manifests   Manifests `json:"manifests"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// Manifests is the endpoint that holds a target's manifests.
type Manifests struct {
	// Storage is "git" (default) or "oci".
	// +kubebuilder:validation:Enum=git;oci
	// +optional
	Storage string `json:"storage,omitempty"`
	// +kubebuilder:validation:MinLength=1
	Repo string `json:"repo"`
	// +optional
	Branch string `json:"branch,omitempty"`
	// +optional
	Path string `json:"path,omitempty"`
}

// WorkloadVersion is one build of a workload.
type WorkloadVersion struct {
	// +kubebuilder:validation:MinLength=1
	Version string `json:"version"`
	// +optional
	Build string `json:"build,omitempty"`
	// Commit is the source commit the version was built from.
	// +optional
	Commit string `json:"commit,omitempty"`
	// BuildTime is an RFC 3339 time.
	// +optional
	BuildTime string `json:"buildTime,omitempty"`
}

// DeploymentDescriptorStatus is what the hub made of the descriptor.
type DeploymentDescriptorStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// GitOpsCommitID is the resolved GitOps commit; empty while pending.
	// +optional
	GitOpsCommitID string `json:"gitOpsCommitId,omitempty"`
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DeploymentDescriptor describes what version of a workload is meant to run
// on a deployment target.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dd
// +kubebuilder:printcolumn:name="Environment",type=string,JSONPath=`.spec.deploymentTarget.environment`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.deploymentTarget.name`
// +kubebuilder:printcolumn:name="Workload",type=string,JSONPath=`.spec.workload.name`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.workloadVersion.version`
// +kubebuilder:printcolumn:name="Commit",type=string,JSONPath=`.status.gitOpsCommitId`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DeploymentDescriptor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DeploymentDescriptorSpec   `json:"spec"`
	Status DeploymentDescriptorStatus `json:"status,omitempty"`
}

// DeploymentDescriptorList is a list of DeploymentDescriptors.
//
// +kubebuilder:object:root=true
type DeploymentDescriptorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DeploymentDescriptor `json:"items"`
}
