package reports

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// What a search query matched.
const (
	MatchCommit      = "gitops_commit" // the GitOps commit of an assignment, or a commit hosts report
	MatchVersion     = "version"       // a workload version
	MatchBuildCommit = "build_commit"  // the source commit a version was built from
)

// SearchResult says where a commit or version is scheduled and applied.
type SearchResult struct {
	Query string `json:"query"`
	// Commit is the query read as a (possibly abbreviated) commit, "" when
	// it is not one.
	Commit string `json:"commit,omitempty"`
	// Assignments are the assignments the query matched, in promotion
	// order of their environments, then by target, newest first.
	Assignments []SearchAssignment `json:"assignments"`
	// Hosts are the live host-target pairs whose current deployment is the
	// commit, or resolves to a matched version.
	Hosts []SearchHost `json:"hosts"`
	// Truncated is true when there were more matches than the limit.
	Truncated bool `json:"truncated,omitempty"`
}

// SearchAssignment is one matched assignment and how it fared on its
// target's hosts.
type SearchAssignment struct {
	TargetRef
	MatchedBy   string    `json:"matchedBy"`
	Version     string    `json:"version"`
	Commit      string    `json:"commit,omitempty"`
	BuildCommit string    `json:"buildCommit,omitempty"`
	AssignedAt  time.Time `json:"assignedAt"`
	// Scheduled is true when this is the target's scheduled (latest)
	// assignment.
	Scheduled      bool       `json:"scheduled"`
	Success        int        `json:"success"`
	Failure        int        `json:"failure"`
	InProgress     int        `json:"inProgress"`
	NotReported    int        `json:"notReported"`
	FirstSuccessAt *time.Time `json:"firstSuccessAt,omitempty"`
	AllSucceededAt *time.Time `json:"allSucceededAt,omitempty"`
	// LagSeconds is the time from the assignment to success on every host.
	LagSeconds *float64 `json:"lagSeconds,omitempty"`
}

// SearchHost is one host applying a matched commit or version. A host
// whose endpoint no target has carries no target.
type SearchHost struct {
	Host       string `json:"host"`
	Reconciler string `json:"reconciler"`
	TargetRef
	Version      string    `json:"version"`
	VersionKnown bool      `json:"versionKnown"`
	Commit       string    `json:"commit"`
	Status       string    `json:"status"`
	Message      string    `json:"message,omitempty"`
	StatusSince  time.Time `json:"statusSince"`
}

// ErrEmptyQuery is returned for a search without a query.
var ErrEmptyQuery = errors.New("q: give a commit (7 or more hex digits, or a Flux revision), a version or a build commit")

