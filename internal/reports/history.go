package reports

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
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

// outcomeColumns selects an assignment's (a) outcome on its target's live
// hosts (but their number: targetTotal): from the maintained outcomes (o),
// or, for one host (h not nil), from that host's rows (ho, joined by
// h.outcomesJoin).
func outcomeColumns(h *hostReconcilers) string {
	o := "o"
	if h != nil {
		o = "ho"
	}
	return `COALESCE(` + o + `.success, 0) AS success, COALESCE(` + o + `.failure, 0) AS failure, COALESCE(` + o + `.in_progress, 0) AS in_progress,
			` + o + `.first_success_at AS first_success_at, ` + o + `.last_success_at AS last_success_at, ` + o + `.first_failure_at AS first_failure_at`
}

// targetTotal is the number of live hosts of target t (h not nil: of that
// host's, bound into w), from the maintained counts.
func targetTotal(w *where, h *hostReconcilers) string {
	if h != nil {
		return h.targetHosts(w)
	}
	return `COALESCE((SELECT sum(c.hosts) FROM endpoint_counts c WHERE c.endpoint_id = t.endpoint_id), 0)`
}

// hostReconcilers are the live reconcilers of the host a filter names, and
// their endpoints. The reports that count assignments on one host read
// them first, then that host's rows by key: resolved inside one query, the
// host's reconcilers became a join the planner sized for any host, and it
// read every reconciler (100 ms at 10,000 hosts).
type hostReconcilers struct {
	ids, endpoints []int64
	onEndpoint     map[int64]int // the host's live reconcilers on each endpoint
}

// hostReconcilers reads the live reconcilers of host (nil without one).
func (s *Service) hostReconcilers(ctx context.Context, host string) (*hostReconcilers, error) {
	if host == "" {
		return nil, nil
	}
	h := &hostReconcilers{onEndpoint: map[int64]int{}}
	err := collectEach(ctx, s.st.Read(), `SELECT r.id, r.endpoint_id FROM reconcilers r JOIN hosts h ON h.id = r.host_id
		WHERE h.name = $1 AND r.retired_at IS NULL ORDER BY r.id`, []any{host}, func(r store.Row) error {
		var id, ep int64
		err := r.Scan(&id, &ep)
		h.ids = append(h.ids, id)
		if h.onEndpoint[ep]++; h.onEndpoint[ep] == 1 {
			h.endpoints = append(h.endpoints, ep)
		}
		return err
	})
	slices.Sort(h.endpoints)
	return h, err
}

// none reports whether the host has no live reconciler: nothing to list.
func (h *hostReconcilers) none() bool { return h != nil && len(h.ids) == 0 }

// onTarget is the condition that target t is the host's, bound into w.
func (h *hostReconcilers) onTarget(w *where) string {
	return "t.endpoint_id IN (" + bindIDs(&w.args, h.endpoints) + ")"
}

// targetHosts counts the host (0 or 1 reconciler, rarely more) on target t,
// bound into w: a constant per endpoint, known from its reconcilers.
func (h *hostReconcilers) targetHosts(w *where) string {
	var b strings.Builder
	b.WriteString("CASE t.endpoint_id")
	for _, ep := range h.endpoints {
		b.WriteString(w.bind(" WHEN ? THEN ?", ep, h.onEndpoint[ep]))
	}
	b.WriteString(" ELSE 0 END")
	return b.String()
}

// outcomesJoin joins (as ho, by assignment a) how each assignment fared on
// the host's reconcilers, bound into w: their live rows, counted once per
// assignment (every row's target is on its reconciler's endpoint: the
// maintenance keeps no other). The host's rows are read by key in one
// pass (a range of the primary key per reconciler), not once per
// assignment and column: History's seven subqueries a row took 82 ms for
// a host's 800 assignments, 9.5 ms so. Checking each row's target again
// by a join made PostgreSQL size the rows at one and compare each
// assignment with each of them (2,500 × 100 for a host with 250
// assignments a target: 35 ms).
func (h *hostReconcilers) outcomesJoin(w *where) string {
	return `
		LEFT JOIN (SELECT ra.assignment_id,
				sum(CASE WHEN ra.status = 'success' THEN 1 ELSE 0 END) AS success,
				sum(CASE WHEN ra.status = 'failure' THEN 1 ELSE 0 END) AS failure,
				sum(CASE WHEN ra.status = 'in_progress' THEN 1 ELSE 0 END) AS in_progress,
				min(ra.first_success_at) AS first_success_at,
				max(ra.first_success_at) AS last_success_at,
				min(ra.first_failure_at) AS first_failure_at
			FROM reconciler_assignments ra
			WHERE ra.reconciler_id IN (` + bindIDs(&w.args, h.ids) + `) AND ra.live
			GROUP BY ra.assignment_id) ho ON ho.assignment_id = a.id`
}

