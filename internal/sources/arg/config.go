// Package arg polls Azure Resource Graph for the Flux (GitOps)
// configurations of Azure Arc-enabled Kubernetes and AKS clusters and
// reports each configuration's Kustomizations to ingest as reconcilers:
// the original system's out-of-the-box source of real state.
//
// A Poller serves one AzureResourceGraph configuration with its own
// credential; a Manager runs one Poller per configuration, whatever
// brought it (a Kubernetes resource, a file, the HTTP API). Pollers call
// ingest; nothing here is called back.
package arg

import (
	"fmt"
	"slices"
	"strings"
	"time"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// DefaultInterval is the poll interval of a configuration without one.
const DefaultInterval = 5 * time.Minute

// SourcePrefix starts the source name of every reconciler a poller reports.
const SourcePrefix = ingest.AzureResourceGraphSource

// Config is what a poller needs of an AzureResourceGraph.
type Config struct {
	// Namespace is the resource's namespace; empty for configurations from
	// a file or the HTTP API.
	Namespace, Name string
	Tenant          string
	Subscriptions   []string
	Interval        time.Duration
	ManagedIdentity string
	SecretRef       string
}

// ConfigFrom validates an AzureResourceGraph and converts it.
func ConfigFrom(r *v1alpha1.AzureResourceGraph) (Config, error) {
	if err := resource.ValidateAzureResourceGraph(r); err != nil {
		return Config{}, err
	}
	sp := r.Spec
	c := Config{
		Namespace:       r.Namespace,
		Name:            strings.TrimSpace(r.Name),
		Tenant:          strings.TrimSpace(sp.Tenant),
		ManagedIdentity: strings.TrimSpace(sp.ManagedIdentity),
		SecretRef:       strings.TrimSpace(sp.SecretRef),
		Interval:        DefaultInterval,
	}
	for _, s := range append([]string{sp.Subscription}, sp.Subscriptions...) {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" && !slices.Contains(c.Subscriptions, s) {
			c.Subscriptions = append(c.Subscriptions, s)
		}
	}
	if sp.Interval != "" {
		d, err := time.ParseDuration(sp.Interval)
		if err != nil { // validated above
			return Config{}, fmt.Errorf("spec.interval: %w", err)
		}
		c.Interval = d
	}
	return c, nil
}

// Key identifies the configuration: "namespace/name", or "name" without a
// namespace.
func (c Config) Key() string {
	if c.Namespace == "" {
		return c.Name
	}
	return c.Namespace + "/" + c.Name
}

// Source is the source name of the reconcilers the configuration's poller
// reports: it retires exactly those when they vanish.
func (c Config) Source() string { return SourcePrefix + c.Key() }

// equal reports whether two configurations poll the same way.
func (c Config) equal(o Config) bool {
	return c.Namespace == o.Namespace && c.Name == o.Name && c.Tenant == o.Tenant && slices.Equal(c.Subscriptions, o.Subscriptions) &&
		c.Interval == o.Interval && c.ManagedIdentity == o.ManagedIdentity && c.SecretRef == o.SecretRef
}
