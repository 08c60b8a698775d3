// Package v1alpha1 holds the hub.kalypso.io/v1alpha1 resources that Tidemark
// shares with the Kalypso Observability Hub, so that descriptors and
// reconcilers written for it work unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=hub.kalypso.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these resources.
	GroupVersion = schema.GroupVersion{Group: "hub.kalypso.io", Version: "v1alpha1"}

	// SchemeBuilder registers the resources with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the resources to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
