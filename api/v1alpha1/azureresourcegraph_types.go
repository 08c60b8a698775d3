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
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AzureResourceGraph makes the hub poll Azure Resource Graph for deployment
// state.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=arg
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenant`
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.interval`
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
