package resource

import (
	"fmt"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// Decoded is one hub resource decoded from JSON and converted: the field
// of its kind is set.
type Decoded struct {
	Descriptor         model.Descriptor
	Report             model.Report
	Deployment         model.DeploymentReport
	AzureResourceGraph *v1alpha1.AzureResourceGraph
}

// Decode decodes raw as a resource of kind with decode (which words type
// mismatches for its caller) and converts or validates it as its kind
// requires. It is the one place that knows how each pushable kind is read:
// the API's push and `tidemark apply` both call it.
func Decode(kind string, raw []byte, decode func(raw []byte, dst any) error) (Decoded, error) {
	var d Decoded
	var err error
	switch kind {
	case KindDeploymentDescriptor:
		var r v1alpha1.DeploymentDescriptor
		if err = decode(raw, &r); err == nil {
			d.Descriptor, err = Descriptor(&r, FluxApplied{})
		}
	case KindReconciler:
		var r v1alpha1.Reconciler
		if err = decode(raw, &r); err == nil {
			d.Report, err = Report(&r)
		}
	case KindDeployment:
		var r v1alpha1.Deployment
		if err = decode(raw, &r); err == nil {
			d.Deployment, err = Deployment(&r)
		}
	case KindAzureResourceGraph:
		r := new(v1alpha1.AzureResourceGraph)
		if err = decode(raw, r); err == nil {
			d.AzureResourceGraph = r
			err = ValidateAzureResourceGraph(r)
		}
	default:
		err = fmt.Errorf("kind %s cannot be pushed", model.Quote(kind))
	}
	return d, err
}
