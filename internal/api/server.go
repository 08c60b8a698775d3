// Package api serves Tidemark's HTTP API under /api/v1: ingest of the
// hub.kalypso.io documents as JSON, and health endpoints.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 8 << 20

// Server is the HTTP API.
type Server struct {
	store  *store.Store
	ingest *ingest.Service
	log    *slog.Logger
}

// New returns a Server over a store and the ingest service writing to it.
func New(st *store.Store, ing *ingest.Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{store: st, ingest: ing, log: log}
}

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("POST /api/v1/deploymentdescriptors", s.postDescriptors)
	mux.HandleFunc("POST /api/v1/reconcilers", s.postReconcilers)
	mux.HandleFunc("DELETE /api/v1/hosts/{host}/reconcilers/{name}", s.deleteReconciler)
	mux.HandleFunc("POST /api/v1/azureresourcegraphs", s.postAzureResourceGraphs)
	return limitBody(mux)
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
