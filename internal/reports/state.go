package reports

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// liveFrom is every live reconciler (r), including those registered but
// not reported yet, with its host (h) and each target (t) on the endpoint
// it applies. What a row shows besides is joined to the page alone
// (pageJoins).
const liveFrom = `
	FROM reconcilers r
	JOIN hosts h ON h.id = r.host_id
	JOIN targets t ON t.endpoint_id = r.endpoint_id`

// liveInEnvironment is liveFrom for the hosts of one environment (he), in
// host name order (he.host_order, h.name): a page reads its own hosts
// instead of every host that sorts before them.
const liveInEnvironment = `
	FROM host_environments he
	JOIN hosts h ON h.id = he.host_id
	JOIN reconcilers r ON r.host_id = h.id
	JOIN targets t ON t.endpoint_id = r.endpoint_id AND t.environment_id = he.environment_id`

// pageJoins joins to a page of host-target rows (p) how each row's commit
// resolves for its target (res; the version: deployedVersionSQL), the
// target's scheduled version (sa, sv) and the reconciler's current
// deployment (d).
const pageJoins = `
	LEFT JOIN resolutions res ON res.target_id = p.target_id AND res.sha = p.commit_sha
	LEFT JOIN assignments sa ON sa.id = p.scheduled_assignment_id
	LEFT JOIN workload_versions sv ON sv.id = sa.version_id
	LEFT JOIN deployments d ON d.id = p.current_deployment_id`

// deployedVersionSQL is the version of the assignment a commit resolves to
// (res), "" when unknown: the scheduled version (sv) when it is the
// scheduled assignment (the column scheduled), as it is for most hosts,
// else looked up.
func deployedVersionSQL(scheduled string) string {
	return `COALESCE(CASE WHEN res.assignment_id = ` + scheduled + ` THEN sv.version
	ELSE (SELECT v.version FROM workload_versions v WHERE v.id = res.version_id) END, '')`
}

// Host names have any length, so no index orders them whole: hosts are
// ordered by an indexed prefix, then by the whole name (the same order,
// since a prefix sorts as the name does), so that a page of Host State
// reads its hosts by index instead of sorting every reconciler.
const (
	hostOrderPrefix = "substr(h.name, 1, 512)"
	hostOrder       = hostOrderPrefix + ", h.name"
)

// liveFilter filters live host-target rows (liveFrom); joins are the
// joins its conditions need besides.
func liveFilter(f Filter) (w *where, joins string) {
	w = reconcilerFilter(f)
	w.targetFilter(f)
	return w, filterJoins(f)
}

// filterJoins joins to a target (t) the names targetFilter compares
// besides the target's own columns: its workload (wl) and application
// (app), for a workload-level filter. Asked as a workload id in a
// subquery instead, one workload's page of Host State took 33 ms instead
// of 1.3 ms at 1,000 hosts. Reports that show the names read them apart
// (namesOf).
func filterJoins(f Filter) string {
	if f.Workspace == "" && f.Application == "" && f.Workload == "" {
		return ""
	}
	return `
	JOIN workloads wl ON wl.id = t.workload_id
	JOIN applications app ON app.id = wl.application_id`
}

// reconcilerFilter filters live reconcilers (r), including those registered
// but not reported yet, by host (h), status and the time they reached it
// (for one not reported yet: when it was registered).
func reconcilerFilter(f Filter) *where {
	return reconcilerFilterOn(&where{}, f)
}

