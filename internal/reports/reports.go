package reports

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// DefaultStaleAfter is how long a host may go without reporting before
// Drift lists it as stale.
const DefaultStaleAfter = time.Hour

// Service answers reports from a store.
type Service struct {
	st         *store.Store
	now        func() time.Time
	staleAfter time.Duration
	promotion  []string
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the source of "now".
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithStaleAfter sets the default stale limit of Drift.
func WithStaleAfter(d time.Duration) Option { return func(s *Service) { s.staleAfter = d } }

// WithPromotionOrder sets the default order of environments (first to
// last); environments not named follow (see OrderEnvironments).
func WithPromotionOrder(envs []string) Option { return func(s *Service) { s.promotion = envs } }

// New returns a Service over st.
func New(st *store.Store, opts ...Option) *Service {
	s := &Service{st: st, now: time.Now, staleAfter: DefaultStaleAfter}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Page asks for one page of a list: at most Limit rows after Cursor.
type Page struct {
	Limit  int
	Cursor string
}

// Limits of a page.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// FilterError is a filter a report cannot honour: Param names the query
// parameter to change.
type FilterError struct {
	Param   string
	Problem string
}

func (e *FilterError) Error() string { return e.Param + ": " + e.Problem }

// ErrBadCursor is returned for a cursor the hub did not issue.
var ErrBadCursor = errors.New("cursor: not a cursor this hub issued; start again without it")

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// offset decodes an offset cursor.
func (p Page) offset() (int, error) {
	if p.Cursor == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil {
		return 0, ErrBadCursor
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "o:"))
	if err != nil || n < 0 || !strings.HasPrefix(string(b), "o:") {
		return 0, ErrBadCursor
	}
	return n, nil
}

func offsetCursor(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(n)))
}

// paginate cuts rows (all of them, in order) to the page.
func paginate[T any](rows []T, p Page) ([]T, string, error) {
	off, err := p.offset()
	if err != nil {
		return nil, "", err
	}
	if off >= len(rows) {
		return []T{}, "", nil
	}
	end := min(off+p.limit(), len(rows))
	next := ""
	if end < len(rows) {
		next = offsetCursor(end)
	}
	return rows[off:end], next, nil
}

// where builds a parameterized WHERE clause: values only ever travel as
// arguments.
type where struct {
	conds []string
	args  []any
}

// add appends a condition; each "?" in cond becomes the next placeholder
// bound to the next value.
func (w *where) add(cond string, vals ...any) {
	for _, v := range vals {
		w.args = append(w.args, v)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return "TRUE"
	}
	return strings.Join(w.conds, " AND ")
}

// targetFilter adds the filters that name targets (workspace, application,
// environment, workload, target) on the usual aliases.
func (w *where) targetFilter(f Filter) {
	if f.Workspace != "" {
		w.add("ws.name = ?", f.Workspace)
	}
	if f.Application != "" {
		w.add("app.name = ?", f.Application)
	}
	if f.Environment != "" {
		w.add("env.name = ?", f.Environment)
	}
	if f.Workload != "" {
		w.add("wl.name = ?", f.Workload)
	}
	if f.Target != "" {
		w.add("t.name = ?", f.Target)
	}
}

// StatusNotReported is the status of a host whose reconciler is registered
// but has not reported yet.
const StatusNotReported = "not_reported"

// ValidStatus checks a status filter.
func ValidStatus(s string) error {
	switch s {
	case "", "success", "failure", "in_progress", StatusNotReported:
		return nil
	}
	return fmt.Errorf("status %s: use success, failure, in_progress or not_reported", model.Quote(s))
}

// storedStatus is how a status filter reads in the reconcilers table,
// where a reconciler that has not reported has status "".
func storedStatus(s string) string {
	if s == StatusNotReported {
		return ""
	}
	return s
}

// shownStatus is how a stored status reads in a report.
func shownStatus(s string) string {
	if s == "" {
		return StatusNotReported
	}
	return s
}

// targetJoins joins a target (t) to its names.
const targetJoins = `
	JOIN workloads wl ON wl.id = t.workload_id
	JOIN applications app ON app.id = wl.application_id
	JOIN workspaces ws ON ws.id = app.workspace_id
	JOIN environments env ON env.id = t.environment_id`

// OrderEnvironments sorts environment names by a promotion order: the
// names in order first, as given; then names that look like a stage of a
// usual pipeline (dev before test before stage before prod); then the rest
// by name. No environment name is required to exist.
func OrderEnvironments(envs, order []string) []string {
	rank := func(e string) (int, int) {
		if i := slices.Index(order, e); i >= 0 {
			return 0, i
		}
		l := strings.ToLower(e)
		for i, stage := range [][]string{{"dev", "development", "sandbox"}, {"int", "integration", "ci"}, {"test", "qa", "uat", "functional"}, {"stage", "staging", "preprod", "pre-prod"}, {"prod", "production", "live"}} {
			for _, s := range stage {
				if l == s || strings.HasPrefix(l, s) {
					return 1, i
				}
			}
		}
		return 2, 0
	}
	out := slices.Clone(envs)
	slices.SortStableFunc(out, func(a, b string) int {
		ga, ia := rank(a)
		gb, ib := rank(b)
		if ga != gb {
			return ga - gb
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	return out
}
