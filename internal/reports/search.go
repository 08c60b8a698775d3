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
	"github.com/tidemark-dev/tidemark/internal/store"
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
	// Truncated is true when there are more matches than this page holds
	// (see the next cursor).
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

	id int64 // the assignment's, for the cursor
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

// searchKey is the cursor of Search: where each of its two lists stopped.
// A list that ended has Done set; one with no key yet starts at its
// beginning.
type searchKey struct {
	A     *assignmentKey `json:"a,omitempty"`
	ADone bool           `json:"ad,omitempty"`
	H     *hostKey       `json:"h,omitempty"`
	HDone bool           `json:"hd,omitempty"`
}

// assignmentKey orders matched assignments, newest first.
type assignmentKey struct {
	At time.Time `json:"t"`
	ID int64     `json:"i"`
}

// Search finds a GitOps commit (full or abbreviated, in any revision form),
// a version or a build commit: the assignments that carry it, with their
// host counts and the lag to "all hosts succeeded", and the hosts that run
// it now. It pages by key: a page holds up to the page's limit of
// assignments (the newest first) and as many hosts (by host name), each
// page sorted for display by environment; the next cursor continues both
// lists, and Truncated says there is one.
func (s *Service) Search(ctx context.Context, q string, p Page) (SearchResult, string, error) {
	q = strings.TrimSpace(q)
	res := SearchResult{Query: q, Assignments: []SearchAssignment{}, Hosts: []SearchHost{}}
	if q == "" {
		return res, "", ErrEmptyQuery
	}
	var key searchKey
	if _, err := decodeCursor("search", p.Cursor, &key); err != nil {
		return res, "", err
	}
	limit := p.limit()
	if c, err := model.NormalizeRevision(q); err == nil {
		res.Commit = c
	}
	next := searchKey{ADone: key.ADone, HDone: key.HDone}
	if !key.ADone {
		as, err := s.searchAssignments(ctx, q, res.Commit, key.A, limit+1)
		if err != nil {
			return res, "", err
		}
		if len(as) > limit {
			as = as[:limit]
			next.A = &assignmentKey{as[limit-1].AssignedAt, as[limit-1].id}
		} else {
			next.ADone = true
		}
		res.Assignments = append(res.Assignments, as...)
	}
	if !key.HDone {
		hosts, keys, err := s.searchHosts(ctx, q, res.Commit, key.H, limit+1)
		if err != nil {
			return res, "", err
		}
		if len(hosts) > limit {
			hosts = hosts[:limit]
			next.H = &keys[limit-1]
		} else {
			next.HDone = true
		}
		res.Hosts = append(res.Hosts, hosts...)
	}
	envs, err := s.Environments(ctx, nil)
	if err != nil {
		return res, "", err
	}
	rank := func(e string) int { return slices.Index(envs, e) }
	slices.SortStableFunc(res.Assignments, func(a, b SearchAssignment) int {
		return cmp.Or(cmp.Compare(rank(a.Environment), rank(b.Environment)), compareRefs(a.TargetRef, b.TargetRef), b.AssignedAt.Compare(a.AssignedAt))
	})
	slices.SortStableFunc(res.Hosts, func(a, b SearchHost) int {
		return cmp.Or(cmp.Compare(rank(a.Environment), rank(b.Environment)), compareRefs(a.TargetRef, b.TargetRef),
			cmp.Compare(a.Host, b.Host), cmp.Compare(a.Reconciler, b.Reconciler))
	})
	cursor := ""
	if !next.ADone || !next.HDone {
		res.Truncated = true
		cursor = encodeCursor("search", next)
	}
	return res, cursor, nil
}

// versionMatches is the FROM and WHERE of the assignments (a2, of target
// t2) whose version (v2) is q or was built from the commit prefix: the
// versions by their index, then the assignments of their workload's
// targets; join adds to the FROM.
func versionMatches(w *where, q, commit, join string) string {
	conds := []string{w.bind("v2.version = ?", q)}
	if commit != "" {
		conds = append(conds, prefixCond(w, "v2.build_commit", commit))
	}
	return ` FROM workload_versions v2 JOIN targets t2 ON t2.workload_id = v2.workload_id
		JOIN assignments a2 ON a2.target_id = t2.id AND a2.version_id = v2.id` + join + `
		WHERE ` + strings.Join(conds, " OR ")
}