func scanAssignmentRow(r store.Row) (assignmentRow, error) {
	var a assignmentRow
	err := r.Scan(&a.ID, &a.TargetID, &a.Environment, &a.Workspace, &a.Application, &a.Workload, &a.Target,
		&a.Version, &a.Commit, &a.AssignedAt, &a.BuildTime,
		&a.Success, &a.Failure, &a.InProgress, &a.FirstSuccess, &a.LastSuccess, &a.FirstFailure, &a.Total)
	a.AssignedAt = a.AssignedAt.UTC()
	for _, t := range []*time.Time{a.BuildTime, a.FirstSuccess, a.LastSuccess, a.FirstFailure} {
		if t != nil {
			*t = t.UTC() // each scanned into a time of its own
		}
	}
	return a, err
}

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
	host, err := s.hostReconcilers(ctx, f.Host)
	if err != nil || host.none() {
		return []HistoryRow{}, "", err
	}
	envs, err := s.Environments(ctx, nil)
	if err != nil {
		return nil, "", err
	}
	var cursor *historyKey
	if hasAfter {
		cursor = &after
	}
	as, err := s.historyRows(ctx, f, host, envs, cursor, limit+1)
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

// historyTargets adds to w History's conditions on targets (t): the
// filter's, the host's, and from the cursor's target on.
func historyTargets(w *where, f Filter, host *hostReconcilers, order targetOrder, after *historyKey) {
	w.targetFilter(f)
	if host != nil {
		w.conds = append(w.conds, host.onTarget(w))
	}
	if after != nil {
		w.conds = append(w.conds, `(`+order.after(w, after.Target)+` OR `+order.at(w, after.Target)+`)`)
	}
}

