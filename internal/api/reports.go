package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// List is the answer of a list endpoint: one page of items, and the cursor
// of the next page ("" on the last).
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// queryError is an invalid query parameter.
type queryError struct{ param, problem string }

func (e *queryError) Error() string { return e.param + ": " + e.problem }

// parseFilter reads the filters every report takes.
func parseFilter(q url.Values) (reports.Filter, reports.Page, error) {
	f := reports.Filter{
		Workspace: q.Get("workspace"), Application: q.Get("application"), Environment: q.Get("environment"),
		Workload: q.Get("workload"), Target: q.Get("target"), Host: q.Get("host"), Status: q.Get("status"),
	}
	if err := reports.ValidStatus(f.Status); err != nil {
		return f, reports.Page{}, &queryError{"status", err.Error()}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, reports.Page{}, &queryError{p.name, fmt.Sprintf("%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", v)}
			}
			*p.dst = t
		}
	}
	page := reports.Page{Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > reports.MaxLimit {
			return f, page, &queryError{"limit", fmt.Sprintf("%q: give a number from 1 to %d", v, reports.MaxLimit)}
		}
		page.Limit = n
	}
	return f, page, nil
}

// writeReportError maps report errors to problems.
func (s *Server) writeReportError(w http.ResponseWriter, r *http.Request, err error) {
	var qe *queryError
	var ge *reports.GateError
	var fe *reports.FilterError
	switch {
	case errors.As(err, &fe):
		writeProblem(w, r, Problem{Type: problemBase + "invalid-query", Title: "Invalid query", Status: http.StatusBadRequest,
			Detail: fe.Error(), Errors: []ProblemField{{Field: fe.Param, Problem: fe.Problem}}})
	case errors.Is(err, reports.ErrBadCursor):
		writeProblem(w, r, Problem{Type: problemBase + "invalid-query", Title: "Invalid query", Status: http.StatusBadRequest,
			Errors: []ProblemField{{Field: "cursor", Problem: err.Error()}}})
	case errors.As(err, &qe):
		writeProblem(w, r, Problem{Type: problemBase + "invalid-query", Title: "Invalid query", Status: http.StatusBadRequest,
			Errors: []ProblemField{{Field: qe.param, Problem: qe.problem}}})
	case errors.As(err, &ge):
		status, title := http.StatusConflict, "Ambiguous rollout"
		if ge.NotFound {
			status, title = http.StatusNotFound, "No such rollout"
		} else if ge.Param == "version" || ge.Param == "target" || ge.Param == "commit" || ge.Param == "endpoint" {
			status, title = http.StatusBadRequest, "Invalid query"
		}
		writeProblem(w, r, Problem{Type: problemBase + "rollout", Title: title, Status: status, Detail: ge.Problem,
			Errors: []ProblemField{{Field: ge.Param, Problem: ge.Problem}}})
	default:
		s.writeError(w, r, err)
	}
}

// listHandler serves a paged report.
func listHandler[T any](s *Server, report func(ctx context.Context, f reports.Filter, p reports.Page) ([]T, string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, p, err := parseFilter(r.URL.Query())
		if err != nil {
			s.writeReportError(w, r, err)
			return
		}
		items, next, err := report(r.Context(), f, p)
		if err != nil {
			s.writeReportError(w, r, err)
			return
		}
		if items == nil {
			items = []T{}
		}
		writeJSON(w, http.StatusOK, List[T]{Items: items, NextCursor: next})
	}
}

// getDrift reads staleAfter besides the usual filters.
func (s *Server) getDrift(w http.ResponseWriter, r *http.Request) {
	var stale time.Duration
	if v := r.URL.Query().Get("staleAfter"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			s.writeReportError(w, r, &queryError{"staleAfter", fmt.Sprintf("%q is not a positive duration such as 30m or 2h", v)})
			return
		}
		stale = d
	}
	listHandler(s, func(ctx context.Context, f reports.Filter, p reports.Page) ([]reports.DriftRow, string, error) {
		return s.reports.Drift(ctx, f, stale, p)
	})(w, r)
}

// discrepanciesAnswer is Discrepancies with the next page's cursor.
type discrepanciesAnswer struct {
	reports.Discrepancies
	NextCursor string `json:"nextCursor,omitempty"`
}

func (s *Server) getDiscrepancies(w http.ResponseWriter, r *http.Request) {
	f, p, err := parseFilter(r.URL.Query())
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	d, next, err := s.reports.Discrepancies(r.Context(), f, splitList(r.URL.Query().Get("order")), p)
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, discrepanciesAnswer{Discrepancies: d, NextCursor: next})
}

func (s *Server) getEnvironments(w http.ResponseWriter, r *http.Request) {
	envs, err := s.reports.Environments(r.Context(), splitList(r.URL.Query().Get("order")))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if envs == nil {
		envs = []string{}
	}
	writeJSON(w, http.StatusOK, List[string]{Items: envs})
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	g, err := s.reports.Gate(r.Context(), reports.GateQuery{
		Target: q.Get("target"), Endpoint: q.Get("endpoint"), Workload: q.Get("workload"), Application: q.Get("application"),
		Workspace: q.Get("workspace"), Environment: q.Get("environment"), Version: q.Get("version"), Commit: q.Get("commit"),
	})
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
