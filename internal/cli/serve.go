package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/demo"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/web"
)

func newServeCmd() *cobra.Command {
	var (
		addr, database, logLevel string
		loadDemo                 bool
		promotion                []string
		staleAfter               time.Duration
		forges                   map[string]string
		sec                      serveSecurity
		argFlags                 argPollFlags
		telemetry                telemetrySources
		replicas                 replicaFlags
		retention                retentionFlag
		metricsAddr              string
		metricsInterval          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub: HTTP API and web UI over the store",
		Long: `Run the hub: HTTP API and web UI over the store.

The store is an embedded SQLite file (tidemark.db in the working directory)
unless --database names a PostgreSQL server (postgres://user@host/db).
Schema migrations are applied at start.

Every AzureResourceGraph pushed through the API, and each one in
--arg-config, is polled like the resource (--arg-poll=false turns polling
off, as API replicas in Kubernetes do: the controller polls there).

With PostgreSQL, --read-database names streaming replicas that reports
read from while they are healthy and within --max-replica-lag; writes and
the rollout gate stay on the primary. --history-retention drops status
history older than it (whole months on PostgreSQL).`,
		Example: `  tidemark serve --demo
  tidemark serve --database postgres://tidemark@db:5432/tidemark --addr :8080
  tidemark serve --database postgres://tidemark@db:5432/tidemark \
    --read-database postgres://tidemark@db-replica-1:5432/tidemark,postgres://tidemark@db-replica-2:5432/tidemark \
    --history-retention 400d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			history, err := retention.policy()
			if err != nil {
				return err
			}
			useTLS, err := sec.tls()
			if err != nil {
				return err
			}
			auth, err := sec.authenticator(log)
			if err != nil {
				return err
			}
			if err := telemetry.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			replicaOpts, closeReplicas, err := replicas.options(database)
			if err != nil {
				return err
			}
			st, err := openStore(ctx, database, replicaOpts...)
			if err != nil {
				closeReplicas()
				return err
			}
			defer st.Close()
			log.Info("store ready", "engine", st.Engine(), "database", redactURL(database))
			for _, r := range st.Replicas() {
				log.Info("read replica", "name", r.Name, "healthy", r.Healthy, "lag", r.Lag.String(), "error", r.Error)
			}
			stopHistory := startHistoryMaintenance(ctx, st, history, log)
			defer stopHistory()
			if loadDemo {
				// It takes a few seconds: say so, or a first-time user
				// watches a silent terminal and an unanswered port.
				log.Info("loading the demo fleet into an empty store (about 15 s; served once loaded)")
				start := time.Now()
				stats, err := demo.Load(ctx, st, time.Now())
				if err != nil {
					return fmt.Errorf("load demo data: %w", err)
				}
				if stats.Skipped {
					log.Info("demo data not loaded: the store already holds data")
				} else {
					log.Info("demo data loaded", "workspaces", stats.Workspaces, "environments", stats.Environments,
						"workloads", stats.Workloads, "hosts", stats.Hosts, "descriptors", stats.Descriptors,
						"reports", stats.Reports, "took", time.Since(start).Round(time.Millisecond))
				}
			}
			ing := ingest.New(st, ingest.WithLogger(log))
			// One registry for the hub's metrics and its sources', served
			// on /metrics.
			reg := metrics.NewRegistry()
			m := metrics.New(reg)
			m.Store.Watch(st)
			pollers, _, err := argFlags.manager(ing, log, reg)
			if err != nil {
				return err
			}
			if pollers != nil {
				runPollers(ctx, pollers, ing)
			}
			reportOpts := []reports.Option{reports.WithPromotionOrder(promotion), reports.WithStaleAfter(staleAfter)}
			state := metrics.NewState(m, reports.New(st, reportOpts...), metrics.StateOptions{Interval: metricsInterval, StaleAfter: staleAfter, Logger: log})
			go state.Run(ctx)
			telem, err := telemetry.start(ctx, st, ing, auth, &sec, reg, log)
			if err != nil {
				return err
			}
			defer telem.stop()
			ui, err := web.New(reports.New(st, reportOpts...), web.Options{Auth: auth, Logger: log, Forges: forges, StaleAfter: staleAfter})
			if err != nil {
				return err
			}
			apiHandler := api.New(st, ing, api.Options{Logger: log, Reports: reportOpts, Auth: auth, WriteRoutes: telem.routes, Metrics: m}).Handler()
			srv := api.NewHTTPServer(addr, telem.handler(apiHandler, web.Combine(apiHandler, ui.Handler())))
			errc := make(chan error, 3)
			go func() { errc <- sec.listen(srv) }()
			go func() {
				if err := telem.serveGRPC(); err != nil {
					errc <- err
				}
			}()
			servers := []*http.Server{srv}
			if metricsAddr != "" {
				// Plain HTTP and no token, for Prometheus on an internal port.
				mux := http.NewServeMux()
				mux.Handle("GET /metrics", m.Handler())
				msrv := api.NewHTTPServer(metricsAddr, mux)
				servers = append(servers, msrv)
				go func() {
					if err := msrv.ListenAndServe(); err != nil {
						errc <- fmt.Errorf("--metrics-addr %s: %w", metricsAddr, err)
					}
				}()
				log.Info("serving metrics", "addr", metricsAddr)
			}
			log.Info("serving", "addr", addr, "tls", useTLS, "version", version())
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			log.Info("shutting down")
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, s := range servers {
				if err := s.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", envOr("TIDEMARK_ADDR", ":8080"), "address to serve HTTP on")
	cmd.Flags().StringVar(&database, "database", envOr("TIDEMARK_DATABASE_URL", defaultDatabase), "store: an SQLite file path, or postgres://... (env TIDEMARK_DATABASE_URL)")
	cmd.Flags().BoolVar(&loadDemo, "demo", false, "load a realistic sample fleet into an empty store")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringSliceVar(&promotion, "promotion-order", nil, "environments in promotion order, e.g. dev,qa,staging,prod (others follow)")
	cmd.Flags().DurationVar(&staleAfter, "stale-after", reports.DefaultStaleAfter, "a host without a report for this long is stale (drift)")
	cmd.Flags().StringToStringVar(&forges, "forge", nil, "a self-hosted forge for commit links in the UI, HOST=github|gitlab|bitbucket|azure (repeatable)")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", envOr("TIDEMARK_METRICS_ADDR", ""), "also serve /metrics here, plain HTTP without a token (e.g. :9090 for Prometheus); /metrics on --addr needs the read scope")
	cmd.Flags().DurationVar(&metricsInterval, "metrics-interval", metrics.DefaultStateInterval, "how often the state gauges (hosts, drift, rollouts per target) are recomputed")
	sec.flags(cmd)
	argFlags.flags(cmd)
	telemetry.serveFlags(cmd)
	replicas.register(cmd)
	retention.register(cmd)
	return cmd
}
