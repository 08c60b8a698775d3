// Package api serves Tidemark's HTTP API under /api/v1: ingest of the
// hub.kalypso.io documents as JSON, and health endpoints.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
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
	extra   map[string]http.Handler
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
	// WriteRoutes are further routes served with the write scope, by
	// http.ServeMux pattern: receivers of other protocols on the API's
	// port, such as OTLP's "POST /v1/logs".
	WriteRoutes map[string]http.Handler
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
	s := &Server{store: st, ingest: ing, reports: reports.New(st, opts.Reports...), auth: opts.Auth, log: log,
		extra: opts.WriteRoutes, metrics: opts.Metrics}
	if opts.Metrics != nil {
		s.metricsHandler = opts.Metrics.Handler()
	}
	return s
}

// Handler routes the API. Health endpoints are open; every /api/v1 route
// requires its scope, except the OpenAPI document, and refuses query
// strings and path values that are not valid text (checkRequest).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/v1/openapi.yaml", s.openapi)

	write := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.require(ScopeWrite, checkRequest(h))) }
	write("POST /api/v1/apply", s.postApply)
	write("POST /api/v1/deploymentdescriptors", s.postDescriptors)
	write("POST /api/v1/reconcilers", s.postReconcilers)
	write("DELETE /api/v1/hosts/{host}/reconcilers/{name}", s.deleteReconciler)
	write("POST /api/v1/azureresourcegraphs", s.postAzureResourceGraphs)
	write("POST /api/v1/deployments", s.postDeployments)
	write("DELETE /api/v1/azureresourcegraphs/{name}", s.deleteAzureResourceGraph)
	write("POST /api/v1/reconcilers/retire-missing", s.postRetireMissing)
	for pattern, h := range s.extra {
		mux.Handle(pattern, s.require(ScopeWrite, h))
	}

	read := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.require(ScopeRead, checkRequest(h))) }
	read("GET /api/v1/reports/environment-state", listHandler(s, s.reports.EnvironmentState))
	read("GET /api/v1/reports/host-state", listHandler(s, s.reports.HostState))
	read("GET /api/v1/reports/environment-history", listHandler(s, s.reports.History))
	read("GET /api/v1/reports/discrepancies", s.getDiscrepancies)
	read("GET /api/v1/reports/drift", s.getDrift)
	read("GET /api/v1/reports/dora", listHandler(s, s.reports.DORA))
	read("GET /api/v1/rollouts", s.getRollout)
	read("GET /api/v1/environments", s.getEnvironments)
	read("GET /api/v1/search", s.getSearch)
	read("GET /api/v1/compare", s.getCompare)
	read("GET /api/v1/reports/environment-state-at", atHandler(s, s.reports.EnvironmentStateAt))
	read("GET /api/v1/reports/host-state-at", atHandler(s, s.reports.HostStateAt))
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
			s.log.Debug("authorized", "subject", subject, "scope", scope, "method", r.Method, "path", logged(r.URL.Path))
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

// readiness is the body of /readyz.
type readiness struct {
	Status string `json:"status"`
	Store  string `json:"store"`
	// Replicas are the read replicas as last measured; absent without.
	Replicas []replicaReadiness `json:"replicas,omitempty"`
	// TimeTravelWaiting is how many endpoints' time-travel snapshots
	// wait for their rebuild, as last counted; absent before the first
	// count.
	TimeTravelWaiting *int `json:"timeTravelWaiting,omitempty"`
}

type replicaReadiness struct {
	Name       string    `json:"name"`
	Healthy    bool      `json:"healthy"`
	LagSeconds *float64  `json:"lagSeconds,omitempty"`
	Error      string    `json:"error,omitempty"`
	CheckedAt  time.Time `json:"checkedAt"`
	Reads      uint64    `json:"reads"`
}

// readyz answers 200 only when the store answers within two seconds. Read
// replicas do not decide it (reads fall back to the primary), nor do
// endpoints waiting for their time-travel snapshots (time travel reads
// their history); both are detail.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter.Seconds())))
		writeProblem(w, r, Problem{Type: problemBase + "unavailable", Title: "Store unavailable", Status: http.StatusServiceUnavailable,
			Detail: s.store.Engine() + " does not answer: " + logged(err.Error())})
		return
	}
	body := readiness{Status: "ready", Store: s.store.Engine()}
	for _, rs := range s.store.Replicas() {
		rr := replicaReadiness{Name: rs.Name, Healthy: rs.Healthy, Error: rs.Error, CheckedAt: rs.CheckedAt.UTC(), Reads: rs.Reads}
		if rs.LagKnown {
			lag := rs.Lag.Seconds()
			rr.LagSeconds = &lag
		}
		body.Replicas = append(body.Replicas, rr)
	}
	if n, ok := s.store.SeriesWaiting(); ok {
		body.TimeTravelWaiting = &n
	}
	writeJSON(w, http.StatusOK, body)
}
