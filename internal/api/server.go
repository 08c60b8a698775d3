// Package api serves Tidemark's HTTP API under /api/v1: ingest of the
// hub.kalypso.io documents as JSON, and health endpoints.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 8 << 20

// Server is the HTTP API.
type Server struct {
	store   *store.Store
	ingest  *ingest.Service
	reports *reports.Service
	auth    Authenticator
	log     *slog.Logger
	metrics *metrics.Metrics
	// metricsHandler serves metrics; nil when there are none.
	metricsHandler http.Handler
}

// Scope is what a credential allows: reading reports, or writing
// (ingest). Write does not imply read.
type Scope string

// The scopes.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// Errors an Authenticator returns.
var (
	ErrUnauthenticated = errors.New("missing or invalid bearer token")
	ErrForbidden       = errors.New("the token does not grant this scope")
)

// Authenticator decides whether a request may use a scope. It returns the
// caller's name (for logs) or ErrUnauthenticated / ErrForbidden.
type Authenticator interface {
	Authenticate(r *http.Request, scope Scope) (subject string, err error)
}

// Options configure a Server.
type Options struct {
	// Auth checks every /api/v1 request; nil leaves the API open (for a
	// hub on a laptop: the CLI warns when it starts so).
	Auth   Authenticator
	Logger *slog.Logger
	// Reports configures the reports (stale limit, promotion order).
	Reports []reports.Option
	// Metrics, when set, counts requests and pushed documents, and is
	// served on GET /metrics (read scope).
	Metrics *metrics.Metrics
}

// New returns a Server over a store and the ingest service writing to it.
func New(st *store.Store, ing *ingest.Service, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{store: st, ingest: ing, reports: reports.New(st, opts.Reports...), auth: opts.Auth, log: log, metrics: opts.Metrics}
	if opts.Metrics != nil {
		s.metricsHandler = opts.Metrics.Handler()
	}
	return s
}

// Handler routes the API. Health endpoints are open; every /api/v1 route
// requires its scope, except the OpenAPI document.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/v1/openapi.yaml", s.openapi)

	write := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.require(ScopeWrite, h)) }
	write("POST /api/v1/deploymentdescriptors", s.postDescriptors)
	write("POST /api/v1/reconcilers", s.postReconcilers)
	write("DELETE /api/v1/hosts/{host}/reconcilers/{name}", s.deleteReconciler)
	write("POST /api/v1/azureresourcegraphs", s.postAzureResourceGraphs)

	read := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.require(ScopeRead, h)) }
	read("GET /api/v1/reports/environment-state", listHandler(s, s.reports.EnvironmentState))
	read("GET /api/v1/reports/host-state", listHandler(s, s.reports.HostState))
	read("GET /api/v1/reports/environment-history", listHandler(s, s.reports.History))
	read("GET /api/v1/reports/discrepancies", s.getDiscrepancies)
	read("GET /api/v1/reports/drift", s.getDrift)
	read("GET /api/v1/reports/dora", listHandler(s, s.reports.DORA))
	read("GET /api/v1/rollouts", s.getRollout)
	read("GET /api/v1/environments", s.getEnvironments)
	read("GET /metrics", s.getMetrics)
	if s.metrics == nil {
		return limitBody(mux)
	}
	return s.metrics.HTTP.Middleware(limitBody(mux))
}

// getMetrics serves the Prometheus metrics.
func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metricsHandler == nil {
		writeProblem(w, r, Problem{Title: "Not found", Status: http.StatusNotFound, Detail: "This hub does not export metrics."})
		return
	}
	s.metricsHandler.ServeHTTP(w, r)
}

// require checks the request's credentials for scope before h runs.
func (s *Server) require(scope Scope, h http.Handler) http.Handler {
	if s.auth == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject, err := s.auth.Authenticate(r, scope)
		switch {
		case errors.Is(err, ErrUnauthenticated):
			w.Header().Set("WWW-Authenticate", `Bearer realm="tidemark"`)
			writeProblem(w, r, Problem{Type: problemBase + "unauthenticated", Title: "Unauthenticated", Status: http.StatusUnauthorized,
				Detail: "Send a bearer token: Authorization: Bearer <token>."})
		case errors.Is(err, ErrForbidden):
			writeProblem(w, r, Problem{Type: problemBase + "forbidden", Title: "Forbidden", Status: http.StatusForbidden,
				Detail: "This token does not grant the " + string(scope) + " scope."})
		case err != nil:
			s.writeError(w, r, err)
		default:
			s.log.Debug("authorized", "subject", subject, "scope", scope, "method", r.Method, "path", r.URL.Path)
			h.ServeHTTP(w, r)
		}
	})
}

// NewHTTPServer wraps a handler with the timeouts that keep slow clients
// from holding connections.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
	}
}

func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the store answers within two seconds.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeProblem(w, r, Problem{Title: "Store unavailable", Status: http.StatusServiceUnavailable,
			Detail: s.store.Engine() + " does not answer: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "store": s.store.Engine()})
}
