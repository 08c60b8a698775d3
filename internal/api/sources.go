package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// A source is what reports a set of reconcilers (an agent, a poller): it
// names itself with the source query parameter when it pushes, and can
// then retire the reconcilers it reported that are gone.

// maxSourceLen bounds a source name.
const maxSourceLen = 253

// sourceParam reads the optional source query parameter.
func sourceParam(r *http.Request) (string, error) {
	src := strings.TrimSpace(r.URL.Query().Get("source"))
	var v model.ValidationError
	switch {
	case len(src) > maxSourceLen:
		v.Add("source", "is %d bytes long: at most %d", len(src), maxSourceLen)
	case !utf8.ValidString(src) || strings.ContainsFunc(src, unicode.IsControl):
		v.Add("source", "holds invalid UTF-8 or control characters")
	case strings.HasPrefix(src, ingest.AzureResourceGraphSource):
		v.Add("source", "%q is reserved for the hub's Azure Resource Graph pollers: name your source otherwise, such as agent/<cluster>", ingest.AzureResourceGraphSource)
	}
	return src, v.Err()
}

// RetireMissingRequest lists every reconciler a source reports now: the
// hub retires the others it reported before.
type RetireMissingRequest struct {
	Source  string                `json:"source"`
	Present []model.ReconcilerKey `json:"present"`
}

// RetireMissingResult lists the reconcilers retired.
type RetireMissingResult struct {
	Retired []ReconcilerRef `json:"retired"`
}

// ReconcilerRef names a reconciler in answers.
type ReconcilerRef struct {
	Host string `json:"host"`
	Name string `json:"name"`
}

// postRetireMissing retires the reconcilers a source reported that it no
// longer reports (an agent's full resync after objects were deleted while
// it was away).
func (s *Server) postRetireMissing(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		Source  string `json:"source"`
		Present []struct {
			Host string `json:"host"`
			Name string `json:"name"`
		} `json:"present"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeError(w, r, &badRequest{"the body is not a JSON object {\"source\": ..., \"present\": [{\"host\": ..., \"name\": ...}]}: " + err.Error()})
		return
	}
	var v model.ValidationError
	req.Source = strings.TrimSpace(req.Source)
	v.Required("source", req.Source)
	if strings.HasPrefix(req.Source, ingest.AzureResourceGraphSource) {
		v.Add("source", "%q is reserved for the hub's Azure Resource Graph pollers", ingest.AzureResourceGraphSource)
	}
	present := make([]model.ReconcilerKey, len(req.Present))
	for i, p := range req.Present {
		if p.Host == "" || p.Name == "" {
			v.Add("present", "item %d needs a host and a name", i)
		}
		present[i] = model.ReconcilerKey{Host: p.Host, Name: p.Name}
	}
	if err := v.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	retired, err := s.ingest.RetireMissing(r.Context(), req.Source, present)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := RetireMissingResult{Retired: make([]ReconcilerRef, len(retired))}
	for i, k := range retired {
		out.Retired[i] = ReconcilerRef{Host: k.Host, Name: k.Name}
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteAzureResourceGraph removes a poller configuration pushed through
// the API: polling stops and the reconcilers it reported are retired.
func (s *Server) deleteAzureResourceGraph(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	deleted, err := s.ingest.DeleteAzureResourceGraph(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !deleted {
		writeProblem(w, r, Problem{Title: "Not found", Status: http.StatusNotFound,
			Detail: "no AzureResourceGraph named " + name + " was pushed to this hub"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
