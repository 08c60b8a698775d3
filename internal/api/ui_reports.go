package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
)

// The reports the web UI added beyond the six: search, time travel and the
// comparison of two environments.

// getSearch answers GET /api/v1/search?q=.
func (s *Server) getSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// Up to 1,000 assignments and 1,000 hosts a page unless limit says
	// otherwise (the answer held that many before it was paged).
	page := reports.Page{Limit: reports.MaxLimit, Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > reports.MaxLimit {
			s.writeReportError(w, r, &queryError{"limit", fmt.Sprintf("%s: give a number from 1 to %d", model.Quote(v), reports.MaxLimit)})
			return
		}
		page.Limit = n
	}
	if page.Cursor != "" {
		if p := cursorProblem(page.Cursor); p != "" {
			s.writeReportError(w, r, &queryError{"cursor", p})
			return
		}
	}
	res, next, err := s.reports.Search(r.Context(), q.Get("q"), page)
	if errors.Is(err, reports.ErrEmptyQuery) {
		err = &queryError{"q", "give a commit (7 or more hex digits, or a Flux revision), a version or a build commit"}
	}
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, searchAnswer{SearchResult: res, NextCursor: next})
}

// searchAnswer is a SearchResult with the next page's cursor.
type searchAnswer struct {
	reports.SearchResult
	NextCursor string `json:"nextCursor,omitempty"`
}

// atHandler serves a report of the fleet at the time given as at.
func atHandler[T any](s *Server, report func(ctx context.Context, f reports.Filter, at time.Time, p reports.Page) ([]T, string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get("at")
		at, err := time.Parse(time.RFC3339, v)
		if err != nil {
			s.writeReportError(w, r, &queryError{"at", model.Quote(v) + " is not an RFC 3339 time such as 2026-01-02T15:04:05Z"})
			return
		}
		listHandler(s, func(ctx context.Context, f reports.Filter, p reports.Page) ([]T, string, error) {
			return report(ctx, f, at, p)
		})(w, r)
	}
}

// comparisonAnswer is a Comparison with the next page's cursor.
type comparisonAnswer struct {
	reports.Comparison
	NextCursor string `json:"nextCursor,omitempty"`
}

// getCompare answers GET /api/v1/compare?from=&to=.
func (s *Server) getCompare(w http.ResponseWriter, r *http.Request) {
	f, p, err := parseFilter(r.URL.Query())
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	q := r.URL.Query()
	from, err := nameParam(q, "from")
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	to, err := nameParam(q, "to")
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	c, next, err := s.reports.Compare(r.Context(), f, from, to, p)
	if errors.Is(err, reports.ErrCompareEnvironments) {
		err = &queryError{"to", "name two different environments as from and to"}
	}
	if err != nil {
		s.writeReportError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, comparisonAnswer{Comparison: c, NextCursor: next})
}
