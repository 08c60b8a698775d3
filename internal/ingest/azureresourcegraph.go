package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// AzureResourceGraphSource starts the source name of the reconcilers an
// Azure Resource Graph poller reports; it is followed by the
// configuration's [namespace/]name.
const AzureResourceGraphSource = "azure-resource-graph/"

// StoredAzureResourceGraphs lists the poller configurations pushed through
// the API, so that they are polled like AzureResourceGraph resources.
func (s *Service) StoredAzureResourceGraphs(ctx context.Context) ([]v1alpha1.AzureResourceGraph, error) {
	rows, err := store.AzureResourceGraphs(ctx, s.store.Primary())
	if err != nil {
		return nil, fmt.Errorf("list stored AzureResourceGraphs: %w", err)
	}
	out := make([]v1alpha1.AzureResourceGraph, 0, len(rows))
	for _, r := range rows {
		arg := v1alpha1.AzureResourceGraph{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "AzureResourceGraph"},
			ObjectMeta: metav1.ObjectMeta{Name: r.Name},
		}
		if err := json.Unmarshal([]byte(r.Spec), &arg.Spec); err != nil {
			s.log.Warn("stored AzureResourceGraph has an unreadable spec: not polled", "name", r.Name, "err", err)
			continue
		}
		out = append(out, arg)
	}
	return out, nil
}

// DeleteAzureResourceGraph removes a poller configuration pushed through
// the API and retires the reconcilers its poller reported. It reports
// whether the configuration existed.
func (s *Service) DeleteAzureResourceGraph(ctx context.Context, name string) (bool, error) {
	var deleted bool
	err := s.store.Tx(ctx, func(q store.Querier) error {
		var err error
		deleted, err = store.DeleteAzureResourceGraph(ctx, q, name)
		return err
	})
	if err != nil || !deleted {
		return deleted, err
	}
	_, err = s.RetireMissing(ctx, AzureResourceGraphSource+name, nil)
	return true, err
}