// historyRows reads, in History's order, up to limit assignments that pass
// the filter and follow the cursor.
//
// The filter's targets are sorted first (a few thousand rows at most), and
// their assignments joined to them in that order, each target's by key:
// PostgreSQL then sorts only each target's own assignments (an incremental
// sort on the targets' order) and stops at the page, so a page reads the
// assignments of its own targets. Sorting every assignment of the fleet
// for each page took a second at 400,000 assignments; reading the targets
// a slice at a time, three statements and 16 ms for a 1,000-row page at
// 10,000 hosts, against one and 6 ms so.
func (s *Service) historyRows(ctx context.Context, f Filter, host *hostReconcilers, envs []string, after *historyKey, limit int) ([]assignmentRow, error) {
	w := &where{}
	order := newTargetOrder(w, envs)
	historyTargets(w, f, host, order, after)
	// Each target's live hosts once, not once an assignment: History of
	// the assignments some host has not reported compares every
	// assignment with it (16,000 subqueries at 10,000 hosts).
	targets := `SELECT t.id, ` + order.rank("env.name") + ` AS erank, env.name AS env, ws.name AS ws, app.name AS app, wl.name AS wl, t.name,
			` + targetTotal(w, host) + ` AS total
		FROM targets t` + targetJoins + ` WHERE ` + w.sql() + ` ORDER BY ` + order.by()
	aw := &where{args: w.args}
	if !f.Since.IsZero() {
		aw.add("a.assigned_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		aw.add("a.assigned_at <= ?", f.Until.UTC())
	}
	if after != nil {
		aw.add("(t.id <> ? OR (a.assigned_at, a.id) < (?, ?))", after.Target.ID, after.AssignedAt, after.ID)
	}
	cols, outcomes := outcomeColumns(host), `
		LEFT JOIN assignment_outcomes o ON o.assignment_id = a.id`
	if host != nil {
		outcomes = host.outcomesJoin(aw)
	}
	// Whether a host is in the status is known once the outcome is.
	statusCond := map[string]string{"": "TRUE", "success": "success > 0", "failure": "failure > 0", "in_progress": "in_progress > 0",
		StatusNotReported: "total > success + failure + in_progress"}[f.Status]
	switch f.Status {
	case "success", "failure", "in_progress": // the outcome's columns
		if host == nil {
			// On the maintained outcome itself, where the planner has
			// its statistics: on the computed column it took a third of
			// the assignments to pass, and hashed and sorted them all
			// even when most do (`success`: 30 ms for a 1,000-row page
			// at 10,000 hosts, 8 ms so).
			outcomes, statusCond = `
		JOIN assignment_outcomes o ON o.assignment_id = a.id AND o.`+f.Status+` > 0`, "TRUE"
		}
	}
	return store.Collect(ctx, s.st.Read(), `SELECT aid, tid, env, ws, app, wl, target, version, commit_sha, assigned_at, build_time,
			success, failure, in_progress, first_success_at, last_success_at, first_failure_at, total
		FROM (SELECT a.id AS aid, t.id AS tid, t.env, t.ws, t.app, t.wl, t.name AS target,
			v.version, COALESCE(a.commit_sha, '') AS commit_sha, a.assigned_at, v.build_time, `+cols+`, t.total, t.erank
		FROM (`+targets+`) t
		JOIN assignments a ON a.target_id = t.id
		JOIN workload_versions v ON v.id = a.version_id`+outcomes+`
		WHERE `+aw.sql()+`) x
		WHERE `+statusCond+`
		ORDER BY erank, env, ws, app, wl, target, tid, assigned_at DESC, aid DESC LIMIT `+strconv.Itoa(limit), aw.args, scanAssignmentRow)
}

// DefaultDORAWindow is the time range of DORA metrics when none is given.
const DefaultDORAWindow = 30 * 24 * time.Hour

// doraKey is the sort key of DORA rows: workspace, application, workload,
// environment in promotion order.
type doraKey struct{ Ws, App, Wl, Env string }

// compareDORAKeys orders DORA rows, with order's environment places.
func compareDORAKeys(order targetOrder, a, b doraKey) int {
	return cmp.Or(cmp.Compare(a.Ws, b.Ws), cmp.Compare(a.App, b.App), cmp.Compare(a.Wl, b.Wl),
		cmp.Compare(order.of(a.Env), order.of(b.Env)), cmp.Compare(a.Env, b.Env))
}

// DORA computes the four DORA metrics per workload and environment over
// Since..Until (default: the last 30 days). A deployment is an assignment;
// it succeeded when every host of its target reached success (with Host:
// when that host did). Status does not apply: the metrics count every
// status. Pages follow (workspace, application, workload, environment in
// promotion order).
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
	q := s.st.Read()

	// The page's (workload, environment) groups with an assignment in the
	// range (by the targets' assignments index), then their targets, each
	// with its names and live hosts: the names once a target, not once an
	// assignment.
	host, err := s.hostReconcilers(ctx, f.Host)
	if err != nil || host.none() {
		return []DORARow{}, "", err
	}
	w := &where{}
	w.targetFilter(f)
	if host != nil {
		w.conds = append(w.conds, host.onTarget(w))
	}
	// A target has an assignment in the range when its first one from the
	// range's start is not after its end: one probe of the targets'
	// assignments index each. As EXISTS, PostgreSQL's generic plan hashed
	// every assignment instead (16,000 at 10,000 hosts: 5.4 ms of 10).
	w.add("(SELECT min(ga.assigned_at) FROM assignments ga WHERE ga.target_id = t.id AND ga.assigned_at >= ?) <= ?", since.UTC(), until.UTC())
	envs, err := s.Environments(ctx, nil)
	if err != nil {
		return nil, "", err
	}
	order := newTargetOrder(w, envs)
	if hasAfter {
		w.add("(ws.name, app.name, wl.name, "+order.rank("env.name")+", env.name) > (?, ?, ?, ?, ?)",
			after.Ws, after.App, after.Wl, order.of(after.Env), after.Env)
	}
	// A group's targets pass the filter's workspace, application, workload
	// and environment as the group does: only the target's own conditions
	// are left.
	tw := &where{args: w.args}
	if f.Target != "" {
		tw.add("t.name = ?", f.Target)
	}
	if host != nil {
		tw.conds = append(tw.conds, host.onTarget(tw))
	}
	total := targetTotal(tw, host)
	targets := map[int64]*doraTarget{}
	var tids []int64
	err = collectEach(ctx, q, `SELECT g.ws, g.app, g.wl, g.env, t.id, `+total+`
		FROM (SELECT DISTINCT ws.name AS ws, app.name AS app, wl.name AS wl, `+order.rank("env.name")+` AS erank, env.name AS env,
				wl.id AS wid, env.id AS eid
			FROM targets t`+targetJoins+`
			WHERE `+w.sql()+`
			ORDER BY ws, app, wl, erank, env LIMIT `+strconv.Itoa(limit+1)+`
		) g JOIN targets t ON t.workload_id = g.wid AND t.environment_id = g.eid
		WHERE `+tw.sql(), tw.args, func(r store.Row) error {
		t := &doraTarget{}
		if err := r.Scan(&t.key.Ws, &t.key.App, &t.key.Wl, &t.key.Env, &t.id, &t.total); err != nil {
			return err
		}
		targets[t.id] = t
		tids = append(tids, t.id)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	// Their assignments from the range on (later ones may restore a
	// failure), with outcomes: ids, times and counts alone.
	slices.Sort(tids)
	// Each target's assignments arrive together, in time order, and are
	// counted into its group as they do: a target's first one says
	// whether it has one in the range (so its group is listed).
	accs := map[doraKey]*doraAcc{}
	listed := map[doraKey]bool{}
	var cur []doraAssignment // the current target's, reused
	flush := func() {
		if len(cur) == 0 {
			return
		}
		t := targets[cur[0].tid]
		if !cur[0].assignedAt.After(until) {
			listed[t.key] = true
		}
		acc := accs[t.key]
		if acc == nil {
			acc = &doraAcc{}
			accs[t.key] = acc
		}
		acc.add(cur, t.total, until)
		cur = cur[:0]
	}
	engine := s.st.Engine()
	for chunk := range slices.Chunk(tids, 1000) {
		var a store.Args
		join, outcome := `
			LEFT JOIN assignment_outcomes o ON o.assignment_id = a.id`, `COALESCE(o.success, 0), o.last_success_at, o.first_failure_at`
		if host != nil {
			hw := &where{args: a}
			join = host.outcomesJoin(hw)
			a, outcome = hw.args, `COALESCE(ho.success, 0), ho.last_success_at, ho.first_failure_at`
		}
		from := a.Bind(since.UTC())
		err := collectEach(ctx, q, `SELECT a.target_id, a.assigned_at, v.build_time, `+outcome+`
			FROM assignments a JOIN workload_versions v ON v.id = a.version_id`+join+`
			WHERE `+store.In(engine, &a, "a.target_id", chunk)+` AND a.assigned_at >= `+from+`
			ORDER BY a.target_id, a.assigned_at, a.id`, a, func(r store.Row) error {
			var x doraAssignment
			if err := r.Scan(&x.tid, &x.assignedAt, &x.buildTime, &x.success, &x.lastSuccess, &x.firstFailure); err != nil {
				return err
			}
			if len(cur) > 0 && cur[0].tid != x.tid {
				flush()
			}
			cur = append(cur, x)
			return nil
		})
		if err != nil {
			return nil, "", err
		}
		flush()
	}
	// The listed groups in order; one more than the page says there is a
	// next.
	groups := slices.SortedFunc(maps.Keys(listed), func(a, b doraKey) int { return compareDORAKeys(order, a, b) })
	if len(groups) == 0 {
		return []DORARow{}, "", nil
	}
	next := ""
	if len(groups) > limit {
		groups = groups[:limit]
		next = encodeCursor("dora", groups[limit-1])
	}
	days := until.Sub(since).Hours() / 24
	rows := make([]DORARow, 0, len(groups))
	for _, k := range groups {
		c := accs[k]
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
	return rows, next, nil
}

// doraTarget is a target of a DORA page: its group and live hosts (with a
// host filter: whether it is that host's).
type doraTarget struct {
	id    int64
	key   doraKey
	total int
}

// doraAssignment is what DORA reads of an assignment: its target, times
// and how many of the target's hosts succeeded.
type doraAssignment struct {
	tid                                  int64
	assignedAt                           time.Time
	buildTime, lastSuccess, firstFailure *time.Time
	success                              int
}

// doraAcc accumulates a group's DORA metrics.
type doraAcc struct {
	deployments, changes, failed int
	lead, restore                []float64
}

// add counts a target's assignments up to until (as: in time order, from
// the range's start on; total: the target's live hosts).
func (c *doraAcc) add(as []doraAssignment, total int, until time.Time) {
	allSucceeded := func(a doraAssignment) bool { return total > 0 && a.success == total }
	for _, a := range as {
		if a.assignedAt.After(until) {
			continue
		}
		c.changes++
		if allSucceeded(a) {
			c.deployments++
			if a.buildTime != nil {
				c.lead = append(c.lead, a.lastSuccess.Sub(*a.buildTime).Seconds())
			}
		}
		if a.firstFailure != nil {
			c.failed++
			// Restored when this or a later assignment of the target last
			// reached success on every host after the failure.
			for _, later := range as {
				if later.assignedAt.Before(a.assignedAt) {
					continue
				}
				if allSucceeded(later) && later.lastSuccess.After(*a.firstFailure) {
					c.restore = append(c.restore, later.lastSuccess.Sub(*a.firstFailure).Seconds())
					break
				}
			}
		}
	}
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
		var a store.Args
		rows, err := store.Collect(ctx, s.st.Read(), `SELECT a.id, `+outcomeColumns(nil)+`, `+targetTotal(&where{}, nil)+` FROM assignments a JOIN targets t ON t.id = a.target_id
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
