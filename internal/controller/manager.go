// Package controller runs Tidemark's Kubernetes controllers: it watches the
// hub.kalypso.io/v1alpha1 resources (DeploymentDescriptor, Reconciler,
// AzureResourceGraph) and Flux Kustomizations, feeds what they say to the
// ingest core, and reports back on each resource with a Ready condition,
// observedGeneration and events, in the style of the Flux controllers.
//
// The controllers never write to the store themselves: ingest does.
package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/sources/arg"
	"github.com/tidemark-dev/tidemark/internal/store"
)

const (
	// Name is the controller's name: the reporting controller of its
	// events and the field manager of its writes.
	Name = "tidemark-controller"
	// LeaderElectionID names the coordination.k8s.io Lease the replicas
	// compete for.
	LeaderElectionID = "tidemark-controller.hub.kalypso.io"
)

// Defaults of Options.
const (
	DefaultMaxConcurrentReconciles = 8
	DefaultRetryBaseDelay          = 100 * time.Millisecond
	DefaultRetryMaxDelay           = 5 * time.Minute
	DefaultReadyTimeout            = 2 * time.Second
	DefaultReconcileTimeout        = time.Minute
	// DefaultKubeAPIQPS and DefaultKubeAPIBurst bound the controller's
	// requests to the Kubernetes API (client-side rate limit).
	DefaultKubeAPIQPS   = 100
	DefaultKubeAPIBurst = 300
)

// Options configure the manager and its controllers.
type Options struct {
	// Ingest receives everything the controllers read. Required.
	Ingest *ingest.Service
	// Pollers, when set, poll Azure Resource Graph for every
	// AzureResourceGraph resource and every one pushed through the API;
	// without them AzureResourceGraphs are only validated.
	Pollers *arg.Manager
	// Store is pinged by the readiness probe. Required by NewManager.
	Store *store.Store
	// Logger is the manager's and the controllers' logger; controller-runtime's
	// global logger when unset.
	Logger logr.Logger

	// LeaderElection makes replicas compete for a Lease so that one
	// reconciles at a time.
	LeaderElection bool
	// LeaderElectionNamespace is where the Lease lives; in a pod it
	// defaults to the pod's namespace.
	LeaderElectionNamespace string
	// HealthProbeBindAddress serves /healthz and /readyz; "" or "0"
	// disables them.
	HealthProbeBindAddress string
	// MetricsBindAddress serves Prometheus metrics on /metrics; "" or "0"
	// disables them.
	MetricsBindAddress string
	// Metrics are the hub's instruments, served beside controller-runtime's
	// on MetricsBindAddress; NewManager registers them on
	// controller-runtime's registry when nil.
	Metrics *metrics.Metrics

	// Namespaces restricts every watch to these namespaces; empty watches
	// the whole cluster.
	Namespaces []string
	// MaxConcurrentReconciles per controller (DefaultMaxConcurrentReconciles).
	MaxConcurrentReconciles int
	// RetryBaseDelay and RetryMaxDelay bound the per-resource exponential
	// backoff after an error such as an unavailable store.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// ReadyTimeout bounds the store ping of the readiness probe.
	ReadyTimeout time.Duration
	// ReconcileTimeout bounds one reconciliation.
	ReconcileTimeout time.Duration

	// Clock is the source of "now" (tests); time.Now when nil.
	Clock func() time.Time
	// MapperProvider replaces the REST mapper (tests); the default
	// discovers the API server's resources.
	MapperProvider func(*rest.Config, *http.Client) (meta.RESTMapper, error)
}

func (o *Options) defaults() error {
	if o.Ingest == nil {
		return errors.New("controller: Options.Ingest is required")
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if o.RetryBaseDelay <= 0 {
		o.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.ReconcileTimeout <= 0 {
		o.ReconcileTimeout = DefaultReconcileTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.HealthProbeBindAddress == "" {
		o.HealthProbeBindAddress = "0"
	}
	if o.MetricsBindAddress == "" {
		o.MetricsBindAddress = "0"
	}
	return nil
}

// NewScheme returns the types the controllers read: Kubernetes' built-in
// types and hub.kalypso.io/v1alpha1. Flux Kustomizations are read as
// unstructured objects.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilMust(clientgoscheme.AddToScheme(s))
	utilMust(v1alpha1.AddToScheme(s))
	return s
}

func utilMust(err error) {
	if err != nil {
		panic(err)
	}
}

// NewManager builds a controller-runtime manager with leader election,
// health probes (readiness includes a store ping), metrics and the hub's
// controllers. Start it with its Start method.
func NewManager(cfg *rest.Config, o Options) (manager.Manager, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, errors.New("controller: Options.Store is required (readiness pings it)")
	}
	var byNamespace map[string]cache.Config
	if len(o.Namespaces) > 0 {
		byNamespace = make(map[string]cache.Config, len(o.Namespaces))
		for _, ns := range o.Namespaces {
			byNamespace[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        NewScheme(),
		Logger:                        o.Logger,
		MapperProvider:                o.MapperProvider,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsBindAddress},
		// Only the hub's resources are cached (and Kustomizations when
		// Flux is installed). Nothing here reads Secrets: the RBAC allows
		// them only in the controller's namespace.
		Cache: cache.Options{DefaultNamespaces: byNamespace},
		Controller: config.Controller{
			RecoverPanic: ptr.To(true),
			// The controller names are fixed in this package; tests run
			// several managers in one process.
			SkipNameValidation:    ptr.To(true),
			ReconciliationTimeout: o.ReconcileTimeout,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("controller manager: %w", err)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New(ctrlmetrics.Registry)
	}
	o.Metrics.Store.Watch(o.Store)
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("store", StoreCheck(o.Store, o.ReadyTimeout)); err != nil {
		return nil, err
	}
	if err := Setup(mgr, o); err != nil {
		return nil, err
	}
	return mgr, nil
}

// StoreCheck is a readiness check that pings the store.
func StoreCheck(st *store.Store, timeout time.Duration) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			return fmt.Errorf("store (%s) does not answer: %w", st.Engine(), err)
		}
		return nil
	}
}

