package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/tidemark-dev/tidemark/internal/agent"
	"github.com/tidemark-dev/tidemark/internal/api"
)

func newAgentCmd() *cobra.Command {
	var (
		hub                   client
		kubeconfig, hostName  string
		namespace, addr       string
		logLevel              string
		hostLabels            map[string]string
		bufferSize, batchSize int
		flush, resync         time.Duration
		kubeAPIQPS            float32
		kubeAPIBurst          int
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run in a workload cluster: push its Flux and Argo CD reconcilers' state to a hub",
		Long: `Run in a workload cluster with read-only access and push what its
reconcilers applied to a hub's HTTP API (a token with the write scope).

It watches Flux Kustomizations and HelmReleases (with the GitRepositories,
OCIRepositories and HelmRepositories they read) and Argo CD Applications,
each when its CRD is installed, and reports each as a reconciler of the host
--host-name (default: the uid of the cluster's kube-system namespace). It
sends only changes, in batches; while the hub is unreachable it keeps them in
order, up to --buffer-size, then the latest of each reconciler. It registers
a reconciler when its object appears and retires it when it is deleted; every
--resync-interval (and at start) it sends every reconciler again and retires
those deleted while it was away.

/healthz, /readyz (the watches have synced) and /metrics are served on --addr.
The token comes from --token or TIDEMARK_TOKEN (mount it from a Secret).`,
		Example: `  tidemark agent --server https://tidemark.example.com --host-name aks-prod-weu-1 --host-label env=prod`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			klog.SetLogger(logr.FromSlogHandler(log.Handler()))
			cfg, err := kubeConfig(kubeconfig)
			if err != nil {
				return err
			}
			cfg.QPS, cfg.Burst = kubeAPIQPS, kubeAPIBurst
			cfg.UserAgent = "tidemark-agent/" + version()
			hc, err := hub.httpClient()
			if err != nil {
				return err
			}
			token := hub.token
			if token == "" {
				token = envOr("TIDEMARK_TOKEN", "")
			}
			ctx := cmd.Context()
			if hostName == "" {
				if hostName, err = agent.HostName(ctx, cfg); err != nil {
					return err
				}
			}
			reg := agent.NewRegistry()
			a, err := agent.New(agent.Options{
				Kube: cfg, Hub: &agent.Hub{URL: hub.server, Token: token, HTTP: hc},
				Host: hostName, HostLabels: hostLabels, Namespace: namespace,
				BufferSize: bufferSize, BatchSize: batchSize, FlushInterval: flush, ResyncInterval: resync,
				Registerer: reg, Logger: log,
			})
			if err != nil {
				return err
			}
			srv := api.NewHTTPServer(addr, a.Handler(reg))
			errc := make(chan error, 1)
			go func() {
				if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
					errc <- fmt.Errorf("--addr %s: %w", addr, err)
				}
			}()
			log.Info("agent starting", "version", version(), "host", hostName, "hub", hub.server, "addr", addr)
			runErr := make(chan error, 1)
			go func() { runErr <- a.Run(ctx) }()
			select {
			case err = <-errc:
			case err = <-runErr:
			}
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx)
			return err
		},
	}
	hub.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, in-cluster, ~/.kube/config)")
	f.StringVar(&hostName, "host-name", envOr("TIDEMARK_HOST_NAME", ""), "the cluster's host name in the hub (env TIDEMARK_HOST_NAME; default: the kube-system namespace's uid)")
	f.StringToStringVar(&hostLabels, "host-label", nil, "host label key=value (repeatable), e.g. env=prod,region=weu")
	f.StringVar(&namespace, "namespace", "", "watch only this namespace (default: all)")
	f.StringVar(&addr, "addr", ":8080", "address of /healthz, /readyz and /metrics")
	f.IntVar(&bufferSize, "buffer-size", agent.DefaultBufferSize, "changes kept in order while the hub is unreachable; past it, the latest of each reconciler")
	f.IntVar(&batchSize, "batch-size", agent.DefaultBatchSize, "most reports in one request")
	f.DurationVar(&flush, "flush-interval", agent.DefaultFlushInterval, "how long changes are gathered into one batch")
	f.DurationVar(&resync, "resync-interval", agent.DefaultResyncInterval, "how often every reconciler is sent again (keeps the host from going stale)")
	f.Float32Var(&kubeAPIQPS, "kube-api-qps", 20, "requests per second to the Kubernetes API")
	f.IntVar(&kubeAPIBurst, "kube-api-burst", 50, "burst of requests to the Kubernetes API")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
