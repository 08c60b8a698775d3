// Package v1alpha1 holds the hub.kalypso.io/v1alpha1 resources that Tidemark
// shares with the Kalypso Observability Hub, so that descriptors and
// reconcilers written for it work unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=hub.kalypso.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of these resources.
	GroupVersion = schema.GroupVersion{Group: "hub.kalypso.io", Version: "v1alpha1"}

	// SchemeBuilder registers the resources with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the resources to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&DeploymentDescriptor{}, &DeploymentDescriptorList{},
		&Reconciler{}, &ReconcilerList{},
		&AzureResourceGraph{}, &AzureResourceGraphList{},
		&Deployment{}, &DeploymentList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
