package cli

import (
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/ingest"
)

func newControllerCmd() *cobra.Command {
	var (
		database, logLevel, kubeconfig string
		leaderElect                    bool
		leaderElectionNamespace        string
		probeAddr, metricsAddr         string
		concurrency, kubeAPIBurst      int
		kubeAPIQPS                     float32
		argFlags                       argPollFlags
		telemetry                      telemetrySources
		retention                      retentionFlag
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the Kubernetes controller: hub.kalypso.io resources and Flux Kustomizations into the store",
		Long: `Run the Kubernetes controller.

It watches DeploymentDescriptors, Reconcilers, Deployments and
AzureResourceGraphs (hub.kalypso.io/v1alpha1) in every namespace, and Flux
Kustomizations when their CRD is installed, stores what they say and sets a
Ready condition on each resource. Deleting a Reconciler retires it in the
store (a finalizer holds it until then). Each AzureResourceGraph, and each
one pushed through the HTTP API, gets a poller of Azure Resource Graph
(--arg-poll=false turns them off).

The cluster comes from --kubeconfig, $KUBECONFIG, the in-cluster service
account or ~/.kube/config, in that order. With --leader-elect, replicas
compete for a Lease in --leader-election-namespace and one reconciles.
/healthz and /readyz (which pings the store) are served on
--health-probe-bind-address, Prometheus metrics on --metrics-bind-address.`,
		Example: `  tidemark controller --kubeconfig ~/.kube/config --database tidemark.db
  tidemark controller --database postgres://tidemark@db:5432/tidemark --leader-elect`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			logger := logr.FromSlogHandler(log.Handler())
			ctrl.SetLogger(logger)
			klog.SetLogger(logger)

			if err := telemetry.check(); err != nil {
				return err
			}
			cfg, err := kubeConfig(kubeconfig)
			if err != nil {
				return err
			}
			cfg.QPS, cfg.Burst = kubeAPIQPS, kubeAPIBurst
			cfg.UserAgent = "tidemark-controller/" + version()

			history, err := retention.policy()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := openStore(ctx, database)
			if err != nil {
				return err
			}
			defer st.Close()
			log.Info("store ready", "engine", st.Engine(), "database", redactURL(database))
			stopHistory := startHistoryMaintenance(ctx, st, history, log)
			defer stopHistory()

			ing := ingest.New(st, ingest.WithLogger(log))
			pollers, creds, err := argFlags.manager(ing, log, ctrlmetrics.Registry)
			if err != nil {
				return err
			}
			mgr, err := controller.NewManager(cfg, controller.Options{
				Ingest:                  ing,
				Pollers:                 pollers,
				Store:                   st,
				Logger:                  logger,
				LeaderElection:          leaderElect,
				LeaderElectionNamespace: leaderElectionNamespace,
				HealthProbeBindAddress:  probeAddr,
				MetricsBindAddress:      metricsAddr,
				MaxConcurrentReconciles: concurrency,
			})
			if err != nil {
				return err
			}
			if creds != nil {
				creds.Secrets = controller.SecretReader(mgr.GetAPIReader())
			}
			if err := telemetry.addPollers(mgr, ing, log); err != nil {
				return err
			}
			log.Info("starting controller", "version", version(), "apiServer", cfg.Host,
				"leaderElect", leaderElect, "healthProbes", probeAddr, "metrics", metricsAddr)
			if err := mgr.Start(ctx); err != nil {
				return fmt.Errorf("controller: %w", err)
			}
			log.Info("controller stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&database, "database", envOr("TIDEMARK_DATABASE_URL", defaultDatabase), "store: an SQLite file path, or postgres://... (env TIDEMARK_DATABASE_URL)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, in-cluster, ~/.kube/config)")
	f.BoolVar(&leaderElect, "leader-elect", false, "elect one active replica through a coordination.k8s.io Lease")
	f.StringVar(&leaderElectionNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader election Lease (env POD_NAMESPACE; in a pod, its namespace)")
	f.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 disables)")
	f.StringVar(&metricsAddr, "metrics-bind-address", ":8082", "address of the Prometheus /metrics endpoint (0 disables)")
	f.IntVar(&concurrency, "concurrent", controller.DefaultMaxConcurrentReconciles, "resources reconciled at once, per kind")
	f.Float32Var(&kubeAPIQPS, "kube-api-qps", controller.DefaultKubeAPIQPS, "requests per second to the Kubernetes API")
	f.IntVar(&kubeAPIBurst, "kube-api-burst", controller.DefaultKubeAPIBurst, "burst of requests to the Kubernetes API")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	argFlags.flags(cmd)
	telemetry.prometheusFlag(cmd)
	retention.register(cmd)
	return cmd
}

// kubeConfig loads the Kubernetes client configuration: the file given,
// else controller-runtime's lookup ($KUBECONFIG, in-cluster, ~/.kube/config).
func kubeConfig(path string) (*rest.Config, error) {
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes cluster configured (give --kubeconfig, set KUBECONFIG or run in a pod): %w", err)
	}
	return cfg, nil
}
