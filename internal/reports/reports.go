package reports

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
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

// A cursor is the sort key of the last row of a page, so that the next
// page starts right after it whatever was written meanwhile: every list
// report pages by key, and its cost grows with the page, not with how deep
// it is.

// encodeCursor encodes a page's last key, tagged with the report.
func encodeCursor(report string, key any) string {
	b, _ := json.Marshal(struct {
		R string `json:"r"`
		K any    `json:"k"`
	}{report, key})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor decodes a cursor of the report into key; an empty cursor
// leaves key as it is and reports false.
func decodeCursor(report, cursor string, key any) (bool, error) {
	if cursor == "" {
		return false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || model.TextProblem(string(b)) != "" || strings.Contains(string(b), `\u0000`) {
		return false, ErrBadCursor
	}
	var c struct {
		R string          `json:"r"`
		K json.RawMessage `json:"k"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.R != report || json.Unmarshal(c.K, key) != nil {
		return false, ErrBadCursor
	}
	return true, nil
}

// bindIDs appends ids to args and returns their placeholders, for an IN
// list.
func bindIDs(args *[]any, ids []int64) string {
	a := store.Args(*args)
	in := store.BindList(&a, ids)
	*args = a
	return in
}

// compareRefs orders targets by environment, workspace, application,
// workload and name.
func compareRefs(a, b TargetRef) int {
	return cmp.Or(cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.Workspace, b.Workspace),
		cmp.Compare(a.Application, b.Application), cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Target, b.Target))
}

// pageAfter cuts a page from rows already sorted by key: the rows after the
// cursor's key, at most the page's limit. It is the keyset paging of the
// reports whose rows are computed whole (comparisons, time travel).
func pageAfter[T any, K any](report string, rows []T, p Page, key func(T) K, less func(a, b K) int) ([]T, string, error) {
	var after K
	hasAfter, err := decodeCursor(report, p.Cursor, &after)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if hasAfter {
		start = len(rows)
		for i, r := range rows {
			if less(key(r), after) > 0 {
				start = i
				break
			}
		}
	}
	end := min(len(rows), start+p.limit())
	next := ""
	if end < len(rows) {
		next = encodeCursor(report, key(rows[end-1]))
	}
	return rows[start:end], next, nil
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
	w.conds = append(w.conds, w.bind(cond, vals...))
}

// bind binds each "?" in cond to the next placeholder and value, and
// returns the condition without adding it, for the caller to combine.
func (w *where) bind(cond string, vals ...any) string {
	for _, v := range vals {
		w.args = append(w.args, v)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	return cond
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return "TRUE"
	}
	return strings.Join(w.conds, " AND ")
}

// targetFilter adds the filters that name targets (workspace, application,
// environment, workload, target) on the usual aliases.
//
// A workspace or environment is compared by id, looked up apart: the
// planner then estimates the targets of an environment from the targets'
// own statistics (a quarter of them with four environments) instead of
// from the environments table's, which is tiny and, never analyzed, made
// it expect 7 prod targets of 1,600 and sort every prod reconciler for a
// page of Host State.
func (w *where) targetFilter(f Filter) {
	if f.Workspace != "" {
		w.add("app.workspace_id = (SELECT id FROM workspaces WHERE name = ?)", f.Workspace)
	}
	if f.Application != "" {
		w.add("app.name = ?", f.Application)
	}
	if f.Environment != "" {
		w.add(environmentIs("t", "?"), f.Environment)
	}
	if f.Workload != "" {
		w.add("wl.name = ?", f.Workload)
	}
	if f.Target != "" {
		w.add("t.name = ?", f.Target)
	}
}

// environmentIs is a condition that target alias t is in the environment
// named by the placeholder (see targetFilter).
func environmentIs(t, placeholder string) string {
	return t + ".environment_id = (SELECT id FROM environments WHERE name = " + placeholder + ")"
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

// statusIs is the condition, bound into w, that col holds the stored form
// of status. The known statuses are written into the SQL as constants (a
// fixed set: nothing a caller sends reaches the SQL text), so that the
// reports' plans, made once per statement (see the store's read pool),
// still see which status is asked: failures are few and successes most,
// and one plan for any status read Host State's failures in 41 ms
// instead of 21 at 10,000 hosts.
func statusIs(w *where, col, status string) string {
	if lit, ok := statusLiterals[status]; ok {
		return col + " = " + lit
	}
	return w.bind(col+" = ?", storedStatus(status))
}

var statusLiterals = map[string]string{
	string(model.StatusSuccess): "'success'", string(model.StatusFailure): "'failure'",
	string(model.StatusInProgress): "'in_progress'", StatusNotReported: "''",
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

// targetOrder is the order of targets in the reports that list them by
// environment (Environment State, its time travel, Environment History):
// environment in promotion order (the hub's, see OrderEnvironments), then
// workspace, application, workload, target name and id. DORA, by workload
// first, ranks its environments the same way.
type targetOrder struct {
	whens string         // SQL: "WHEN name THEN place ..." for each environment
	place map[string]int // an environment name's place
}

// newTargetOrder binds envs (every environment, in promotion order:
// Service.Environments) into w. An environment created since sorts after
// the others.
func newTargetOrder(w *where, envs []string) targetOrder {
	o := targetOrder{place: map[string]int{}}
	for i, name := range envs {
		o.place[name] = i
		o.whens += " WHEN " + w.bind("?", name) + " THEN " + strconv.Itoa(i)
	}
	return o
}

// rank is the SQL expression of the place of the environment named by
// column env.
func (o targetOrder) rank(env string) string {
	whens := o.whens
	if whens == "" {
		// No environment yet. (A bare 0 would be a column number in ORDER BY.)
		whens = " WHEN NULL THEN 0"
	}
	return "CASE " + env + whens + " ELSE " + strconv.Itoa(len(o.place)) + " END"
}

// by is the ORDER BY list of the order, on the usual aliases.
func (o targetOrder) by() string {
	return o.rank("env.name") + ", env.name, ws.name, app.name, wl.name, t.name, t.id"
}

// of is an environment's place, for a cursor.
func (o targetOrder) of(env string) int {
	if p, ok := o.place[env]; ok {
		return p
	}
	return len(o.place)
}

// after is the condition "after key k", bound into w.
func (o targetOrder) after(w *where, k targetKey) string {
	return w.bind("("+o.by()+") > (?, ?, ?, ?, ?, ?, ?)", o.of(k.Env), k.Env, k.Ws, k.App, k.Wl, k.Name, k.ID)
}

// at is the condition "at key k", bound into w.
func (o targetOrder) at(w *where, k targetKey) string {
	return w.bind("("+o.by()+") = (?, ?, ?, ?, ?, ?, ?)", o.of(k.Env), k.Env, k.Ws, k.App, k.Wl, k.Name, k.ID)
}
