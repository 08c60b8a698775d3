package reports

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// assignmentRow is an assignment with its target, version and how it fared
// on its target's live hosts.
type assignmentRow struct {
	ID, TargetID int64
	TargetRef
	Version    string
	Commit     string
	AssignedAt time.Time
	BuildTime  *time.Time
	outcome
}

// outcome is how an assignment fared on its target's live hosts: each
// counts once, by its latest report of a commit that resolves to the
// assignment (assignment_outcomes, kept at ingest).
type outcome struct {
	Total, Success, Failure, InProgress int
	FirstSuccess, LastSuccess           *time.Time
	FirstFailure                        *time.Time
}

func (o outcome) allSucceeded() bool { return o.Total > 0 && o.Success == o.Total }

// outcomeColumns selects an assignment's (a) outcome on its target's (t)
// live hosts: from the maintained outcomes, or, for one host, from its
// reconcilers' rows.
func outcomeColumns(w *where, host string) string {
	return outcomeColumnsTotal(w, host, targetHosts)
}

// targetHosts is the number of live hosts of target t, from the maintained
// counts.
const targetHosts = `COALESCE((SELECT sum(c.hosts) FROM endpoint_counts c WHERE c.endpoint_id = t.endpoint_id), 0)`

// outcomeColumnsTotal is outcomeColumns with the target's live hosts read
// from total (without a host filter), for a query that counts them once
// a target rather than once an assignment.
func outcomeColumnsTotal(w *where, host, total string) string {
	if host == "" {
		return `COALESCE(o.success, 0) AS success, COALESCE(o.failure, 0) AS failure, COALESCE(o.in_progress, 0) AS in_progress,
			o.first_success_at AS first_success_at, o.last_success_at AS last_success_at, o.first_failure_at AS first_failure_at,
			` + total + ` AS total`
	}
	ra := func(sel, cond string) string {
		return `(SELECT ` + sel + ` FROM reconciler_assignments ra JOIN reconcilers hr ON hr.id = ra.reconciler_id
			WHERE ra.assignment_id = a.id AND ra.live AND hr.host_id = hid.id` + cond + `)`
	}
	return ra("count(*)", " AND ra.status = 'success'") + " AS success, " + ra("count(*)", " AND ra.status = 'failure'") + " AS failure, " +
		ra("count(*)", " AND ra.status = 'in_progress'") + " AS in_progress, " +
		ra("min(ra.status_since)", " AND ra.status = 'success'") + " AS first_success_at, " +
		ra("max(ra.status_since)", " AND ra.status = 'success'") + " AS last_success_at, " +
		ra("min(ra.first_failure_at)", "") + ` AS first_failure_at,
		(SELECT count(*) FROM reconcilers hr WHERE hr.endpoint_id = t.endpoint_id AND hr.host_id = hid.id AND hr.retired_at IS NULL) AS total`
}

// assignmentsFrom is assignments (a) with their target (t), names, version
// (v) and maintained outcome (o); with a host filter, hid is the host.
func assignmentsFrom(w *where, host string) string {
	from := `
		FROM assignments a
		JOIN targets t ON t.id = a.target_id` + targetJoins + `
		JOIN workload_versions v ON v.id = a.version_id
		LEFT JOIN assignment_outcomes o ON o.assignment_id = a.id`
	if host != "" {
		from += `
		JOIN hosts hid ON hid.name = ` + w.bind("?", host)
	}
	return from
}

func scanAssignmentRow(r store.Row) (assignmentRow, error) {
	var a assignmentRow
	err := r.Scan(&a.ID, &a.TargetID, &a.Environment, &a.Workspace, &a.Application, &a.Workload, &a.Target,
		&a.Version, &a.Commit, &a.AssignedAt, &a.BuildTime,
		&a.Success, &a.Failure, &a.InProgress, &a.FirstSuccess, &a.LastSuccess, &a.FirstFailure, &a.Total)
	a.AssignedAt = a.AssignedAt.UTC()
	for _, t := range []**time.Time{&a.BuildTime, &a.FirstSuccess, &a.LastSuccess, &a.FirstFailure} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return a, err
}