// reconcilerFilterOn adds reconcilerFilter's conditions to w.
func reconcilerFilterOn(w *where, f Filter) *where {
	w.add("r.retired_at IS NULL")
	if f.Host != "" {
		w.add("h.name = ?", f.Host)
	}
	if f.Status != "" {
		w.conds = append(w.conds, statusIs(w, "r.status", f.Status))
	}
	if !f.Since.IsZero() {
		w.add(store.StatusTime+" >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		w.add(store.StatusTime+" <= ?", f.Until.UTC())
	}
	return w
}

// EnvironmentState lists, per target, the scheduled version and one row per
// (deployed version, status) with its host count. Targets that no host
// reconciles have one row with no hosts, unless the filter names a host,
// a status or a time range. Pages hold whole targets, by key.
//
// It reads the maintained host counts (endpoint_counts): its cost grows
// with the targets of the page, not with hosts or history. A host or time
// filter reads those hosts' reconcilers instead.
func (s *Service) EnvironmentState(ctx context.Context, f Filter, p Page) ([]EnvironmentStateRow, string, error) {
	var after targetKey
	hasAfter, err := decodeCursor("environment-state", p.Cursor, &after)
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	envs, err := s.Environments(ctx, nil)
	if err != nil {
		return nil, "", err
	}
	changed, err := s.endpointsChanged(ctx, f)
	if err != nil {
		return nil, "", err
	}
	w := targetsOf(f, changed)
	order := newTargetOrder(w, envs)
	if hasAfter {
		w.conds = append(w.conds, order.after(w, after))
	}
	targets, err := s.targetStates(ctx, f, changed, w, order, limit+1)
	if err != nil {
		return nil, "", err
	}
	more := len(targets) > limit
	if more {
		targets = targets[:limit]
	}
	// At most limit rows, in whole targets (at least one).
	n := 0
	for _, t := range targets {
		n += len(t.rows)
	}
	var out []EnvironmentStateRow
	if n > 0 {
		out = make([]EnvironmentStateRow, 0, min(n, limit))
	}
	next := ""
	for i, t := range targets {
		if i > 0 && len(out)+len(t.rows) > limit {
			next = encodeCursor("environment-state", targets[i-1].key())
			break
		}
		out = append(out, t.rows...)
		if i == len(targets)-1 && more {
			next = encodeCursor("environment-state", t.key())
		}
	}
	return out, next, nil
}

// targetKey is the sort key of a target (see targetOrder): environment,
// workspace, application, workload, target name, id.
type targetKey struct {
	Env, Ws, App, Wl, Name string
	ID                     int64
}

// pagedTarget is a target of a page with its scheduled version and its
// Environment State rows.
type pagedTarget struct {
	id, endpointID int64
	// workload and environment, read by Discrepancies (which names them)
	workloadID, environmentID int64
	ref                       TargetRef
	scheduled                 *Scheduled
	rows                      []EnvironmentStateRow
}

func (t *pagedTarget) key() targetKey {
	return targetKey{t.ref.Environment, t.ref.Workspace, t.ref.Application, t.ref.Workload, t.ref.Target, t.id}
}

// targetsOf selects the targets a filter names, and, with a host, status or
// time filter, only those with hosts that pass it; changed, when not nil,
// are the only endpoints whose hosts may pass the time filter.
func targetsOf(f Filter, changed *passingEndpoints) *where {
	return targetsOfOn(&where{}, f, changed)
}

// targetsOfOn adds targetsOf's conditions to w.
func targetsOfOn(w *where, f Filter, changed *passingEndpoints) *where {
	w.targetFilter(f)
	switch {
	case f.Host != "" || f.timed():
		if changed != nil {
			if len(changed.ids) == 0 {
				w.conds = append(w.conds, "FALSE")
				return w
			}
			if f.Host == "" && changed.certain && len(changed.ids) == changed.endpoints {
				// Every endpoint with hosts has one that passes for certain
				// (a fleet-wide rollout within "the last hour"): a target
				// passes when it has hosts.
				w.conds = append(w.conds, "EXISTS (SELECT 1 FROM endpoint_counts c WHERE c.endpoint_id = t.endpoint_id)")
				return w
			}
			// Within a third of the endpoints, they narrow the targets;
			// beyond, reading every reconciler of the targets in one pass
			// costs less than looking up the endpoints' one by one
			// (Environment State at 10,000 hosts, every endpoint: 62 ms
			// against 121).
			if len(changed.ids) <= changed.endpoints/3 {
				a := store.Args(w.args)
				w.conds = append(w.conds, store.In(changed.engine, &a, "t.endpoint_id", changed.ids))
				w.args = a
				if f.Host == "" && changed.certain {
					return w
				}
			}
		}
		if f.Host == "" {
			w.conds = append(w.conds, timeGroupExists(f, w))
		} else {
			w.conds = append(w.conds, reconcilerExists(f, w))
		}
	case f.Status != "":
		w.conds = append(w.conds, "EXISTS (SELECT 1 FROM endpoint_counts c WHERE c.endpoint_id = t.endpoint_id AND "+statusIs(w, "c.status", f.Status)+")")
	}
	return w
}

// passingEndpoints are the endpoints that may have a live reconciler
// passing a filter's status and time range (endpointsPassing).
type passingEndpoints struct {
	engine string
	ids    []int64
	// reconcilers is how many live reconcilers those endpoints hold
	// (whatever their status), of all in the store; endpoints, how many
	// endpoints have live reconcilers.
	reconcilers, all, endpoints int
	// certain: each of those endpoints has a group that passes as a
	// whole (its status, and bounds within the range), so it has a
	// reconciler that passes.
	certain bool
	// wholly: every group that may pass passes as a whole, so no group
	// needs its reconcilers read (timeFilteredCounts).
	wholly bool
}

// endpointsPassing lists, for a filter with a status or a time range, the
// endpoints with an endpoint_counts group of that status whose bounds
// reach into the range (timeBounds: ingest keeps them, and a group wholly
// outside the range holds no reconciler within it), so that a report
// filtered by status or time ("changed in the last hour") reads the
// reconcilers of those endpoints alone instead of every reconciler of
// every target (PostgreSQL has no index on the status time: one would
// make every status change a non-heap-only update). Nil for a filter
// with neither.
func (s *Service) endpointsPassing(ctx context.Context, f Filter) (*passingEndpoints, error) {
	if f.Status == "" && !f.timed() {
		return nil, nil
	}
	w := &where{}
	may, sure := []string{"TRUE"}, []string{"TRUE"}
	if f.Status != "" {
		status := statusIs(w, "c.status", f.Status)
		may, sure = append(may, status), append(sure, status)
	}
	if f.timed() {
		whole, none := timeBounds(w, f)
		may, sure = append(may, "NOT ("+none+")"), append(sure, whole)
	}
	c := &passingEndpoints{engine: s.st.Engine(), certain: true, wholly: true}
	mays, sures := strings.Join(may, " AND "), strings.Join(sure, " AND ")
	// One pass over the groups, with the totals beside each endpoint.
	err := collectEach(ctx, s.st.Read(), `SELECT endpoint_id, hosts, certain, straddles, total, endpoints FROM (
			SELECT c.endpoint_id, SUM(c.hosts) AS hosts,
				MAX(CASE WHEN `+mays+` THEN 1 ELSE 0 END) AS passes,
				MAX(CASE WHEN `+sures+` THEN 1 ELSE 0 END) AS certain,
				MAX(CASE WHEN (`+mays+`) AND NOT (`+sures+`) THEN 1 ELSE 0 END) AS straddles,
				SUM(SUM(c.hosts)) OVER () AS total, COUNT(*) OVER () AS endpoints
			FROM endpoint_counts c GROUP BY c.endpoint_id) x
		WHERE passes = 1 ORDER BY endpoint_id`,
		w.args, func(r store.Row) error {
			var id int64
			var n, certain, straddles int
			err := r.Scan(&id, &n, &certain, &straddles, &c.all, &c.endpoints)
			c.ids, c.reconcilers = append(c.ids, id), c.reconcilers+n
			c.certain, c.wholly = c.certain && certain == 1, c.wholly && straddles == 0
			return err
		})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// endpointsChanged is endpointsPassing for a filter with a time range,
// nil for one without.
func (s *Service) endpointsChanged(ctx context.Context, f Filter) (*passingEndpoints, error) {
	if !f.timed() {
		return nil, nil
	}
	return s.endpointsPassing(ctx, f)
}

// fewerThanWalk says whether reading and sorting every live reconciler of
// the endpoints costs less than walking the hosts in name order until
// limit rows pass, for a page of limit host-target rows. The walk reads
// about limit × all / passing reconcilers, at best limit × all /
// reconcilers; reading the endpoints' reads reconcilers: the walk costs
// less once reconcilers² > limit × all (at 10,000 hosts, a page of 1,000:
// beyond 10,000 reconcilers).
func (c *passingEndpoints) fewerThanWalk(limit int) bool {
	if limit <= 0 {
		return true
	}
	return float64(c.reconcilers)*float64(c.reconcilers) <= float64(limit)*float64(c.all)
}

// reconcilerExists is a condition that a live reconciler of the target's
// endpoint passes the filter's host, status and time conditions.
func reconcilerExists(f Filter, w *where) string {
	cond := "EXISTS (SELECT 1 FROM reconcilers r WHERE r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL"
	if f.Host != "" {
		cond += " AND " + w.bind("r.host_id = (SELECT id FROM hosts WHERE name = ?)", f.Host)
	}
	if f.Status != "" {
		cond += " AND " + statusIs(w, "r.status", f.Status)
	}
	if !f.Since.IsZero() {
		cond += " AND " + w.bind(store.StatusTime+" >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		cond += " AND " + w.bind(store.StatusTime+" <= ?", f.Until.UTC())
	}
	return cond + ")"
}

// targetStates reads, in one query, the targets w selects (in order, at
// most limit; 0: all) and their hosts grouped by deployed version and
// status: from the maintained counts, or, with a host or time filter, from
// those hosts' reconcilers. A target without hosts (in the filter) has
// one row with no hosts, unless the filter names a host, status or time.
func (s *Service) targetStates(ctx context.Context, f Filter, changed *passingEndpoints, w *where, order targetOrder, limit int) ([]pagedTarget, error) {
	// The page first, then its scheduled assignments (not every target's).
	page := `SELECT t.id AS tid, t.endpoint_id AS eid, t.scheduled_assignment_id AS said, ` + order.rank("env.name") + ` AS erank,
			env.name AS env, ws.name AS ws, app.name AS app, wl.name AS wl, t.name AS tname
		FROM targets t` + targetJoins + `
		WHERE ` + w.sql() + ` ORDER BY ` + order.by()
	if limit > 0 {
		page += ` LIMIT ` + strconv.Itoa(limit)
	}
	return s.readTargetStates(ctx, f, changed, w.args, page, `p.env, p.ws, p.app, p.wl, p.tname`, `p.erank, p.env, p.ws, p.app, p.wl, p.tname, p.tid`,
		func(t *pagedTarget) []any {
			return []any{&t.ref.Environment, &t.ref.Workspace, &t.ref.Application, &t.ref.Workload, &t.ref.Target}
		}, func(*pagedTarget) {})
}

// readTargetStates reads the targets of page (a query of their id tid,
// endpoint eid and scheduled assignment said, with args) and their hosts
// grouped by deployed version and status (see targetStates), in order;
// cols are the page's further columns, read into dests of each target,
// and named is called on each target once they are read. changed is
// endpointsChanged(f).
func (s *Service) readTargetStates(ctx context.Context, f Filter, changed *passingEndpoints, args []any, page, cols, order string,
	dests func(*pagedTarget) []any, named func(*pagedTarget)) ([]pagedTarget, error) {
	cw := &where{args: args}
	countsOn := func(counts string) string { return `LEFT JOIN ` + counts + ` c ON c.endpoint_id = p.eid` }
	var join string
	switch {
	case f.Host == "" && f.timed():
		join = timeFilteredCounts(cw, f, s.st.Engine(), changed != nil && changed.wholly)
	case f.Host != "":
		rw := reconcilerFilterOn(&where{args: cw.args}, f)
		cw.args = rw.args
		join = countsOn(`(SELECT r.endpoint_id, r.commit_sha, r.status, count(*) AS hosts FROM reconcilers r JOIN hosts h ON h.id = r.host_id
			WHERE r.endpoint_id IN (SELECT eid FROM page) AND ` + rw.sql() + ` GROUP BY r.endpoint_id, r.commit_sha, r.status)`)
	case f.Status != "":
		join = countsOn("(SELECT * FROM endpoint_counts WHERE " + statusIs(cw, "status", f.Status) + ")")
	default:
		join = countsOn("endpoint_counts")
	}
	var targets []pagedTarget
	// The targets' rows, one after the other: target i's from first[i] on.
	var all []EnvironmentStateRow
	var first []int
	// One row a target and counted (commit, status), in the target's order:
	// the deployed commit's version is the scheduled one's when it
	// resolves to the scheduled assignment (most hosts), else looked up.
	// The rows are grouped by version here, as they come.
	var (
		cur             pagedTarget
		sched           Scheduled
		at              *time.Time
		counted, hosts  int
		known           bool
		status, version string
	)
	dst := append(append([]any{&cur.id, &cur.endpointID}, dests(&cur)...), &sched.Version, &sched.Commit, &at, &counted, &status, &hosts, &known, &version)
	err := collectEach(ctx, s.st.Read(), `WITH page AS (`+page+`)
		SELECT p.tid, p.eid, `+cols+`, COALESCE(sv.version, ''), COALESCE(sa.commit_sha, ''), sa.assigned_at,
			CASE WHEN c.endpoint_id IS NULL THEN 0 ELSE 1 END, COALESCE(c.status, ''), COALESCE(c.hosts, 0), res.assignment_id IS NOT NULL,
			`+deployedVersionSQL("p.said")+`
		FROM page p
		LEFT JOIN assignments sa ON sa.id = p.said
		LEFT JOIN workload_versions sv ON sv.id = sa.version_id
		`+join+`
		`+pageResolutions(s.st.Engine())+`
		ORDER BY `+order, cw.args, func(r store.Row) error {
		if err := r.Scan(dst...); err != nil {
			return err
		}
		if n := len(targets); n == 0 || targets[n-1].id != cur.id {
			targets = append(targets, cur)
			t := &targets[n]
			named(t)
			if at != nil {
				s := sched
				s.AssignedAt = at.UTC()
				t.scheduled = &s
			}
			first = append(first, len(all))
		}
		if counted == 0 {
			return nil
		}
		status := shownStatus(status)
		for i := first[len(first)-1]; i < len(all); i++ {
			if r := &all[i]; r.DeployedVersion == version && r.DeployedKnown == known && r.Status == status {
				r.Hosts += hosts
				return nil
			}
		}
		all = append(all, EnvironmentStateRow{DeployedVersion: version, DeployedKnown: known, Status: status, Hosts: hosts})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range targets {
		t := &targets[i]
		end := len(all)
		if i+1 < len(first) {
			end = first[i+1]
		}
		t.rows = targetRows(f, t.ref, t.scheduled, all[first[i]:end:end])
	}
	return targets, nil
}

// pageResolutions joins to each counted group (c) of a page's target (p)
// the assignment its commit resolves to (res). On PostgreSQL one index
// probe a row, whatever the planner guesses of the counted groups: after
// a time filter's counts it hashed every resolution instead (400,000 of a
// long history: 80 ms of a 90 ms page).
func pageResolutions(engine string) string {
	if engine == "postgres" {
		return `LEFT JOIN LATERAL (SELECT assignment_id, version_id FROM resolutions WHERE target_id = p.tid AND sha = c.commit_sha OFFSET 0) res ON TRUE`
	}
	return `LEFT JOIN resolutions res ON res.target_id = p.tid AND res.sha = c.commit_sha`
}

// timeFilteredCounts joins to the page (p) its hosts by endpoint, commit
// and status (c) whose status time passes the filter's time range (and
// status), from the bounds endpoint_counts keeps of each group's times
// (timeBounds): a group whose bounds lie within the range counts as it
// is, one whose bounds lie outside it counts nothing, and only the
// reconcilers of the groups in between are read. After a fleet-wide
// rollout, "changed in the last hour" then reads each group once instead
// of every reconciler; wholly (no group of the store lies in between: see
// passingEndpoints) joins the groups within the range alone, as the
// unfiltered report joins every group.
func timeFilteredCounts(w *where, f Filter, engine string, wholly bool) string {
	groups := "c.endpoint_id IN (SELECT eid FROM page)"
	if engine == "postgres" {
		groups = "c.endpoint_id = p.eid"
	}
	if f.Status != "" {
		groups += " AND " + statusIs(w, "c.status", f.Status)
	}
	whole, none := timeBounds(w, f)
	counts := `SELECT c.endpoint_id, c.commit_sha, c.status, c.hosts FROM endpoint_counts c WHERE ` + groups + ` AND ` + whole
	if !wholly {
		// The groups in between count their reconcilers one group at a
		// time (a join let the planner scan every reconciler for them),
		// once: PostgreSQL would pull the count up into both the filter
		// and the output and count each group twice (OFFSET 0 keeps it
		// in place).
		fence := ""
		if engine == "postgres" {
			fence = " OFFSET 0"
		}
		counts += `
		UNION ALL
		SELECT * FROM (SELECT c.endpoint_id, c.commit_sha, c.status, (SELECT count(*) ` + passingInGroup(w, f) + `) AS hosts
			FROM endpoint_counts c WHERE ` + groups + ` AND NOT (` + whole + `) AND NOT (` + none + `)` + fence + `) partial
		WHERE hosts > 0`
	}
	if engine == "postgres" {
		// Each target's groups by index, whatever the planner guesses of
		// the bounds (a third of the groups pass, by default): joined to
		// the page as a whole, one such guess compared every target with
		// every counted group (1,001 × 1,001 at 10,000 hosts: 110 ms).
		return `LEFT JOIN LATERAL (` + counts + `) c ON TRUE`
	}
	return `LEFT JOIN (` + counts + `) c ON c.endpoint_id = p.eid`
}

// timeBounds is when an endpoint_counts group (c) lies within the filter's
// time range as a whole (every reconciler's status time within it: whole)
// and when wholly outside it (none), from the group's bounds: earliest
// status time and latest change time, never after a status time. The
// filter has Since or Until.
func timeBounds(w *where, f Filter) (whole, none string) {
	var within, outside []string
	if !f.Since.IsZero() {
		since := w.bind("?", f.Since.UTC())
		within, outside = append(within, "c.earliest_since >= "+since), append(outside, "c.latest_since < "+since)
	}
	if !f.Until.IsZero() {
		until := w.bind("?", f.Until.UTC())
		within, outside = append(within, "c.latest_since <= "+until), append(outside, "c.earliest_since > "+until)
	}
	return strings.Join(within, " AND "), strings.Join(outside, " OR ")
}

// timeGroupExists is a condition that the target (t) has a host whose
// status time passes the filter's time range (and status), decided from
// the groups' bounds (timeBounds) and, for a group in between, its
// reconcilers until one passes. A subquery with LIMIT is run per target,
// group by group: PostgreSQL turned the EXISTS over reconcilers into a
// semi-join that read every reconciler of the fleet (21 of the 31 ms of
// "changed in the last hour" at 2,000 hosts).
func timeGroupExists(f Filter, w *where) string {
	cond := "c.endpoint_id = t.endpoint_id"
	if f.Status != "" {
		cond += " AND " + statusIs(w, "c.status", f.Status)
	}
	whole, none := timeBounds(w, f)
	return `(SELECT 1 FROM endpoint_counts c WHERE ` + cond + ` AND NOT (` + none + `) AND (` + whole + ` OR EXISTS (
		SELECT 1 ` + passingInGroup(w, f) + `))
		LIMIT 1) IS NOT NULL`
}

// passingInGroup is the live reconcilers of an endpoint_counts group (c)
// whose status time passes the filter (FROM … WHERE …): what a group in
// between its time bounds counts, and what makes its target listed.
func passingInGroup(w *where, f Filter) string {
	rw := reconcilerFilterOn(&where{args: w.args}, f)
	w.args = rw.args
	return `FROM reconcilers r WHERE r.endpoint_id = c.endpoint_id AND r.commit_sha = c.commit_sha AND r.status = c.status AND ` + rw.sql()
}

// targetRows completes a target's Environment State rows (its hosts
// grouped by deployed version and status): the target and its schedule on
// each, whether each is up to date, most hosts first. A target without
// hosts has one row with none, unless the filter names a host, status or
// time (then it has no rows).
func targetRows(f Filter, ref TargetRef, scheduled *Scheduled, rs []EnvironmentStateRow) []EnvironmentStateRow {
	for i := range rs {
		r := &rs[i]
		r.TargetRef, r.Scheduled = ref, scheduled
		r.UpToDate = r.DeployedKnown && scheduled != nil && r.DeployedVersion == scheduled.Version
	}
	slices.SortFunc(rs, func(a, b EnvironmentStateRow) int {
		return cmp.Or(-cmp.Compare(a.Hosts, b.Hosts), cmp.Compare(a.DeployedVersion, b.DeployedVersion), cmp.Compare(a.Status, b.Status))
	})
	if len(rs) == 0 && f.Host == "" && f.Status == "" && !f.timed() {
		rs = []EnvironmentStateRow{{TargetRef: ref, Scheduled: scheduled}}
	}
	return rs
}

// assignmentAt selects cols (of a) of the assignment scheduled on target
// (a column) at the time (a bound placeholder): its latest assignment by
// then.
func assignmentAt(cols, target, at string) string {
	return `SELECT ` + cols + ` FROM assignments a WHERE a.target_id = ` + target + ` AND a.assigned_at <= ` + at + `
			ORDER BY a.assigned_at DESC, a.id DESC LIMIT 1`
}

// hostRow is a HostStateRow with what Drift needs besides.
type hostRow struct {
	HostStateRow
	FirstSeen   time.Time
	ScheduledAt *time.Time
	HasSchedule bool
}

// hostRows reads live host-target rows in (host, reconciler, target) order.
// after, when set, is the keyset cursor (host, reconciler, target id).
// passing is endpointsPassing(f), read once by the caller for all its
// batches.
func (s *Service) hostRows(ctx context.Context, f Filter, passing *passingEndpoints, limit int, after *hostKey) ([]hostRow, []hostKey, error) {
	w, joins := liveFilter(f)
	narrowed := passing != nil && passing.fewerThanWalk(limit)
	if narrowed {
		if len(passing.ids) == 0 {
			return nil, nil, nil
		}
		a := store.Args(w.args)
		w.conds = append(w.conds, store.In(passing.engine, &a, "r.endpoint_id", passing.ids))
		w.args = a
	}
	// The rows' keys and what they need of the reconciler, host and
	// target; pageJoins joins the rest.
	const cols = `h.name AS host_name, h.type, r.name AS reconciler_name, t.workload_id, t.environment_id, t.name, t.id AS target_id,
			t.scheduled_assignment_id, r.commit_sha, r.status, ` + store.StatusTime + ` AS status_time, r.last_report_at, r.created_at,
			r.current_deployment_id`
	// After the cursor's host, then its reconciler and target.
	afterHost := func(w *where) {
		w.add("(h.name > ? OR (h.name = ? AND (r.name > ? OR (r.name = ? AND t.id > ?))))",
			after.Host, after.Host, after.Reconciler, after.Reconciler, after.TargetID)
	}
	// Each case walks hosts in name order (host_order, host_name), except
	// the default one when the filter narrows the rows to some targets or
	// endpoints: then the planner reads those rows and sorts them.
	var from string
	walks := true
	switch {
	case f.Environment != "" && f.Host == "" && s.st.Engine() == "postgres":
		// One environment's hosts in order, each host's rows read apart
		// (OFFSET 0 keeps the subquery from being merged into the join):
		// joined flat, PostgreSQL underestimates an environment's rows
		// (it takes the reconcilers' targets as spread over every
		// environment) and, for a page near that estimate, hashed and
		// sorted every reconciler of the environment (47 ms for 5,000 at
		// 2,000 hosts, against 15 ms reading the page's hosts).
		// The environment and the cursor's host order bound the walk
		// over he (outside); the rest filters each host's rows (inside).
		hosts := w.bind(environmentIs("he", "?"), f.Environment)
		if after != nil {
			hosts += " AND " + w.bind("he.host_order >= substr(?, 1, 512)", after.Host)
			afterHost(w)
		}
		from = `SELECT he.host_order, x.* FROM host_environments he
		CROSS JOIN LATERAL (SELECT ` + cols + `
			FROM hosts h
			JOIN reconcilers r ON r.host_id = h.id
			JOIN targets t ON t.endpoint_id = r.endpoint_id` + joins + `
			WHERE h.id = he.host_id AND ` + w.sql() + ` OFFSET 0) x
		WHERE ` + hosts
	case f.Environment != "" && f.Host == "":
		w.add(environmentIs("he", "?"), f.Environment)
		if after != nil {
			w.add("he.host_order >= substr(?, 1, 512)", after.Host)
			afterHost(w)
		}
		from = `SELECT he.host_order, ` + cols + liveInEnvironment + joins + `
		WHERE ` + w.sql()
	default:
		if after != nil {
			w.add(hostOrderPrefix+" >= substr(?, 1, 512)", after.Host)
			afterHost(w)
		}
		from = `SELECT ` + hostOrderPrefix + ` AS host_order, ` + cols + liveFrom + joins + `
		WHERE ` + w.sql()
		walks = f.Host != "" || (joins == "" && !narrowed)
	}
	const order = ` ORDER BY p.host_order, p.host_name, p.reconciler_name, p.target_id`
	page := ""
	if limit > 0 {
		page = " LIMIT " + strconv.Itoa(limit)
	}
	if !walks {
		// The page first, from the rows alone, and what they show
		// besides joined to its rows only: joined to every row the
		// filter passes, one workspace's page (5,000 reconcilers at
		// 10,000 hosts) hashed every resolution and assignment for them,
		// 47 ms instead of 24. A walk streams its rows as it finds them,
		// so it joins them as it goes.
		from = `SELECT * FROM (` + from + `) p` + order + page
	}
	q := `SELECT p.host_name, p.type, p.reconciler_name, p.workload_id, p.environment_id, p.name, p.target_id,
			` + deployedVersionSQL("p.scheduled_assignment_id") + `, CASE WHEN res.assignment_id IS NULL THEN 0 ELSE 1 END,
			p.commit_sha, p.status, COALESCE(d.message, ''), COALESCE(d.message_bytes, 0), p.status_time,
			p.last_report_at, COALESCE(d.first_seen, p.created_at),
			COALESCE(sv.version, ''), sa.assigned_at
		FROM (` + from + `) p` + pageJoins + order + page
	db := s.st.Read()
	rows, err := db.Query(ctx, q, w.args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	// A page fills up to its limit: sized once, not grown by copying.
	n := max(limit, 0)
	out, keys, wids, envIDs := make([]hostRow, 0, n), make([]hostKey, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	for rows.Next() {
		var h hostRow
		var k hostKey
		var known int
		var wid, envID int64
		if err := rows.Scan(&h.Host, &h.HostType, &h.Reconciler, &wid, &envID, &h.Target, &k.TargetID,
			&h.Version, &known, &h.Commit, &h.Status, &h.Message, &h.MessageBytes, &h.StatusSince, &h.LastReportAt, &h.FirstSeen,
			&h.Scheduled, &h.ScheduledAt); err != nil {
			return nil, nil, err
		}
		wids, envIDs = append(wids, wid), append(envIDs, envID)
		h.Status = shownStatus(h.Status)
		h.StatusSince, h.LastReportAt, h.FirstSeen = h.StatusSince.UTC(), h.LastReportAt.UTC(), h.FirstSeen.UTC()
		h.VersionKnown = known == 1
		h.HasSchedule = h.ScheduledAt != nil
		h.UpToDate = h.VersionKnown && h.HasSchedule && h.Version == h.Scheduled
		k.Host, k.Reconciler = h.Host, h.Reconciler
		out = append(out, h)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows.Close()
	workloads, envs, err := s.namesOf(ctx, db, wids)
	if err != nil {
		return nil, nil, err
	}
	for i := range out {
		wl := workloads[wids[i]]
		out[i].Workspace, out[i].Application, out[i].Workload, out[i].Environment = wl.Workspace, wl.Application, wl.Workload, envs[envIDs[i]]
	}
	return out, keys, nil
}

// namesOf reads the names of workloads (by id) and of every environment:
// one small query, instead of joining the names to every row of a report.
func (s *Service) namesOf(ctx context.Context, db store.Querier, wids []int64) (map[int64]WorkloadRef, map[int64]string, error) {
	workloads := map[int64]WorkloadRef{}
	envs := map[int64]string{}
	ids := slices.Compact(slices.Sorted(slices.Values(wids)))
	if len(ids) == 0 {
		return workloads, envs, nil
	}
	var a store.Args
	err := collectEach(ctx, db, `SELECT 0, wl.id, ws.name, app.name, wl.name FROM workloads wl
			JOIN applications app ON app.id = wl.application_id JOIN workspaces ws ON ws.id = app.workspace_id
			WHERE `+store.In(s.st.Engine(), &a, "wl.id", ids)+`
		UNION ALL SELECT 1, id, name, '', '' FROM environments`, a, func(r store.Row) error {
		var kind int
		var id int64
		var name, application, workload string // an environment's row has its name alone
		if err := r.Scan(&kind, &id, &name, &application, &workload); err != nil {
			return err
		}
		if kind == 0 {
			workloads[id] = WorkloadRef{Workspace: name, Application: application, Workload: workload}
		} else {
			envs[id] = name
		}
		return nil
	})
	return workloads, envs, err
}

// HostState lists what each host deploys for each target, by host. It pages
// by key, so it stays fast at any depth.
func (s *Service) HostState(ctx context.Context, f Filter, p Page) ([]HostStateRow, string, error) {
	after, err := decodeHostKey(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	passing, err := s.endpointsPassing(ctx, f)
	if err != nil {
		return nil, "", err
	}
	rows, keys, err := s.hostRows(ctx, f, passing, limit+1, after)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = keys[limit-1].encode()
	}
	out := make([]HostStateRow, len(rows))
	for i, r := range rows {
		out[i] = r.HostStateRow
	}
	return out, next, nil
}

// Environments lists the environments in the data, in promotion order
// (order, else the Service's default).
func (s *Service) Environments(ctx context.Context, order []string) ([]string, error) {
	rows, err := s.st.Read().Query(ctx, `SELECT name FROM environments`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var envs []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, err
		}
		envs = append(envs, e)
	}
	if len(order) == 0 {
		order = s.promotion
	}
	return OrderEnvironments(envs, order), rows.Err()
}

// Discrepancies is the workloads × environments matrix: per workload and
// environment, the targets' scheduled versions and the deployed versions
// with host counts. Hosts that have not reported yet deploy no version:
// they are not counted, and make no environment differ. Pages hold
// workloads, by key.
func (s *Service) Discrepancies(ctx context.Context, f Filter, order []string, p Page) (Discrepancies, string, error) {
	d, next, _, err := s.discrepancies(ctx, f, order, p)
	return d, next, err
}

// discrepancies is Discrepancies with the page's targets and their
// Environment State rows.
func (s *Service) discrepancies(ctx context.Context, f Filter, order []string, p Page) (Discrepancies, string, []pagedTarget, error) {
	var after workloadKey
	hasAfter, err := decodeCursor("discrepancies", p.Cursor, &after)
	if err != nil {
		return Discrepancies{}, "", nil, err
	}
	q := s.st.Read()
	envNames := map[int64]string{}
	var envs []string
	err = collectEach(ctx, q, `SELECT id, name FROM environments`, nil, func(r store.Row) error {
		var id int64
		var name string
		if err := r.Scan(&id, &name); err != nil {
			return err
		}
		envNames[id] = name
		envs = append(envs, name)
		return nil
	})
	if err != nil {
		return Discrepancies{}, "", nil, err
	}
	if len(order) == 0 {
		order = s.promotion
	}
	envs = OrderEnvironments(envs, order)
	if f.Environment != "" {
		envs = slices.DeleteFunc(envs, func(e string) bool { return e != f.Environment })
	}
	// The page's workloads (those with a target the filter names), then
	// their targets' rows. The workspace, application and workload filters
	// are the workload's; the others, the target's.
	w := &where{}
	w.targetFilter(Filter{Workspace: f.Workspace, Application: f.Application, Workload: f.Workload})
	if hasAfter {
		w.add("(ws.name, app.name, wl.name) > (?, ?, ?)", after.Ws, after.App, after.Wl)
	}
	tf := f
	tf.Workspace, tf.Application, tf.Workload = "", "", ""
	changed, err := s.endpointsChanged(ctx, tf)
	if err != nil {
		return Discrepancies{}, "", nil, err
	}
	tw := targetsOfOn(&where{args: w.args}, tf, changed)
	w.args = tw.args
	w.add("EXISTS (SELECT 1 FROM targets t WHERE t.workload_id = wl.id AND " + tw.sql() + ")")
	limit := p.limit()
	type pagedWorkload struct {
		key workloadKey
		id  int64
	}
	wls, err := store.Collect(ctx, q, `SELECT ws.name, app.name, wl.name, wl.id FROM workloads wl
		JOIN applications app ON app.id = wl.application_id
		JOIN workspaces ws ON ws.id = app.workspace_id
		WHERE `+w.sql()+` ORDER BY ws.name, app.name, wl.name LIMIT `+strconv.Itoa(limit+1), w.args, func(r store.Row) (pagedWorkload, error) {
		var k pagedWorkload
		err := r.Scan(&k.key.Ws, &k.key.App, &k.key.Wl, &k.id)
		return k, err
	})
	if err != nil {
		return Discrepancies{}, "", nil, err
	}
	next := ""
	if len(wls) > limit {
		wls = wls[:limit]
		next = encodeCursor("discrepancies", wls[limit-1].key)
	}
	col := map[string]int{}
	for i, e := range envs {
		col[e] = i
	}
	items := make([]DiscrepancyRow, len(wls))
	index := map[int64]int{}
	for i, k := range wls {
		index[k.id] = i
		items[i] = DiscrepancyRow{Workspace: k.key.Ws, Application: k.key.App, Workload: k.key.Wl, Cells: make([]DiscrepancyCell, len(envs))}
		for j, e := range envs {
			items[i].Cells[j] = DiscrepancyCell{Environment: e, Targets: []string{}, Scheduled: []string{}, Deployed: []VersionHosts{}}
		}
	}
	var targets []pagedTarget
	if len(wls) > 0 {
		// The workloads' targets by workload id and the target's own
		// conditions. Each target is named from its workload and
		// environment, not once a row.
		tw := targetsOf(tf, changed)
		ids := make([]int64, len(wls))
		for i, k := range wls {
			ids[i] = k.id
		}
		a := store.Args(tw.args)
		tw.conds = append(tw.conds, store.In(s.st.Engine(), &a, "t.workload_id", ids))
		tw.args = a
		page := `SELECT t.id AS tid, t.endpoint_id AS eid, t.scheduled_assignment_id AS said, t.workload_id AS wid, t.environment_id AS envid, t.name AS tname
			FROM targets t WHERE ` + tw.sql()
		targets, err = s.readTargetStates(ctx, f, changed, tw.args, page, `p.wid, p.envid, p.tname`, `p.wid, p.envid, p.tname, p.tid`,
			func(t *pagedTarget) []any { return []any{&t.workloadID, &t.environmentID, &t.ref.Target} },
			func(t *pagedTarget) {
				k := wls[index[t.workloadID]].key
				t.ref.Workspace, t.ref.Application, t.ref.Workload, t.ref.Environment = k.Ws, k.App, k.Wl, envNames[t.environmentID]
			})
		if err != nil {
			return Discrepancies{}, "", nil, err
		}
	}
	for _, t := range targets {
		dr := &items[index[t.workloadID]]
		for _, r := range t.rows {
			i, ok := col[r.Environment]
			if !ok {
				continue
			}
			c := &dr.Cells[i]
			if !slices.Contains(c.Targets, r.Target) {
				c.Targets = append(c.Targets, r.Target)
				if r.Scheduled != nil && !slices.Contains(c.Scheduled, r.Scheduled.Version) {
					c.Scheduled = append(c.Scheduled, r.Scheduled.Version)
				}
			}
			if r.Hosts > 0 && r.Status != StatusNotReported {
				j := slices.IndexFunc(c.Deployed, func(v VersionHosts) bool { return v.Version == r.DeployedVersion })
				if j < 0 {
					c.Deployed = append(c.Deployed, VersionHosts{Version: r.DeployedVersion})
					j = len(c.Deployed) - 1
				}
				c.Deployed[j].Hosts += r.Hosts
			}
		}
	}
	for i := range items {
		dr := &items[i]
		var first []VersionHosts
		for i := range dr.Cells {
			c := &dr.Cells[i]
			slices.SortFunc(c.Deployed, func(a, b VersionHosts) int {
				return cmp.Or(-cmp.Compare(a.Hosts, b.Hosts), cmp.Compare(a.Version, b.Version))
			})
			if len(c.Targets) == 0 {
				continue
			}
			if first == nil {
				first = c.Deployed
			} else if !sameVersions(first, c.Deployed) {
				dr.Differs = true
			}
		}
	}
	return Discrepancies{Environments: envs, Items: items}, next, targets, nil
}

// workloadKey is the sort key of a workload.
type workloadKey struct{ Ws, App, Wl string }

func sameVersions(a, b []VersionHosts) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y VersionHosts) bool { return y.Version == x.Version }) {
			return false
		}
	}
	return true
}

func joinEndpoint(repo, branch, path string) string {
	s := repo
	for _, p := range []string{branch, path} {
		if p != "" {
			s += "/" + p
		}
	}
	return s
}

// hostKey is the keyset cursor of Host State.
type hostKey struct {
	Host       string `json:"h"`
	Reconciler string `json:"r"`
	TargetID   int64  `json:"t"`
}

func (k hostKey) encode() string {
	b, _ := json.Marshal(k)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeHostKey(cursor string) (*hostKey, error) {
	if cursor == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, ErrBadCursor
	}
	var k hostKey
	if err := json.Unmarshal(b, &k); err != nil || k.Host == "" {
		return nil, ErrBadCursor
	}
	return &k, nil
}
