package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 document of the API: the source of truth that
// the tests check every route and response against.
//
//go:embed openapi.yaml
var OpenAPI []byte

// openapi serves the OpenAPI document. It is open: it holds no data.
func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(OpenAPI)
}
