package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

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

// ProblemField is one invalid field or query parameter. In a request of
// several documents (an array or a List), Item is the document's index,
// Name its name, and Field starts with "items[Item].".
type ProblemField struct {
	Item    *int   `json:"item,omitempty"`
	Name    string `json:"name,omitempty"`
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

const problemBase = "https://tidemark.dev/problems/"

// RetryAfter is how long a client should wait before retrying a request
// answered 503 because the store is unavailable (the Retry-After header).
const RetryAfter = 5 * time.Second

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError turns an error from decoding, ingest or reports into a
// problem: invalid input 422, conflicts 409, unreadable requests 400,
// oversized bodies 413, the store unavailable 503 with Retry-After,
// anything else 500 (logged, not shown).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	var bad *badRequest
	if p, ok := inputProblem(err); ok {
		writeProblem(w, r, p)
		return
	}
	switch {
	case errors.As(err, &tooBig):
		writeProblem(w, r, Problem{Type: problemBase + "too-large", Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
			Detail: "Send at most " + formatBytes(tooBig.Limit) + " per request; split large lists (tidemark apply does)."})
	case errors.As(err, &bad):
		writeProblem(w, r, Problem{Type: problemBase + "bad-request", Title: "Bad request", Status: http.StatusBadRequest, Detail: bad.msg})
	case s.store.Unavailable(err):
		s.log.Warn("store unavailable", "method", r.Method, "path", logged(r.URL.Path), "err", logged(err.Error()))
		w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter.Seconds())))
		writeProblem(w, r, Problem{Type: problemBase + "unavailable", Title: "Store unavailable", Status: http.StatusServiceUnavailable,
			Detail: fmt.Sprintf("The hub's store (%s) does not answer; retry in %d seconds (a push is all or nothing, and replaying it is safe).",
				s.store.Engine(), int(RetryAfter.Seconds()))})
	case r.Context().Err() != nil:
		// The client closed the connection or the server is shutting down:
		// the answer is likely never read.
		writeProblem(w, r, Problem{Title: "Request cancelled", Status: http.StatusServiceUnavailable, Detail: err.Error()})
	default:
		s.log.Error("request failed", "method", r.Method, "path", logged(r.URL.Path), "err", logged(err.Error()))
		writeProblem(w, r, Problem{Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "The hub could not complete the request; it is safe to retry."})
	}
}

// logged cuts a value for a log line: a hostile request can make a path or
// an error carry megabytes.
func logged(s string) string {
	cut, _ := model.TruncateMessage(s)
	return cut
}

// itemError is the error of one document of a push: its index in the
// request and its name. list tells whether the request was a list (an
// array or a List), whose field paths start with items[index].
type itemError struct {
	index int
	name  string
	list  bool
	err   error
}

func (e *itemError) Error() string {
	return fmt.Sprintf("document %d (%s): %v", e.index, model.Quote(e.name), e.err)
}

func (e *itemError) Unwrap() error { return e.err }

// inputProblem turns invalid input and conflicts, of one document or of
// several (joined, each an *itemError), into one problem naming every
// field: 422 when anything is invalid, else 409 for a conflict. It reports
// false for other errors.
func inputProblem(err error) (Problem, bool) {
	var invalid, conflicts []ProblemField
	var walk func(err error, item *itemError)
	walk = func(err error, item *itemError) {
		field := func(f, problem string) ProblemField {
			pf := ProblemField{Field: f, Problem: problem}
			if item != nil {
				pf.Name = item.name
				if item.list {
					i := item.index
					pf.Item = &i
					pf.Field = fmt.Sprintf("items[%d]", i)
					if f != "" {
						pf.Field += "." + f
					}
				}
			}
			return pf
		}
		switch e := err.(type) {
		case *itemError:
			walk(e.err, e)
			return
		case *model.ValidationError:
			for _, f := range e.Fields {
				invalid = append(invalid, field(f.Field, f.Problem))
			}
			return
		case *ingest.ConflictError:
			conflicts = append(conflicts, field(e.Field, e.Problem))
			return
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner, item)
			}
		case interface{ Unwrap() error }:
			if inner := e.Unwrap(); inner != nil {
				walk(inner, item)
			}
		}
	}
	walk(err, nil)
	switch {
	case len(invalid) > 0:
		detail := "The document has invalid fields; nothing was stored."
		if docs := countItems(invalid); docs > 1 {
			detail = fmt.Sprintf("%d documents have invalid fields; nothing was stored.", docs)
		} else if invalid[0].Item != nil {
			detail = fmt.Sprintf("Document %d has invalid fields; nothing was stored.", *invalid[0].Item)
		}
		return Problem{Type: problemBase + "invalid-input", Title: "Invalid input", Status: http.StatusUnprocessableEntity,
			Detail: detail, Errors: invalid}, true
	case len(conflicts) > 0:
		c := conflicts[0]
		detail := c.Field + ": " + c.Problem + "; nothing was stored."
		return Problem{Type: problemBase + "conflict", Title: "Conflicts with stored state", Status: http.StatusConflict,
			Detail: detail, Errors: conflicts}, true
	}
	return Problem{}, false
}

// countItems is the number of documents that fields name.
func countItems(fields []ProblemField) int {
	seen := map[int]bool{}
	for _, f := range fields {
		if f.Item != nil {
			seen[*f.Item] = true
		}
	}
	return len(seen)
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
