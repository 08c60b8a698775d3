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
)

func newServeCmd() *cobra.Command {
	var (
		addr, database, logLevel string
		loadDemo                 bool
		promotion                []string
		staleAfter               time.Duration
		sec                      serveSecurity
		metricsAddr              string
		metricsInterval          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub: HTTP API and web UI over the store",
		Long: `Run the hub: HTTP API and web UI over the store.

The store is an embedded SQLite file (tidemark.db in the working directory)
unless --database names a PostgreSQL server (postgres://user@host/db).
Schema migrations are applied at start.`,
		Example: `  tidemark serve --demo
  tidemark serve --database postgres://tidemark@db:5432/tidemark --addr :8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
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
			ctx := cmd.Context()
			st, err := openStore(ctx, database)
			if err != nil {
				return err
			}
			defer st.Close()
			log.Info("store ready", "engine", st.Engine(), "database", redactURL(database))
			if loadDemo {
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
			reportOpts := []reports.Option{reports.WithPromotionOrder(promotion), reports.WithStaleAfter(staleAfter)}
			reg := metrics.NewRegistry()
			m := metrics.New(reg)
			m.Store.Watch(st)
			state := metrics.NewState(m, reports.New(st, reportOpts...), metrics.StateOptions{Interval: metricsInterval, StaleAfter: staleAfter, Logger: log})
			go state.Run(ctx)
			srv := api.NewHTTPServer(addr, api.New(st, ing, api.Options{Logger: log, Reports: reportOpts, Auth: auth, Metrics: m}).Handler())
			errc := make(chan error, 2)
			go func() { errc <- sec.listen(srv) }()
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
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", envOr("TIDEMARK_METRICS_ADDR", ""), "also serve /metrics here, plain HTTP without a token (e.g. :9090 for Prometheus); /metrics on --addr needs the read scope")
	cmd.Flags().DurationVar(&metricsInterval, "metrics-interval", metrics.DefaultStateInterval, "how often the state gauges (hosts, drift, rollouts per target) are recomputed")
	sec.flags(cmd)
	return cmd
}
