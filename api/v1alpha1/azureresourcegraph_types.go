package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AzureResourceGraphSpec tells the hub which subscriptions to poll in Azure
// Resource Graph for Arc and AKS Flux configurations, and how to
// authenticate: a managed (workload) identity or a service principal Secret.
type AzureResourceGraphSpec struct {
	// Subscription is one subscription id; Subscriptions adds more.
	// +optional
	Subscription string `json:"subscription,omitempty"`
	// +optional
	Subscriptions []string `json:"subscriptions,omitempty"`
	// +kubebuilder:validation:MinLength=1
	Tenant string `json:"tenant"`
	// ManagedIdentity is the client id of a managed or workload identity.
	// +optional
	ManagedIdentity string `json:"managedIdentity,omitempty"`
	// SecretRef names a Secret in the resource's namespace holding a
	// service principal (clientId, clientSecret).
	// +optional
	SecretRef string `json:"secretRef,omitempty"`
	// Interval between polls, a Go duration such as 10s or 5m.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:default="5m"
	// +optional
	Interval string `json:"interval,omitempty"`
}

// AzureResourceGraphStatus is the state of the poller.
type AzureResourceGraphStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	LastPollTime *metav1.Time `json:"lastPollTime,omitempty"`
	// LastPoll sums up the latest poll.
	// +optional
	LastPoll *PollSummary `json:"lastPoll,omitempty"`
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PollSummary is what one poll of Azure Resource Graph found and changed.
type PollSummary struct {
	// Duration of the poll, such as 1.2s.
	// +optional
	Duration string `json:"duration,omitempty"`
	// Rows is the number of Flux configurations read.
	// +optional
	Rows int64 `json:"rows"`
	// Skipped is the number of rows that could not be used; SkippedReasons
	// counts them by reason.
	// +optional
	Skipped int64 `json:"skipped"`
	// +optional
	SkippedReasons map[string]int64 `json:"skippedReasons,omitempty"`
	// Reconcilers is the number of reconcilers (one per Kustomization of a
	// configuration) the poll saw.
	// +optional
	Reconcilers int64 `json:"reconcilers"`
	// Changed is the number of reconcilers whose state changed in the hub.
	// +optional
	Changed int64 `json:"changed"`
	// Created and Retired count the reconcilers that appeared and vanished.
	// +optional
	Created int64 `json:"created"`
	// +optional
	Retired int64 `json:"retired"`
	// Throttled counts the requests Resource Graph throttled (HTTP 429).
	// +optional
	Throttled int64 `json:"throttled"`
	// Error is why the poll failed; empty when it succeeded.
	// +optional
	Error string `json:"error,omitempty"`
}

// AzureResourceGraph makes the hub poll Azure Resource Graph for deployment
// state.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=arg
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenant`
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.interval`
// +kubebuilder:printcolumn:name="Reconcilers",type=integer,JSONPath=`.status.lastPoll.reconcilers`
// +kubebuilder:printcolumn:name="Last poll",type=date,JSONPath=`.status.lastPollTime`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AzureResourceGraph struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AzureResourceGraphSpec   `json:"spec"`
	Status AzureResourceGraphStatus `json:"status,omitempty"`
}

// AzureResourceGraphList is a list of AzureResourceGraphs.
//
// +kubebuilder:object:root=true
type AzureResourceGraphList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AzureResourceGraph `json:"items"`
}
