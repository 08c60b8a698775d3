package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/sources/otlp"
	"github.com/tidemark-dev/tidemark/internal/sources/prometheus"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// telemetrySources holds the flags of the telemetry sources: the OTLP logs
// receiver (OTLP/HTTP always on the API's port, OTLP/gRPC on a port of its
// own) and the Prometheus poller.
type telemetrySources struct {
	otlpGRPCAddr     string
	prometheusConfig string
	prometheus       prometheus.Config
}

func (t *telemetrySources) serveFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.otlpGRPCAddr, "otlp-grpc-addr", "", "serve OTLP/gRPC logs on this address; the flag alone is "+otlp.DefaultGRPCAddr+
		" (default off; OTLP/HTTP is always on the API's port at "+otlp.HTTPPath+")")
	cmd.Flags().Lookup("otlp-grpc-addr").NoOptDefVal = otlp.DefaultGRPCAddr
	t.prometheusFlag(cmd)
}

func (t *telemetrySources) prometheusFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.prometheusConfig, "prometheus-config", "",
		"poll the Prometheus-compatible query APIs this YAML file lists for Flux's info series (README: Prometheus)")
}

// check reads --prometheus-config, so that a bad file stops the command
// before it serves anything.
func (t *telemetrySources) check() error {
	if t.prometheusConfig == "" {
		return nil
	}
	cfg, err := prometheus.LoadConfig(t.prometheusConfig)
	if err != nil {
		return fmt.Errorf("--prometheus-config: %w", err)
	}
	t.prometheus = cfg
	return nil
}

// runningSources are the started telemetry sources of serve.
type runningSources struct {
	// routes are the OTLP/HTTP routes for the API's mux (write scope).
	routes   map[string]http.Handler
	grpc     *grpc.Server
	lis      net.Listener
	stopPoll context.CancelFunc
	polled   chan struct{}
}

// start builds the OTLP receiver, listens for OTLP/gRPC with the API's
// credentials (write scope) and TLS when --otlp-grpc-addr is set, and
// starts the Prometheus pollers.
// The sources' metrics join reg.
func (t *telemetrySources) start(ctx context.Context, st *store.Store, ing *ingest.Service, auth api.Authenticator, sec *serveSecurity, reg prom.Registerer, log *slog.Logger) (*runningSources, error) {
	r := &runningSources{polled: make(chan struct{})}
	recv, err := otlp.New(ing, otlp.Options{Logger: log, Registerer: reg, Environments: reports.New(st)})
	if err != nil {
		return nil, err
	}
	r.routes = map[string]http.Handler{"POST " + otlp.HTTPPath: recv}
	pollers, err := prometheus.NewPollers(t.prometheus, ing, prometheus.Options{Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("--prometheus-config: %w", err)
	}
	if t.otlpGRPCAddr != "" {
		opts := otlp.GRPCOptions{Authorize: authorizeWrite(auth)}
		if on, _ := sec.tls(); on {
			if opts.TLS, err = sec.tlsConfig(); err != nil {
				return nil, err
			}
		}
		if r.lis, err = net.Listen("tcp", t.otlpGRPCAddr); err != nil {
			return nil, fmt.Errorf("--otlp-grpc-addr: %w", err)
		}
		r.grpc = recv.NewGRPCServer(opts)
	}
	var pollCtx context.Context
	pollCtx, r.stopPoll = context.WithCancel(ctx)
	go func() { prometheus.RunPollers(pollCtx, pollers); close(r.polled) }()
	log.Info("telemetry sources", "otlpHTTP", otlp.HTTPPath, "otlpGRPC", t.otlpGRPCAddr, "prometheusSources", len(pollers))
	return r, nil
}

// handler sends the OTLP/HTTP routes to the API's handler, which serves
// them with the write scope, and everything else to rest (the API and the
// web UI).
func (r *runningSources) handler(apiHandler, rest http.Handler) http.Handler {
	mux := http.NewServeMux()
	for pattern := range r.routes {
		mux.Handle(pattern, apiHandler)
	}
	mux.Handle("/", rest)
	return mux
}

// serveGRPC serves OTLP/gRPC until stop; without it, it returns at once.
func (r *runningSources) serveGRPC() error {
	if r.grpc == nil {
		return nil
	}
	if err := r.grpc.Serve(r.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("OTLP/gRPC: %w", err)
	}
	return nil
}

// stop ends the pollers and gRPC, letting exports in flight finish.
func (r *runningSources) stop() {
	r.stopPoll()
	<-r.polled
	if r.grpc != nil {
		r.grpc.GracefulStop()
	}
}

// addPollers runs the Prometheus pollers in the controller's manager: on
// the elected replica only, their metrics beside the controller's.
func (t *telemetrySources) addPollers(mgr manager.Manager, ing *ingest.Service, log *slog.Logger) error {
	pollers, err := prometheus.NewPollers(t.prometheus, ing, prometheus.Options{Logger: log, Registerer: ctrlmetrics.Registry})
	if err != nil {
		return fmt.Errorf("--prometheus-config: %w", err)
	}
	if len(pollers) == 0 {
		return nil
	}
	// A RunnableFunc needs leader election: one replica polls.
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		prometheus.RunPollers(ctx, pollers)
		return nil
	}))
}

// authorizeWrite checks gRPC exports with the API's authenticator and its
// write scope; nil (an open API) leaves gRPC open too.
func authorizeWrite(auth api.Authenticator) otlp.Authorize {
	if auth == nil {
		return nil
	}
	return func(ctx context.Context, authorization string) error {
		// The authenticator reads an HTTP request: give it the gRPC
		// method with the authorization metadata as its header.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/opentelemetry.proto.collector.logs.v1.LogsService/Export", nil)
		if err != nil {
			return err
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		_, err = auth.Authenticate(req, api.ScopeWrite)
		switch {
		case errors.Is(err, api.ErrUnauthenticated):
			return otlp.ErrUnauthenticated
		case errors.Is(err, api.ErrForbidden):
			return otlp.ErrForbidden
		}
		return err
	}
}