// Setup adds the hub's controllers to a manager. The Flux Kustomization
// controller is added only when the Kustomization CRD is installed.
func Setup(mgr manager.Manager, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	log := mgr.GetLogger()
	rec := mgr.GetEventRecorder(Name)
	// The Kustomization controller asks for descriptors to be reconciled
	// again once their Kustomization has settled.
	requeue := make(chan event.TypedGenericEvent[*v1alpha1.DeploymentDescriptor], 1024)

	dr := &DescriptorReconciler{Client: mgr.GetClient(), Ingest: o.Ingest, Recorder: rec}
	if err := dr.SetupWithManager(mgr, o.controllerOptions(), requeue); err != nil {
		return fmt.Errorf("DeploymentDescriptor controller: %w", err)
	}
	rr := &ReconcilerReconciler{Client: mgr.GetClient(), Ingest: o.Ingest, Recorder: rec}
	if err := rr.SetupWithManager(mgr, o.controllerOptions()); err != nil {
		return fmt.Errorf("reconciler controller: %w", err)
	}
	ar := &AzureResourceGraphReconciler{Client: mgr.GetClient(), Ingest: o.Ingest, Pollers: o.Pollers, Recorder: rec}
	if err := ar.SetupWithManager(mgr, o.controllerOptions()); err != nil {
		return fmt.Errorf("AzureResourceGraph controller: %w", err)
	}
	if err := setupPollers(mgr, o); err != nil {
		return err
	}
	dep := &DeploymentReconciler{Client: mgr.GetClient(), Ingest: o.Ingest, Recorder: rec}
	if err := dep.SetupWithManager(mgr, o.controllerOptions()); err != nil {
		return fmt.Errorf("deployment controller: %w", err)
	}

	installed, err := fluxInstalled(mgr.GetRESTMapper())
	if err != nil {
		return err
	}
	if !installed {
		log.Info("Flux Kustomization CRD (" + KustomizationGVK.GroupVersion().String() + ") is not installed: " +
			"not watching Kustomizations; descriptors without a commit stay pending until they name one " +
			"(restart the controller after installing Flux)")
		close(requeue)
		return nil
	}
	kr := &KustomizationReconciler{Client: mgr.GetClient(), Ingest: o.Ingest, Requeue: requeue, Now: o.Clock}
	if err := kr.SetupWithManager(mgr, o.controllerOptions()); err != nil {
		return fmt.Errorf("kustomization controller: %w", err)
	}
	return nil
}

// setupPollers runs the Azure Resource Graph pollers, and the poller of
// each AzureResourceGraph pushed through the API, in the elected replica
// only.
func setupPollers(mgr manager.Manager, o Options) error {
	if o.Pollers == nil {
		return nil
	}
	if err := mgr.Add(o.Pollers); err != nil {
		return fmt.Errorf("azure resource graph pollers: %w", err)
	}
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return arg.SyncStored(ctx, o.Pollers, o.Ingest, storedEvery)
	}))
}

// controllerOptions are the options every controller gets: concurrency and
// a per-resource exponential backoff without an overall rate limit, so
// that after an outage every resource is retried promptly.
func (o *Options) controllerOptions() controller.Options {
	return controller.Options{
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](o.RetryBaseDelay, o.RetryMaxDelay),
	}
}

// fluxInstalled reports whether the API server serves Flux Kustomizations.
func fluxInstalled(m meta.RESTMapper) (bool, error) {
	_, err := m.RESTMapping(KustomizationGVK.GroupKind(), KustomizationGVK.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	default:
		return false, fmt.Errorf("discover %s: %w", KustomizationGVK, err)
	}
}