// Search finds a GitOps commit (full or abbreviated, in any revision form),
// a version or a build commit: the assignments that carry it, with their
// host counts and the lag to "all hosts succeeded", and the hosts that run
// it now. At most limit assignments and limit hosts are returned
// (0: MaxLimit).
func (s *Service) Search(ctx context.Context, q string, limit int) (SearchResult, error) {
	q = strings.TrimSpace(q)
	res := SearchResult{Query: q, Assignments: []SearchAssignment{}, Hosts: []SearchHost{}}
	if q == "" {
		return res, ErrEmptyQuery
	}
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	if c, err := model.NormalizeRevision(q); err == nil {
		res.Commit = c
	}
	w := &where{}
	conds := []string{w.bind("v.version = ?", q)}
	if res.Commit != "" {
		conds = append(conds, prefixCond(w, "a.commit_sha", res.Commit), prefixCond(w, "v.build_commit", res.Commit))
	}
	rows, err := s.st.Read().Query(ctx, `SELECT a.id, t.id, ws.name, app.name, wl.name, env.name, t.name, v.version,
			COALESCE(a.commit_sha, ''), v.build_commit, a.assigned_at, v.build_time,
			CASE WHEN t.scheduled_assignment_id = a.id THEN 1 ELSE 0 END
		FROM assignments a
		JOIN targets t ON t.id = a.target_id`+targetJoins+`
		JOIN workload_versions v ON v.id = a.version_id
		WHERE (`+strings.Join(conds, " OR ")+`)
		ORDER BY a.assigned_at DESC, a.id DESC LIMIT `+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return res, err
	}
	var as []assignmentRow
	var extra []SearchAssignment
	for rows.Next() {
		var a assignmentRow
		var m SearchAssignment
		var scheduled int
		if err := rows.Scan(&a.ID, &a.TargetID, &a.Workspace, &a.Application, &a.Workload, &a.Environment, &a.Target,
			&a.Version, &a.Commit, &m.BuildCommit, &a.AssignedAt, &a.BuildTime, &scheduled); err != nil {
			rows.Close()
			return res, err
		}
		a.AssignedAt = a.AssignedAt.UTC()
		m.Scheduled = scheduled == 1
		switch {
		case a.Version == q:
			m.MatchedBy = MatchVersion
		case res.Commit != "" && strings.HasPrefix(a.Commit, res.Commit):
			m.MatchedBy = MatchCommit
		default:
			m.MatchedBy = MatchBuildCommit
		}
		as = append(as, a)
		extra = append(extra, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	if len(as) > limit {
		as, extra, res.Truncated = as[:limit], extra[:limit], true
	}
	outs, err := s.outcomesOf(ctx, as)
	if err != nil {
		return res, err
	}
	for i, a := range as {
		o, m := outs[a.ID], extra[i]
		m.TargetRef, m.Version, m.Commit, m.AssignedAt = a.TargetRef, a.Version, a.Commit, a.AssignedAt
		m.Success, m.Failure, m.InProgress = o.Success, o.Failure, o.InProgress
		m.NotReported = max(0, o.Total-o.Success-o.Failure-o.InProgress)
		m.FirstSuccessAt = o.FirstSuccess
		if o.allSucceeded() {
			m.AllSucceededAt = o.LastSuccess
			lag := max(0, o.LastSuccess.Sub(a.AssignedAt).Seconds())
			m.LagSeconds = &lag
		}
		res.Assignments = append(res.Assignments, m)
	}
	envs, err := s.Environments(ctx, nil)
	if err != nil {
		return res, err
	}
	rank := func(e string) int { return slices.Index(envs, e) }
	slices.SortStableFunc(res.Assignments, func(a, b SearchAssignment) int {
		return cmp.Or(cmp.Compare(rank(a.Environment), rank(b.Environment)), compareRefs(a.TargetRef, b.TargetRef), b.AssignedAt.Compare(a.AssignedAt))
	})

	res.Hosts, err = s.searchHosts(ctx, q, res.Commit, limit)
	if err != nil {
		return res, err
	}
	if len(res.Hosts) > limit {
		res.Hosts, res.Truncated = res.Hosts[:limit], true
	}
	slices.SortStableFunc(res.Hosts, func(a, b SearchHost) int {
		return cmp.Or(cmp.Compare(rank(a.Environment), rank(b.Environment)), compareRefs(a.TargetRef, b.TargetRef),
			cmp.Compare(a.Host, b.Host), cmp.Compare(a.Reconciler, b.Reconciler))
	})
	return res, nil
}

// searchHosts lists up to limit+1 live host-target pairs running the
// commit, or a version or build commit matching the query, and
// reconcilers of no target running the commit.
func (s *Service) searchHosts(ctx context.Context, q, commit string, limit int) ([]SearchHost, error) {
	w := liveFilter(Filter{})
	conds := []string{w.bind("v.version = ?", q)}
	if commit != "" {
		conds = append(conds, prefixCond(w, "r.commit_sha", commit), prefixCond(w, "v.build_commit", commit))
	}
	w.conds = append(w.conds, "("+strings.Join(conds, " OR ")+")")
	rows, err := s.st.Read().Query(ctx, `SELECT h.name, r.name, ws.name, app.name, wl.name, env.name, t.name,
			COALESCE(v.version, ''), CASE WHEN res.assignment_id IS NULL THEN 0 ELSE 1 END,
			r.commit_sha, r.status, d.message, r.status_since
		`+liveFrom+`
		JOIN deployments d ON d.id = r.current_deployment_id
		WHERE `+w.sql()+`
		ORDER BY h.name, r.name, t.id LIMIT `+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return nil, err
	}
	var out []SearchHost
	for rows.Next() {
		var h SearchHost
		var known int
		if err := rows.Scan(&h.Host, &h.Reconciler, &h.Workspace, &h.Application, &h.Workload, &h.Environment, &h.Target,
			&h.Version, &known, &h.Commit, &h.Status, &h.Message, &h.StatusSince); err != nil {
			rows.Close()
			return nil, err
		}
		h.VersionKnown, h.StatusSince = known == 1, h.StatusSince.UTC()
		out = append(out, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil || commit == "" {
		return out, err
	}
	// Reconcilers of endpoints no target has: only their commit can match.
	w = reconcilerFilter(Filter{})
	w.add("NOT EXISTS (SELECT 1 FROM targets t WHERE t.endpoint_id = r.endpoint_id)")
	w.conds = append(w.conds, prefixCond(w, "r.commit_sha", commit))
	rows, err = s.st.Read().Query(ctx, `SELECT h.name, r.name, r.commit_sha, r.status, d.message, r.status_since
		FROM reconcilers r JOIN hosts h ON h.id = r.host_id JOIN deployments d ON d.id = r.current_deployment_id
		WHERE `+w.sql()+` ORDER BY h.name, r.name LIMIT `+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h SearchHost
		if err := rows.Scan(&h.Host, &h.Reconciler, &h.Commit, &h.Status, &h.Message, &h.StatusSince); err != nil {
			return nil, err
		}
		h.StatusSince = h.StatusSince.UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// prefixCond returns a condition that col starts with the hex prefix p,
// binding its values to w: a range an index can serve (no hex digit sorts
// after "g"), and the exact check.
func prefixCond(w *where, col, p string) string {
	return "(" + w.bind(col+" >= ? AND "+col+" < ? AND substr("+col+", 1, "+strconv.Itoa(len(p))+") = ?", p, p+"g", p) + ")"
}
