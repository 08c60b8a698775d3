package reports

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// assignmentRow is an assignment with its target and version.
type assignmentRow struct {
	ID, TargetID int64
	TargetRef
	Version    string
	Commit     string
	AssignedAt time.Time
	BuildTime  *time.Time
}

// outcome is how an assignment fared on its target's live hosts.
type outcome struct {
	Total, Success, Failure, InProgress int
	FirstSuccess, LastSuccess           *time.Time
	FirstFailure                        *time.Time
}

func (o outcome) allSucceeded() bool { return o.Total > 0 && o.Success == o.Total }

// has reports whether a host of the outcome is in status.
func (o outcome) has(status string) bool {
	switch status {
	case "success":
		return o.Success > 0
	case "failure":
		return o.Failure > 0
	case "in_progress":
		return o.InProgress > 0
	case StatusNotReported:
		return o.Total > o.Success+o.Failure+o.InProgress
	}
	return false
}

// hostCond is a condition on the host (h) of a row: the named one, or any.
func hostCond(args *[]any, host string) string {
	if host == "" {
		return "TRUE"
	}
	*args = append(*args, host)
	return "h.name = $" + strconv.Itoa(len(*args))
}

// assignments lists assignments matching the filter (assigned within
// Since..Until), newest first within each target. limit/offset page it
// (limit 0: all).
func (s *Service) assignments(ctx context.Context, f Filter, limit, offset int) ([]assignmentRow, error) {
	w := &where{}
	w.targetFilter(f)
	if f.Host != "" {
		w.add(`EXISTS (SELECT 1 FROM reconcilers r JOIN hosts h ON h.id = r.host_id
			WHERE r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL AND h.name = ?)`, f.Host)
	}
	if !f.Since.IsZero() {
		w.add("a.assigned_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		w.add("a.assigned_at <= ?", f.Until.UTC())
	}
	q := `SELECT a.id, t.id, ws.name, app.name, wl.name, env.name, t.name, v.version, COALESCE(a.commit_sha, ''), a.assigned_at, v.build_time
		FROM assignments a
		JOIN targets t ON t.id = a.target_id` + targetJoins + `
		JOIN workload_versions v ON v.id = a.version_id
		WHERE ` + w.sql() + `
		ORDER BY env.name, ws.name, app.name, wl.name, t.name, a.assigned_at DESC, a.id DESC`
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit) + " OFFSET " + strconv.Itoa(offset)
	}
	rows, err := s.st.Read().Query(ctx, q, w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []assignmentRow
	for rows.Next() {
		var a assignmentRow
		if err := rows.Scan(&a.ID, &a.TargetID, &a.Workspace, &a.Application, &a.Workload, &a.Environment, &a.Target,
			&a.Version, &a.Commit, &a.AssignedAt, &a.BuildTime); err != nil {
			return nil, err
		}
		a.AssignedAt = a.AssignedAt.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// inList renders "$k, $k+1, ..." for ids appended to args.
func inList(args *[]any, ids []int64) string {
	ph := make([]string, len(ids))
	for i, id := range ids {
		*args = append(*args, id)
		ph[i] = "$" + strconv.Itoa(len(*args))
	}
	return strings.Join(ph, ", ")
}

// outcomes counts, for each assignment, its target's live hosts (only the
// named one, when host is not empty) by their latest report of a commit
// that resolves to the assignment.
func (s *Service) outcomes(ctx context.Context, as []assignmentRow, host string) (map[int64]*outcome, error) {
	out := map[int64]*outcome{}
	if len(as) == 0 {
		return out, nil
	}
	ids := make([]int64, 0, len(as))
	targets := map[int64]bool{}
	var targetIDs []int64
	for _, a := range as {
		out[a.ID] = &outcome{}
		ids = append(ids, a.ID)
		if !targets[a.TargetID] {
			targets[a.TargetID] = true
			targetIDs = append(targetIDs, a.TargetID)
		}
	}
	for chunk := range slices.Chunk(targetIDs, 500) {
		var args []any
		rows, err := s.st.Read().Query(ctx, `SELECT t.id, count(*) FROM targets t
			JOIN reconcilers r ON r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL
			JOIN hosts h ON h.id = r.host_id
			WHERE t.id IN (`+inList(&args, chunk)+`) AND (`+hostCond(&args, host)+`) GROUP BY t.id`, args...)
		if err != nil {
			return nil, err
		}
		totals := map[int64]int{}
		for rows.Next() {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, err
			}
			totals[id] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, a := range as {
			if _, ok := totals[a.TargetID]; ok {
				out[a.ID].Total = totals[a.TargetID]
			}
		}
	}
	type latestKey struct{ assignment, reconciler int64 }
	type latestDep struct {
		status      string
		since, last time.Time
	}
	latest := map[latestKey]latestDep{}
	for chunk := range slices.Chunk(ids, 500) {
		var args []any
		in := inList(&args, chunk)
		rows, err := s.st.Read().Query(ctx, `SELECT res.assignment_id, r.id, d.status, d.status_since, d.last_changed
			FROM resolutions res
			JOIN targets t ON t.id = res.target_id
			JOIN reconcilers r ON r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL
			JOIN hosts h ON h.id = r.host_id
			JOIN deployments d ON d.reconciler_id = r.id AND d.commit_sha = res.sha
			WHERE res.assignment_id IN (`+in+`) AND (`+hostCond(&args, host)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k latestKey
			var d latestDep
			if err := rows.Scan(&k.assignment, &k.reconciler, &d.status, &d.since, &d.last); err != nil {
				rows.Close()
				return nil, err
			}
			if cur, ok := latest[k]; !ok || d.last.After(cur.last) {
				latest[k] = d
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		args = nil
		in = inList(&args, chunk)
		rows, err = s.st.Read().Query(ctx, `SELECT res.assignment_id, min(dh.changed_at)
			FROM resolutions res
			JOIN targets t ON t.id = res.target_id
			JOIN reconcilers r ON r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL
			JOIN hosts h ON h.id = r.host_id
			JOIN deployments d ON d.reconciler_id = r.id AND d.commit_sha = res.sha
			JOIN deployment_history dh ON dh.deployment_id = d.id AND dh.status = 'failure'
			WHERE res.assignment_id IN (`+in+`) AND (`+hostCond(&args, host)+`)
			GROUP BY res.assignment_id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var at *time.Time
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return nil, err
			}
			if at != nil {
				t := at.UTC()
				out[id].FirstFailure = &t
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for k, d := range latest {
		o := out[k.assignment]
		switch d.status {
		case "success":
			o.Success++
			since := d.since.UTC()
			if o.FirstSuccess == nil || since.Before(*o.FirstSuccess) {
				o.FirstSuccess = &since
			}
			if o.LastSuccess == nil || since.After(*o.LastSuccess) {
				o.LastSuccess = &since
			}
		case "failure":
			o.Failure++
		default:
			o.InProgress++
		}
	}
	return out, nil
}

// History lists each assignment of each target (newest first), with how
// many of the target's hosts succeeded, failed, are in progress or have not
// reported it, and when the first and the last host succeeded. Since and
// Until bound the assignment time; Host counts only that host (and lists
// only the targets it reconciles); Status lists only the assignments that
// have a host in that status.
func (s *Service) History(ctx context.Context, f Filter, p Page) ([]HistoryRow, string, error) {
	off, err := p.offset()
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	var as []assignmentRow
	var outs map[int64]*outcome
	next := ""
	if f.Status == "" {
		if as, err = s.assignments(ctx, f, limit+1, off); err != nil {
			return nil, "", err
		}
		if len(as) > limit {
			as = as[:limit]
			next = offsetCursor(off + limit)
		}
		if outs, err = s.outcomes(ctx, as, f.Host); err != nil {
			return nil, "", err
		}
	} else {
		// Whether an assignment has a host in the status is known only
		// once its outcome is.
		if as, err = s.assignments(ctx, f, 0, 0); err != nil {
			return nil, "", err
		}
		if outs, err = s.outcomes(ctx, as, f.Host); err != nil {
			return nil, "", err
		}
		as = slices.DeleteFunc(as, func(a assignmentRow) bool { return !outs[a.ID].has(f.Status) })
		if as, next, err = paginate(as, p); err != nil {
			return nil, "", err
		}
	}
	rows := make([]HistoryRow, 0, len(as))
	for _, a := range as {
		o := outs[a.ID]
		r := HistoryRow{TargetRef: a.TargetRef, Version: a.Version, Commit: a.Commit, AssignedAt: a.AssignedAt,
			Success: o.Success, Failure: o.Failure, InProgress: o.InProgress,
			NotReported: max(0, o.Total-o.Success-o.Failure-o.InProgress), FirstSuccessAt: o.FirstSuccess}
		if a.BuildTime != nil {
			r.BuildTime = a.BuildTime.UTC()
		}
		if o.allSucceeded() {
			r.AllSucceededAt = o.LastSuccess
		}
		rows = append(rows, r)
	}
	return rows, next, nil
}

// DefaultDORAWindow is the time range of DORA metrics when none is given.
const DefaultDORAWindow = 30 * 24 * time.Hour

// DORA computes the four DORA metrics per workload and environment over
// Since..Until (default: the last 30 days). A deployment is an assignment;
// it succeeded when every host of its target reached success (with Host:
// when that host did). Status does not apply: the metrics count every
// status.
func (s *Service) DORA(ctx context.Context, f Filter, p Page) ([]DORARow, string, error) {
	if f.Status != "" {
		return nil, "", &FilterError{Param: "status", Problem: "DORA metrics count every status: leave out status"}
	}
	until := f.Until
	if until.IsZero() {
		until = s.now().UTC()
	}
	since := f.Since
	if since.IsZero() {
		since = until.Add(-DefaultDORAWindow)
	}
	// Later assignments are read too: they may restore a failure.
	g := f
	g.Since, g.Until = since, time.Time{}
	as, err := s.assignments(ctx, g, 0, 0)
	if err != nil {
		return nil, "", err
	}
	outs, err := s.outcomes(ctx, as, f.Host)
	if err != nil {
		return nil, "", err
	}
	byTarget := map[int64][]assignmentRow{}
	for _, a := range as {
		byTarget[a.TargetID] = append(byTarget[a.TargetID], a)
	}
	for _, list := range byTarget {
		slices.SortFunc(list, func(a, b assignmentRow) int {
			return cmp.Or(a.AssignedAt.Compare(b.AssignedAt), cmp.Compare(a.ID, b.ID))
		})
	}
	type key struct{ ws, app, wl, env string }
	type acc struct {
		deployments, changes, failed int
		lead, restore                []float64
	}
	accs := map[key]*acc{}
	var keys []key
	days := until.Sub(since).Hours() / 24
	for _, a := range as {
		if a.AssignedAt.After(until) {
			continue
		}
		k := key{a.Workspace, a.Application, a.Workload, a.Environment}
		c := accs[k]
		if c == nil {
			c = &acc{}
			accs[k] = c
			keys = append(keys, k)
		}
		o := outs[a.ID]
		c.changes++
		if o.allSucceeded() {
			c.deployments++
			if a.BuildTime != nil {
				c.lead = append(c.lead, o.LastSuccess.Sub(*a.BuildTime).Seconds())
			}
		}
		if o.FirstFailure != nil {
			c.failed++
			// Restored when this or a later assignment of the target last
			// reached success on every host after the failure.
			for _, later := range byTarget[a.TargetID] {
				if later.AssignedAt.Before(a.AssignedAt) {
					continue
				}
				lo := outs[later.ID]
				if lo.allSucceeded() && lo.LastSuccess.After(*o.FirstFailure) {
					c.restore = append(c.restore, lo.LastSuccess.Sub(*o.FirstFailure).Seconds())
					break
				}
			}
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.app, b.app), cmp.Compare(a.wl, b.wl), cmp.Compare(a.env, b.env))
	})
	rows := make([]DORARow, 0, len(keys))
	for _, k := range keys {
		c := accs[k]
		r := DORARow{Workspace: k.ws, Application: k.app, Workload: k.wl, Environment: k.env,
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
	return paginate(rows, p)
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