// searchAssignments reads up to limit matched assignments after a key,
// newest first, with their outcomes.
func (s *Service) searchAssignments(ctx context.Context, q, commit string, after *assignmentKey, limit int) ([]SearchAssignment, error) {
	w := &where{}
	ids := `SELECT a2.id` + versionMatches(w, q, commit, "")
	if commit != "" {
		ids += ` UNION SELECT a2.id FROM assignments a2 WHERE ` + prefixCond(w, "a2.commit_sha", commit)
	}
	w.add("a.id IN (" + ids + ")")
	if after != nil {
		w.add("(a.assigned_at < ? OR (a.assigned_at = ? AND a.id < ?))", after.At, after.At, after.ID)
	}
	var as []assignmentRow
	out, err := store.Collect(ctx, s.st.Read(), `SELECT a.id, t.id, ws.name, app.name, wl.name, env.name, t.name, v.version,
			COALESCE(a.commit_sha, ''), v.build_commit, a.assigned_at, v.build_time,
			CASE WHEN t.scheduled_assignment_id = a.id THEN 1 ELSE 0 END
		FROM assignments a
		JOIN targets t ON t.id = a.target_id`+targetJoins+`
		JOIN workload_versions v ON v.id = a.version_id
		WHERE `+w.sql()+`
		ORDER BY a.assigned_at DESC, a.id DESC LIMIT `+strconv.Itoa(limit), w.args, func(r store.Row) (SearchAssignment, error) {
		var a assignmentRow
		var m SearchAssignment
		var scheduled int
		if err := r.Scan(&a.ID, &a.TargetID, &a.Workspace, &a.Application, &a.Workload, &a.Environment, &a.Target,
			&a.Version, &a.Commit, &m.BuildCommit, &a.AssignedAt, &a.BuildTime, &scheduled); err != nil {
			return m, err
		}
		a.AssignedAt = a.AssignedAt.UTC()
		m.id, m.Scheduled = a.ID, scheduled == 1
		m.TargetRef, m.Version, m.Commit, m.AssignedAt = a.TargetRef, a.Version, a.Commit, a.AssignedAt
		switch {
		case a.Version == q:
			m.MatchedBy = MatchVersion
		case commit != "" && strings.HasPrefix(a.Commit, commit):
			m.MatchedBy = MatchCommit
		default:
			m.MatchedBy = MatchBuildCommit
		}
		as = append(as, a)
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	outs, err := s.outcomesOf(ctx, as)
	if err != nil {
		return nil, err
	}
	for i := range out {
		m := &out[i]
		o := outs[m.id]
		m.Success, m.Failure, m.InProgress = o.Success, o.Failure, o.InProgress
		m.NotReported = max(0, o.Total-o.Success-o.Failure-o.InProgress)
		m.FirstSuccessAt = o.FirstSuccess
		if o.allSucceeded() {
			m.AllSucceededAt = o.LastSuccess
			lag := max(0, o.LastSuccess.Sub(m.AssignedAt).Seconds())
			m.LagSeconds = &lag
		}
	}
	return out, nil
}

// searchWalkFactor decides how searchHosts finds a page of the M live
// reconcilers (of R) that may match: when M² > searchWalkFactor × page ×
// R, it walks the hosts in name order, a chunk at a time, and stops when
// the page is full (about page × R / M rows read); else it reads every
// match, through the maintained counts' groups, and sorts them (M rows).
// Variables, so that the tests can run both ways, and walk in small chunks.
var (
	searchWalkFactor int64 = 1
	searchFirstChunk       = 32 // hosts
)

// searchHosts lists up to limit live host-target pairs after a key (by
// host, reconciler, target): those running the commit, or a commit that
// resolves to a matched version or build commit, and reconcilers of no
// target (target id 0) running the commit.
func (s *Service) searchHosts(ctx context.Context, q, commit string, after *hostKey, limit int) ([]SearchHost, []hostKey, error) {
	// The (endpoint, commit) groups that can match: those whose commit
	// resolves to a matched assignment, and those of the commit.
	cw := &where{}
	groups := `SELECT t2.endpoint_id AS endpoint_id, res2.sha AS sha` +
		versionMatches(cw, q, commit, " JOIN resolutions res2 ON res2.target_id = a2.target_id AND res2.assignment_id = a2.id")
	if commit != "" {
		groups += ` UNION SELECT c2.endpoint_id, c2.commit_sha FROM endpoint_counts c2 WHERE ` + prefixCond(cw, "c2.commit_sha", commit)
	}
	var matching, live int64
	if err := s.st.Read().QueryRow(ctx, `SELECT
			(SELECT COALESCE(sum(c.hosts), 0) FROM (`+groups+`) p JOIN endpoint_counts c ON c.endpoint_id = p.endpoint_id AND c.commit_sha = p.sha AND c.status <> ''),
			(SELECT COALESCE(sum(hosts), 0) FROM endpoint_counts)`, cw.args...).Scan(&matching, &live); err != nil {
		return nil, nil, err
	}
	if matching == 0 {
		return nil, nil, nil
	}
	// Each row passes the exact condition: for its target, the version
	// its commit resolves to, its build commit, or the commit itself;
	// with no target, the commit.
	rowCond := func(w *where) string {
		conds := []string{w.bind("v.version = ?", q)}
		untargeted := "FALSE"
		if commit != "" {
			conds = append(conds, prefixCond(w, "r.commit_sha", commit), prefixCond(w, "v.build_commit", commit))
			untargeted = prefixCond(w, "r.commit_sha", commit)
		}
		cond := "r.retired_at IS NULL AND CASE WHEN t.id IS NULL THEN " + untargeted + " ELSE (" + strings.Join(conds, " OR ") + ") END"
		if after != nil {
			cond += " AND " + w.bind(hostOrderPrefix+" >= substr(?, 1, 512) AND (h.name > ? OR (h.name = ? AND (r.name > ? OR (r.name = ? AND COALESCE(t.id, 0) > ?))))",
				after.Host, after.Host, after.Host, after.Reconciler, after.Reconciler, after.TargetID)
		}
		return cond
	}
	const cols = `SELECT h.name, r.name, COALESCE(ws.name, ''), COALESCE(app.name, ''), COALESCE(wl.name, ''), COALESCE(env.name, ''),
			COALESCE(t.name, ''), COALESCE(t.id, 0), COALESCE(v.version, ''), CASE WHEN res.assignment_id IS NULL THEN 0 ELSE 1 END,
			r.commit_sha, r.status, d.message, r.status_since`
	const joins = `
		JOIN deployments d ON d.id = r.current_deployment_id
		LEFT JOIN targets t ON t.endpoint_id = r.endpoint_id
		LEFT JOIN workloads wl ON wl.id = t.workload_id
		LEFT JOIN applications app ON app.id = wl.application_id
		LEFT JOIN workspaces ws ON ws.id = app.workspace_id
		LEFT JOIN environments env ON env.id = t.environment_id
		LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = r.commit_sha
		LEFT JOIN workload_versions v ON v.id = res.version_id`
	const order = ` ORDER BY ` + hostOrder + `, r.name, COALESCE(t.id, 0)`
	var out []SearchHost
	var keys []hostKey
	read := func(sql string, args []any) error {
		return collectEach(ctx, s.st.Read(), sql, args, func(r store.Row) error {
			var h SearchHost
			var k hostKey
			var known int
			if err := r.Scan(&h.Host, &h.Reconciler, &h.Workspace, &h.Application, &h.Workload, &h.Environment, &h.Target, &k.TargetID,
				&h.Version, &known, &h.Commit, &h.Status, &h.Message, &h.StatusSince); err != nil {
				return err
			}
			h.VersionKnown, h.StatusSince = known == 1, h.StatusSince.UTC()
			k.Host, k.Reconciler = h.Host, h.Reconciler
			out, keys = append(out, h), append(keys, k)
			return nil
		})
	}
	if matching*matching <= searchWalkFactor*int64(limit)*live {
		// Few: the reconcilers of the groups, sorted.
		w := &where{args: slices.Clone(cw.args)}
		cond := rowCond(w)
		// The groups come first in the FROM: with more joins than the
		// planner reorders (join_collapse_limit), it keeps this order.
		err := read(`WITH p AS (`+groups+`) `+cols+`
			FROM p JOIN reconcilers r ON r.endpoint_id = p.endpoint_id AND r.commit_sha = p.sha
			JOIN hosts h ON h.id = r.host_id`+joins+`
			WHERE `+cond+order+` LIMIT `+strconv.Itoa(limit), w.args)
		return out, keys, err
	}
	// Many: the hosts in name order, a chunk at a time, until the page is
	// full; chunks grow while they find little.
	from, inclusive := "", false
	if after != nil {
		from, inclusive = after.Host, true
	}
	chunk := searchFirstChunk
	for len(out) < limit {
		hw := &where{}
		if inclusive {
			hw.add("substr(h.name, 1, 512) >= substr(?, 1, 512) AND h.name >= ?", from, from)
		} else if from != "" {
			hw.add("substr(h.name, 1, 512) >= substr(?, 1, 512) AND h.name > ?", from, from)
		}
		type hostID struct {
			id   int64
			name string
		}
		hs, err := store.Collect(ctx, s.st.Read(), `SELECT h.id, h.name FROM hosts h WHERE `+hw.sql()+` ORDER BY `+hostOrder+` LIMIT `+strconv.Itoa(chunk), hw.args,
			func(r store.Row) (hostID, error) {
				var h hostID
				err := r.Scan(&h.id, &h.name)
				return h, err
			})
		if err != nil || len(hs) == 0 {
			return out, keys, err
		}
		ids := make([]int64, len(hs))
		for i, h := range hs {
			ids[i] = h.id
		}
		w := &where{}
		cond := rowCond(w)
		a := store.Args(w.args)
		if err := read(cols+`
			FROM hosts h JOIN reconcilers r ON r.host_id = h.id`+joins+`
			WHERE `+cond+` AND h.id IN (`+store.BindList(&a, ids)+`)`+order+` LIMIT `+strconv.Itoa(limit-len(out)), a); err != nil {
			return nil, nil, err
		}
		if len(hs) < chunk {
			break
		}
		from, inclusive = hs[len(hs)-1].name, false
		chunk = min(2*chunk, 1024)
	}
	return out, keys, nil
}

// prefixCond returns a condition that col starts with the hex prefix p,
// binding its values to w: a range an index can serve (no hex digit sorts
// after "g"), and the exact check.
func prefixCond(w *where, col, p string) string {
	return "(" + w.bind(col+" >= ? AND "+col+" < ? AND substr("+col+", 1, "+strconv.Itoa(len(p))+") = ?", p, p+"g", p) + ")"
}
