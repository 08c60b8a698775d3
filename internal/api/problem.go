package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// Problem is an RFC 9457 problem detail. Errors lists, for invalid input,
// each field and what is wrong with it.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []ProblemField `json:"errors,omitempty"`
}

// ProblemField is one invalid field. Item is the index of the document in
// a list request.
type ProblemField struct {
	Item    *int   `json:"item,omitempty"`
	Name    string `json:"name,omitempty"`
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

const problemBase = "https://tidemark.dev/problems/"

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError turns an error from decoding or ingest into a problem: invalid
// input 422, conflicts 409, oversized bodies 413, anything else 500 (logged,
// not shown).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ve *model.ValidationError
	var ce *ingest.ConflictError
	var tooBig *http.MaxBytesError
	var bad *badRequest
	switch {
	case errors.As(err, &ve):
		p := Problem{Type: problemBase + "invalid-input", Title: "Invalid input", Status: http.StatusUnprocessableEntity,
			Detail: "The document has invalid fields; nothing was stored."}
		for _, f := range ve.Fields {
			p.Errors = append(p.Errors, ProblemField{Field: f.Field, Problem: f.Problem})
		}
		writeProblem(w, r, p)
	case errors.As(err, &ce):
		writeProblem(w, r, Problem{Type: problemBase + "conflict", Title: "Conflicts with stored state", Status: http.StatusConflict,
			Detail: err.Error(), Errors: []ProblemField{{Field: ce.Field, Problem: ce.Problem}}})
	case errors.As(err, &tooBig):
		writeProblem(w, r, Problem{Type: problemBase + "too-large", Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
			Detail: "Send at most " + formatBytes(tooBig.Limit) + " per request; split large lists."})
	case errors.As(err, &bad):
		writeProblem(w, r, Problem{Type: problemBase + "bad-request", Title: "Bad request", Status: http.StatusBadRequest, Detail: bad.msg})
	case r.Context().Err() != nil: // the client went away
		writeProblem(w, r, Problem{Title: "Request cancelled", Status: http.StatusServiceUnavailable, Detail: err.Error()})
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeProblem(w, r, Problem{Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "The hub could not complete the request; it is safe to retry."})
	}
}

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}
