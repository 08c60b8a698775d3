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

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
)

// List is the answer of a list endpoint: one page of items, and the cursor
// of the next page ("" on the last).
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// queryError is an invalid query or path parameter.
type queryError struct{ param, problem string }

func (e *queryError) Error() string { return e.param + ": " + e.problem }

// nameParam reads a query parameter that names something (a workspace, a
// host...): in its stored form (model.NormalizeName), so that "café" typed
// precomposed or decomposed finds the same rows. Absent is "".
func nameParam(q url.Values, param string) (string, error) {
	v := q.Get(param)
	if v == "" {
		return "", nil
	}
	if p := model.NameProblem(v); p != "" {
		return "", &queryError{param, p}
	}
	n := model.NormalizeName(v)
	if n == "" {
		return "", &queryError{param, "is blank: leave it out to match every " + param}
	}
	return n, nil
}

// parseFilter reads the filters every report takes.
func parseFilter(q url.Values) (reports.Filter, reports.Page, error) {
	var f reports.Filter
	for _, p := range []struct {
		param string
		dst   *string
	}{{"workspace", &f.Workspace}, {"application", &f.Application}, {"environment", &f.Environment},
		{"workload", &f.Workload}, {"target", &f.Target}, {"host", &f.Host}} {
		v, err := nameParam(q, p.param)
		if err != nil {
			return f, reports.Page{}, err
		}
		*p.dst = v
	}
	if v := q.Get("status"); reports.ValidStatus(v) != nil {
		return f, reports.Page{}, &queryError{"status", model.Quote(v) + " is not one of success, failure, in_progress"}
	} else {
		f.Status = v
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, reports.Page{}, &queryError{p.name, model.Quote(v) + " is not an RFC 3339 time such as 2026-01-02T15:04:05Z"}
			}
			*p.dst = t
		}
	}
	page := reports.Page{Cursor: q.Get("cursor")}
	if page.Cursor != "" {
		if p := cursorProblem(page.Cursor); p != "" {
			return f, page, &queryError{"cursor", p}
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > reports.MaxLimit {
			return f, page, &queryError{"limit", fmt.Sprintf("%s: give a number from 1 to %d", model.Quote(v), reports.MaxLimit)}
		}
		page.Limit = n
	}
	return f, page, nil
}

// parseGateQuery reads the rollout gate's parameters. Names are in their
// stored form; an endpoint or a commit must be valid text.
func parseGateQuery(q url.Values) (reports.GateQuery, error) {
	var g reports.GateQuery
	for _, p := range []struct {
		param string
		dst   *string
	}{{"target", &g.Target}, {"workload", &g.Workload}, {"application", &g.Application}, {"workspace", &g.Workspace},
		{"environment", &g.Environment}, {"version", &g.Version}} {
		v, err := nameParam(q, p.param)
		if err != nil {
			return g, err
		}
		*p.dst = v
	}
	for _, p := range []struct {
		param string
		dst   *string
	}{{"endpoint", &g.Endpoint}, {"commit", &g.Commit}} {
		v := strings.TrimSpace(q.Get(p.param))
		if pr := model.TextProblem(v); pr != "" {
			return g, &queryError{p.param, pr}
		}
		*p.dst = v
	}
	return g, nil
}

// parseOrder reads a promotion order: comma-separated environment names.
func parseOrder(q url.Values) ([]string, error) {
	var out []string
	for _, p := range strings.Split(q.Get("order"), ",") {
		if pr := model.NameProblem(p); pr != "" {
			return nil, &queryError{"order", model.Quote(p) + " " + pr}
		}
		if p = model.NormalizeName(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
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
			s.writeReportError(w, r, &queryError{"staleAfter", model.Quote(v) + " is not a positive duration such as 30m or 2h"})
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
	order, err := parseOrder(r.URL.Query())
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	d, next, err := s.reports.Discrepancies(r.Context(), f, order, p)
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, discrepanciesAnswer{Discrepancies: d, NextCursor: next})
}

func (s *Server) getEnvironments(w http.ResponseWriter, r *http.Request) {
	order, err := parseOrder(r.URL.Query())
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	envs, err := s.reports.Environments(r.Context(), order)
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
	q, err := parseGateQuery(r.URL.Query())
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	g, err := s.reports.Gate(r.Context(), q)
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}