const assignmentCols = `a.id AS aid, t.id AS tid, env.name AS env, ws.name AS ws, app.name AS app, wl.name AS wl, t.name AS target,
	v.version AS version, COALESCE(a.commit_sha, '') AS commit_sha, a.assigned_at AS assigned_at, v.build_time AS build_time`

// historyKey is the sort key of Environment History: the target's, then
// the newest assignment first.
type historyKey struct {
	Target     targetKey `json:"t"`
	AssignedAt time.Time `json:"a"`
	ID         int64     `json:"i"`
}

// History lists each assignment of each target (newest first), with how
// many of the target's hosts succeeded, failed, are in progress or have not
// reported it, and when the first and the last host succeeded. Since and
// Until bound the assignment time; Host counts only that host (and lists
// only the targets it reconciles); Status lists only the assignments that
// have a host in that status. Pages follow the target, then the
// assignment time.
func (s *Service) History(ctx context.Context, f Filter, p Page) ([]HistoryRow, string, error) {
	var after historyKey
	hasAfter, err := decodeCursor("environment-history", p.Cursor, &after)
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	w := &where{}
	from := assignmentsFrom(w, f.Host)
	cols := outcomeColumns(w, f.Host)
	w.targetFilter(f)
	if f.Host != "" {
		w.add(`EXISTS (SELECT 1 FROM reconcilers hr WHERE hr.endpoint_id = t.endpoint_id AND hr.host_id = hid.id AND hr.retired_at IS NULL)`)
	}
	if !f.Since.IsZero() {
		w.add("a.assigned_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		w.add("a.assigned_at <= ?", f.Until.UTC())
	}
	if hasAfter {
		k := after.Target
		w.add(`((env.name, ws.name, app.name, wl.name, t.name, t.id) > (?, ?, ?, ?, ?, ?)
			OR ((env.name, ws.name, app.name, wl.name, t.name, t.id) = (?, ?, ?, ?, ?, ?) AND (a.assigned_at, a.id) < (?, ?)))`,
			k.Env, k.Ws, k.App, k.Wl, k.Name, k.ID, k.Env, k.Ws, k.App, k.Wl, k.Name, k.ID, after.AssignedAt, after.ID)
	}
	// Whether a host is in the status is known once the outcome is.
	statusCond := map[string]string{"": "TRUE", "success": "success > 0", "failure": "failure > 0", "in_progress": "in_progress > 0",
		StatusNotReported: "total > success + failure + in_progress"}[f.Status]
	q := `SELECT * FROM (SELECT ` + assignmentCols + `, ` + cols + from + ` WHERE ` + w.sql() + `) x WHERE ` + statusCond
	order := `env, ws, app, wl, target, tid, assigned_at DESC, aid DESC`
	as, err := store.Collect(ctx, s.st.Read(), q+` ORDER BY `+order+` LIMIT `+strconv.Itoa(limit+1), w.args, scanAssignmentRow)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(as) > limit {
		as = as[:limit]
		a := as[limit-1]
		next = encodeCursor("environment-history", historyKey{targetKey{a.Environment, a.Workspace, a.Application, a.Workload, a.Target, a.TargetID}, a.AssignedAt, a.ID})
	}
	rows := make([]HistoryRow, 0, len(as))
	for _, a := range as {
		r := HistoryRow{TargetRef: a.TargetRef, Version: a.Version, Commit: a.Commit, AssignedAt: a.AssignedAt,
			Success: a.Success, Failure: a.Failure, InProgress: a.InProgress,
			NotReported: max(0, a.Total-a.Success-a.Failure-a.InProgress), FirstSuccessAt: a.FirstSuccess}
		if a.BuildTime != nil {
			r.BuildTime = *a.BuildTime
		}
		if a.allSucceeded() {
			r.AllSucceededAt = a.LastSuccess
		}
		rows = append(rows, r)
	}
	return rows, next, nil
}

// DefaultDORAWindow is the time range of DORA metrics when none is given.
const DefaultDORAWindow = 30 * 24 * time.Hour

// doraKey is the sort key of DORA rows.
type doraKey struct{ Ws, App, Wl, Env string }

// DORA computes the four DORA metrics per workload and environment over
// Since..Until (default: the last 30 days). A deployment is an assignment;
// it succeeded when every host of its target reached success (with Host:
// when that host did). Status does not apply: the metrics count every
// status. Pages follow (workspace, application, workload, environment).
func (s *Service) DORA(ctx context.Context, f Filter, p Page) ([]DORARow, string, error) {
	if f.Status != "" {
		return nil, "", &FilterError{Param: "status", Problem: "DORA metrics count every status: leave out status"}
	}
	var after doraKey
	hasAfter, err := decodeCursor("dora", p.Cursor, &after)
	if err != nil {
		return nil, "", err
	}
	until := f.Until
	if until.IsZero() {
		until = s.now().UTC()
	}
	since := f.Since
	if since.IsZero() {
		since = until.Add(-DefaultDORAWindow)
	}
	limit := p.limit()

	// The page's (workload, environment) groups with an assignment in the
	// range (by the targets' assignments index)...
	w := &where{}
	hostJoin := ""
	if f.Host != "" {
		hostJoin = `
		JOIN hosts hid ON hid.name = ` + w.bind("?", f.Host)
	}
	w.targetFilter(f)
	if f.Host != "" {
		w.add(`EXISTS (SELECT 1 FROM reconcilers hr WHERE hr.endpoint_id = t.endpoint_id AND hr.host_id = hid.id AND hr.retired_at IS NULL)`)
	}
	targetsWhere := w.sql()
	gw := &where{args: w.args}
	gw.conds = append(gw.conds, targetsWhere)
	gw.add("EXISTS (SELECT 1 FROM assignments ga WHERE ga.target_id = t.id AND ga.assigned_at >= ? AND ga.assigned_at <= ?)", since.UTC(), until.UTC())
	if hasAfter {
		gw.add("(ws.name, app.name, wl.name, env.name) > (?, ?, ?, ?)", after.Ws, after.App, after.Wl, after.Env)
	}
	// ...then their targets, each with its live hosts, and their
	// assignments from the range on (later ones may restore a failure),
	// with outcomes: one query.
	aw := &where{args: gw.args}
	aw.add("a.assigned_at >= ?", since.UTC())
	cols := outcomeColumnsTotal(aw, f.Host, "pt.total")
	as, err := store.Collect(ctx, s.st.Read(), `WITH g AS (
			SELECT DISTINCT ws.name AS ws, app.name AS app, wl.name AS wl, env.name AS env, wl.id AS wid, env.id AS eid
			FROM targets t`+targetJoins+hostJoin+`
			WHERE `+gw.sql()+`
			ORDER BY ws, app, wl, env LIMIT `+strconv.Itoa(limit+1)+`
		), pt AS MATERIALIZED (
			SELECT t.id AS tid, `+targetHosts+` AS total
			FROM g JOIN targets t ON t.workload_id = g.wid AND t.environment_id = g.eid`+targetJoins+hostJoin+`
			WHERE `+targetsWhere+`
		)
		SELECT `+assignmentCols+`, `+cols+`
		FROM pt JOIN targets t ON t.id = pt.tid`+targetJoins+hostJoin+`
		JOIN assignments a ON a.target_id = t.id
		JOIN workload_versions v ON v.id = a.version_id
		LEFT JOIN assignment_outcomes o ON o.assignment_id = a.id
		WHERE `+aw.sql()+`
		ORDER BY tid, assigned_at, aid`, aw.args, scanAssignmentRow)
	if err != nil {
		return nil, "", err
	}
	// The groups in order; one more than the page says there is a next.
	var groups []doraKey
	seen := map[doraKey]bool{}
	for _, a := range as {
		k := doraKey{a.Workspace, a.Application, a.Workload, a.Environment}
		if !seen[k] && !a.AssignedAt.After(until) {
			seen[k] = true
			groups = append(groups, k)
		}
	}
	slices.SortFunc(groups, func(a, b doraKey) int {
		return cmp.Or(cmp.Compare(a.Ws, b.Ws), cmp.Compare(a.App, b.App), cmp.Compare(a.Wl, b.Wl), cmp.Compare(a.Env, b.Env))
	})
	if len(groups) == 0 {
		return []DORARow{}, "", nil
	}
	next := ""
	if len(groups) > limit {
		groups = groups[:limit]
		next = encodeCursor("dora", groups[limit-1])
		last := groups[limit-1]
		as = slices.DeleteFunc(as, func(a assignmentRow) bool {
			return cmp.Or(cmp.Compare(a.Workspace, last.Ws), cmp.Compare(a.Application, last.App), cmp.Compare(a.Workload, last.Wl), cmp.Compare(a.Environment, last.Env)) > 0
		})
	}
	byTarget := map[int64][]assignmentRow{}
	for _, a := range as {
		byTarget[a.TargetID] = append(byTarget[a.TargetID], a)
	}
	type acc struct {
		deployments, changes, failed int
		lead, restore                []float64
	}
	accs := map[doraKey]*acc{}
	days := until.Sub(since).Hours() / 24
	for _, a := range as {
		if a.AssignedAt.After(until) {
			continue
		}
		k := doraKey{a.Workspace, a.Application, a.Workload, a.Environment}
		c := accs[k]
		if c == nil {
			c = &acc{}
			accs[k] = c
		}
		c.changes++
		if a.allSucceeded() {
			c.deployments++
			if a.BuildTime != nil {
				c.lead = append(c.lead, a.LastSuccess.Sub(*a.BuildTime).Seconds())
			}
		}
		if a.FirstFailure != nil {
			c.failed++
			// Restored when this or a later assignment of the target last
			// reached success on every host after the failure.
			for _, later := range byTarget[a.TargetID] {
				if later.AssignedAt.Before(a.AssignedAt) {
					continue
				}
				if later.allSucceeded() && later.LastSuccess.After(*a.FirstFailure) {
					c.restore = append(c.restore, later.LastSuccess.Sub(*a.FirstFailure).Seconds())
					break
				}
			}
		}
	}
	rows := make([]DORARow, 0, len(groups))
	for _, k := range groups {
		c := accs[k]
		if c == nil {
			continue
		}
		r := DORARow{Workspace: k.Ws, Application: k.App, Workload: k.Wl, Environment: k.Env,
			Deployments: c.deployments, Changes: c.changes, Failed: c.failed,
			LeadTimeSeconds: median(c.lead), TimeToRestoreSeconds: median(c.restore)}
		if days > 0 {
			r.PerDay = float64(c.deployments) / days
		}
		if c.changes > 0 {
			rate := float64(c.failed) / float64(c.changes)
			r.ChangeFailureRate = &rate
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b DORARow) int {
		return cmp.Or(cmp.Compare(a.Workspace, b.Workspace), cmp.Compare(a.Application, b.Application),
			cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Environment, b.Environment))
	})
	return rows, next, nil
}

func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}

// outcomesOf reads the maintained outcome of assignments.
func (s *Service) outcomesOf(ctx context.Context, as []assignmentRow) (map[int64]outcome, error) {
	out := make(map[int64]outcome, len(as))
	ids := make([]int64, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	for chunk := range slices.Chunk(ids, 500) {
		w := &where{}
		cols := outcomeColumns(w, "")
		a := store.Args(w.args)
		rows, err := store.Collect(ctx, s.st.Read(), `SELECT a.id, `+cols+` FROM assignments a JOIN targets t ON t.id = a.target_id
			LEFT JOIN assignment_outcomes o ON o.assignment_id = a.id WHERE a.id IN (`+store.BindList(&a, chunk)+`)`, a,
			func(r store.Row) (assignmentRow, error) {
				var x assignmentRow
				err := r.Scan(&x.ID, &x.Success, &x.Failure, &x.InProgress, &x.FirstSuccess, &x.LastSuccess, &x.FirstFailure, &x.Total)
				return x, err
			})
		if err != nil {
			return nil, err
		}
		for _, x := range rows {
			out[x.ID] = x.outcome
		}
	}
	return out, nil
}
