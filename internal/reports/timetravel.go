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

// Time travel: Environment State and Host State as they were at a past
// time, from the deployment history. A reconciler counts when it had
// reported by then and was not retired yet; its state is its latest status
// change at or before that time; a target's scheduled version is its latest
// assignment by then. Commits resolve to versions as they do now (the
// correlation rules place a commit by its first sighting and the
// assignments, which later reports do not change).

// HostStateAt is Host State at a past time: what each host deployed for
// each target then, paged by key like HostState. LastReportAt is the time of
// the host's last status change at or before at.
func (s *Service) HostStateAt(ctx context.Context, f Filter, at time.Time, p Page) ([]HostStateRow, string, error) {
	return s.hostStateAt(ctx, f, at, Deployed{}, p)
}

func (s *Service) hostStateAt(ctx context.Context, f Filter, at time.Time, d Deployed, p Page) ([]HostStateRow, string, error) {
	return retryDropped(s, func() ([]HostStateRow, string, error) { return s.hostStateAtOnce(ctx, f, at, d, p) })
}

// retryDropped runs a time travel read once more when it named a history
// partition that retention dropped after the read listed them (the next
// read lists them again).
func retryDropped[R any](s *Service, read func() (R, string, error)) (R, string, error) {
	rows, next, err := read()
	if s.st.PartitionDropped(err) {
		return read()
	}
	return rows, next, err
}

func (s *Service) hostStateAtOnce(ctx context.Context, f Filter, at time.Time, d Deployed, p Page) ([]HostStateRow, string, error) {
	after, err := decodeHostKey(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	var out []HostStateRow
	var keys []hostKey
	// A status filter applies to the state at the time, which only the
	// history tells: read candidates in batches until the page is full.
	batch := limit + 1
	if f.Status != "" || f.timed() || d != (Deployed{}) {
		batch = max(batch, 500)
	}
	past := s.newPastReader()
	for len(out) <= limit {
		rows, ks, last, err := s.hostRowsAt(ctx, past, f, at, d, batch, after)
		if err != nil {
			return nil, "", err
		}
		out, keys = append(out, rows...), append(keys, ks...)
		if last == nil {
			break
		}
		after = last
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = keys[limit-1].encode()
	}
	if out == nil {
		out = []HostStateRow{}
	}
	return out, next, nil
}

// EnvironmentStateAt is Environment State at a past time: per target, the
// version scheduled then and the versions its hosts deployed, with status
// and host counts. Like EnvironmentState it is paged by whole targets in
// target order, and a page reads the history of its own targets' hosts
// only: its cost grows with the page, not with the fleet.
func (s *Service) EnvironmentStateAt(ctx context.Context, f Filter, at time.Time, p Page) ([]EnvironmentStateRow, string, error) {
	return retryDropped(s, func() ([]EnvironmentStateRow, string, error) { return s.environmentStateAt(ctx, f, at, p) })
}

func (s *Service) environmentStateAt(ctx context.Context, f Filter, at time.Time, p Page) ([]EnvironmentStateRow, string, error) {
	var after targetKey
	hasAfter, err := decodeCursor("environment-state-at", p.Cursor, &after)
	if err != nil {
		return nil, "", err
	}
	var from *targetKey
	if hasAfter {
		from = &after
	}
	limit := p.limit()
	// With a host, status or time filter only the targets with hosts that
	// pass it have rows, which only their history tells: read targets in
	// larger batches until the page is full.
	batch := limit + 1
	unfiltered := f.Host == "" && f.Status == "" && !f.timed()
	if !unfiltered {
		batch = max(batch, 500)
	}
	envs, err := s.Environments(ctx, nil)
	if err != nil {
		return nil, "", err
	}
	past := s.newPastReader()
	// Slices keep an unfiltered page from probing the history of targets
	// it does not show; with every endpoint's series up to date nothing is
	// probed, and one slice costs least.
	sliced := false
	if unfiltered {
		var a store.Args
		if err := past.q.QueryRow(ctx, `SELECT `+store.SeriesStaleSQL("", a.Bind(at)), a...).Scan(&sliced); err != nil {
			return nil, "", err
		}
	}
	var out []EnvironmentStateRow
	var last *targetKey // the last target read, shown or not
	counted := 0        // targets counted so far
	for {
		targets, err := s.targetsAt(ctx, f, at, envs, from, batch, grouped(f))
		if err != nil {
			return nil, "", err
		}
		more := len(targets) == batch
		for len(targets) > 0 {
			n := len(targets)
			if sliced {
				n = min(n, targetsToFill(limit-len(out), len(out), counted))
			}
			rows, err := s.targetRowsAt(ctx, past, f, at, targets[:n])
			if err != nil {
				return nil, "", err
			}
			for _, t := range targets[:n] {
				rs := targetRows(f, t.ref, t.scheduled, rows[t.id])
				if len(out) > 0 && len(out)+len(rs) > limit {
					return out, encodeCursor("environment-state-at", *last), nil
				}
				out = append(out, rs...)
				last = &t.key
			}
			counted += n
			targets = targets[n:]
		}
		if !more {
			break
		}
		from = last
	}
	if out == nil {
		out = []EnvironmentStateRow{}
	}
	return out, "", nil
}

// targetsToFill is how many more targets an unfiltered page counts next,
// needing rows more rows after rowsSoFar from counted targets. Each target
// has at least one row, so rows+1 targets always fill the page; counting
// them all at once reads the history of targets the page never shows
// (while a rollout is under way most targets have more than one row). So
// the first slice is half of that, and the next ones what the rows per
// target so far predict, plus one.
func targetsToFill(rows, rowsSoFar, counted int) int {
	if counted == 0 || rowsSoFar == 0 {
		return rows/2 + 1
	}
	return (rows*counted+rowsSoFar-1)/rowsSoFar + 1
}

// pastTarget is a target that existed at the time, with what was
// scheduled on it then.
type pastTarget struct {
	id        int64
	key       targetKey
	ref       TargetRef
	scheduled *Scheduled
	// series: its endpoint's series is up to date then, and snapshot is
	// its latest snapshot at or before the time (nil: none); read only
	// when asked for (targetsAt).
	series   bool
	snapshot *string
}

// targetsAt lists, in target order, up to limit targets after the key that
// the filter names and that existed at the time, each with the assignment
// scheduled then; envs are every environment in promotion order.
func (s *Service) targetsAt(ctx context.Context, f Filter, at time.Time, envs []string, after *targetKey, limit int, snapshots bool) ([]pastTarget, error) {
	w := &where{}
	w.targetFilter(f)
	w.add("t.created_at <= ?", at.UTC())
	order := newTargetOrder(w, envs)
	if after != nil {
		w.conds = append(w.conds, order.after(w, *after))
	}
	// The page first, then its scheduled assignments (not every target's).
	page := `SELECT t.id AS tid, t.endpoint_id AS eid, ` + order.rank("env.name") + ` AS erank, env.name AS env, ws.name AS ws, app.name AS app, wl.name AS wl, t.name AS tname
		FROM targets t` + targetJoins + ` WHERE ` + w.sql() + ` ORDER BY ` + order.by() + ` LIMIT ` + strconv.Itoa(limit)
	atArg := w.bind("?", at.UTC())
	// With snapshots, each target's endpoint's series state and snapshot
	// then, in the same pass (see seriesGroups).
	series := "FALSE, NULL"
	if snapshots {
		series = `NOT ` + store.SeriesStaleSQL("p.eid", atArg) + `, (SELECT sn.groups FROM endpoint_snapshots sn
			WHERE sn.endpoint_id = p.eid AND sn.at <= ` + atArg + ` ORDER BY sn.at DESC LIMIT 1)`
	}
	return store.Collect(ctx, s.st.Read(), `WITH page AS (`+page+`)
		SELECT p.tid, p.env, p.ws, p.app, p.wl, p.tname, COALESCE(sv.version, ''), COALESCE(sa.commit_sha, ''), sa.assigned_at, `+series+`
		FROM page p `+s.scheduledJoin("a.version_id, a.commit_sha, a.assigned_at", "p.tid", atArg)+`
		LEFT JOIN workload_versions sv ON sv.id = sa.version_id
		ORDER BY p.erank, p.env, p.ws, p.app, p.wl, p.tname, p.tid`, w.args, func(r store.Row) (pastTarget, error) {
		var t pastTarget
		var sched Scheduled
		var assigned *time.Time
		if err := r.Scan(&t.id, &t.ref.Environment, &t.ref.Workspace, &t.ref.Application, &t.ref.Workload, &t.ref.Target,
			&sched.Version, &sched.Commit, &assigned, &t.series, &t.snapshot); err != nil {
			return t, err
		}
		t.key = targetKey{t.ref.Environment, t.ref.Workspace, t.ref.Application, t.ref.Workload, t.ref.Target, t.id}
		if assigned != nil {
			sched.AssignedAt = assigned.UTC()
			t.scheduled = &sched
		}
		return t, nil
	})
}

// scheduledJoin joins, as sa, cols (of a) of the assignment scheduled on
// target at the time (see assignmentAt), by index: on PostgreSQL as a
// LATERAL probe (joined by id, the planner hashes every assignment
// instead, or probes the assignments twice a row).
func (s *Service) scheduledJoin(cols, target, at string) string {
	if s.st.Engine() == "postgres" {
		return `LEFT JOIN LATERAL (` + assignmentAt(cols, target, at) + `) sa ON TRUE`
	}
	return `LEFT JOIN assignments sa ON sa.id = (` + assignmentAt("a.id", target, at) + `)`
}

// targetRowsAt groups the hosts of each target by the version they
// deployed at the time and its status (targetRows completes the rows).
//
// What has not changed since the time is counted as it is now: a target
// whose endpoint's endpoint_counts groups all have their latest change
// (latest_since) at or before the time, and none of whose reconcilers was
// retired since, had then the hosts it has now, so its groups are read as
// they are (quietGroupsAt). On the other targets, the reconcilers that
// have not changed since the time (see statesAt) are counted in SQL by
// (target, commit, status), and those that changed since by their state
// then, from the history, in the same statement: no reconciler leaves the
// database. A host filter or a time range (which asks for each reconciler's status
// since, which the counts do not keep) reads every reconciler.
func (s *Service) targetRowsAt(ctx context.Context, past *pastReader, f Filter, at time.Time, targets []pastTarget) (map[int64][]EnvironmentStateRow, error) {
	out := map[int64][]EnvironmentStateRow{}
	if len(targets) == 0 {
		return out, nil
	}
	at = at.UTC()
	ids := make([]int64, len(targets))
	for i, t := range targets {
		ids[i] = t.id
	}
	var groups []groupAt // hosts by target, commit and status at the time
	var cands []pastCandidate
	byGroup := grouped(f)
	if byGroup {
		// The endpoints' series first; for the targets of endpoints whose
		// series waits to be rebuilt, the counts when nothing changed.
		counted := map[int64]bool{}
		count := func(gs []groupAt) {
			for _, g := range gs {
				counted[g.target] = true
				if g.hosts > 0 {
					groups = append(groups, g)
				}
			}
			ids = slices.DeleteFunc(ids, func(id int64) bool { return counted[id] })
		}
		gs, err := seriesGroups(targets)
		if err != nil {
			return nil, err
		}
		count(gs)
		if len(ids) > 0 {
			gs, err := s.quietGroupsAt(ctx, past, ids, at)
			if err != nil {
				return nil, err
			}
			count(gs)
		}
	}
	if len(ids) > 0 {
		// The reconcilers live at the time: those live now (by the index
		// of live reconcilers) and those retired since (by the index of
		// retired ones); one condition for both reads every reconciler.
		var a store.Args
		// A reconciler whose status changed after the time changed after
		// it (its current deployment's last change is never before its
		// status time), so its current deployment is not looked up: did
		// is null and the history tells its state then.
		arm := func(live string) string {
			join, cond := "", store.In(s.st.Engine(), &a, "t.id", ids)+" AND r.created_at <= "+a.Bind(at)
			if f.Host != "" {
				join, cond = " JOIN hosts h ON h.id = r.host_id", cond+" AND h.name = "+a.Bind(f.Host)
			}
			return `SELECT r.id AS rid, t.id AS tid, CASE WHEN r.status_since <= ` + a.Bind(at) + ` THEN r.current_deployment_id END AS did FROM targets t
				JOIN reconcilers r ON r.endpoint_id = t.endpoint_id AND ` + live + join + ` WHERE ` + cond
		}
		candidates := arm("r.retired_at IS NULL") + ` UNION ALL ` + arm("r.retired_at > "+a.Bind(at))
		var err error
		if byGroup {
			// Grouped in one statement: the reconcilers unchanged since
			// the time by their current deployment, the others by their
			// history then (one probe each; none for one that had not
			// reported by then).
			then := a.Bind(at)
			history, herr := past.historyAt(ctx, "c.rid", then, at)
			if herr != nil {
				return nil, herr
			}
			err = collectEach(ctx, past.q, `WITH c AS MATERIALIZED (SELECT c.tid, c.rid, d.commit_sha AS sha, d.status
					FROM (`+candidates+`) c LEFT JOIN deployments d ON d.id = c.did AND d.last_changed <= `+then+`)
				SELECT tid, sha, status, count(*) FROM c WHERE sha IS NOT NULL GROUP BY tid, sha, status
				UNION ALL
				SELECT c.tid, pd.commit_sha, dh.status, count(*) FROM c `+history+`
					JOIN deployments pd ON pd.id = dh.deployment_id
				WHERE c.sha IS NULL GROUP BY c.tid, pd.commit_sha, dh.status`, a, func(r store.Row) error {
				var g groupAt
				if err := r.Scan(&g.target, &g.sha, &g.status, &g.hosts); err != nil {
					return err
				}
				groups = append(groups, g)
				return nil
			})
		} else {
			cands, err = store.Collect(ctx, s.st.Read(), `SELECT rid, tid FROM (`+candidates+`) c`, a, func(r store.Row) (pastCandidate, error) {
				var c pastCandidate
				err := r.Scan(&c.reconcilerID, &c.key.TargetID)
				return c, err
			})
		}
		if err != nil {
			return nil, err
		}
	}
	type group struct {
		target  int64
		version string
		known   bool
		status  string
	}
	counts := map[group]int{}
	groups = slices.DeleteFunc(groups, func(g groupAt) bool { return f.Status != "" && g.status != f.Status })
	pairs := make([]versionKey, len(groups))
	for i, g := range groups {
		pairs[i] = versionKey{g.target, g.sha}
	}
	versions, err := s.versionsOf(ctx, pairs)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		v := versions[versionKey{g.target, g.sha}]
		counts[group{g.target, v.version, v.known, g.status}] += g.hosts
	}
	// With a host or time filter, the candidates one by one.
	rows, keys, err := s.pastRows(ctx, past, f, at, Deployed{}, cands, false)
	if err != nil {
		return nil, err
	}
	for i, r := range rows {
		counts[group{keys[i].TargetID, r.Version, r.VersionKnown, r.Status}]++
	}
	for g, n := range counts {
		out[g.target] = append(out[g.target], EnvironmentStateRow{DeployedVersion: g.version, DeployedKnown: g.known, Status: g.status, Hosts: n})
	}
	return out, nil
}

// groupAt is a target's hosts that deployed a commit with a status at a
// time, counted.
type groupAt struct {
	target      int64
	sha, status string
	hosts       int
}

// quietGroupsAt reads the hosts, by commit and status, of the targets
// (ids) that have not changed since the time: their endpoint's groups were
// all last joined at or before it (latest_since bounds that; see
// store.ReconcilerFacts) and none of the endpoint's reconcilers was
// retired since. Such a target has a row (hosts 0 when it has no group
// with a status), the others none. Reconcilers that have not reported
// (no status) have no state at any time.
func (s *Service) quietGroupsAt(ctx context.Context, past *pastReader, ids []int64, at time.Time) ([]groupAt, error) {
	var a store.Args
	in := store.In(s.st.Engine(), &a, "t.id", ids)
	since := a.Bind(at)
	return store.Collect(ctx, past.q, `SELECT t.id, COALESCE(c.commit_sha, ''), COALESCE(c.status, ''), COALESCE(c.hosts, 0)
		FROM targets t LEFT JOIN endpoint_counts c ON c.endpoint_id = t.endpoint_id AND c.status <> ''
		WHERE `+in+`
			AND NOT EXISTS (SELECT 1 FROM endpoint_counts x WHERE x.endpoint_id = t.endpoint_id AND x.latest_since > `+since+`)
			AND NOT EXISTS (SELECT 1 FROM reconcilers r WHERE r.endpoint_id = t.endpoint_id AND r.retired_at > `+since+`)`, a,
		func(r store.Row) (groupAt, error) {
			var g groupAt
			err := r.Scan(&g.target, &g.sha, &g.status, &g.hosts)
			return g, err
		})
}

// grouped says whether Environment State at a time counts a filter's hosts
// by group (commit and status), as the maintained counts and the series
// keep them: not with a host or a time range, which ask for each
// reconciler.
func grouped(f Filter) bool { return f.Host == "" && !f.timed() }

// seriesGroups reads the hosts, by commit and status, of the targets whose
// endpoint's series is up to date then (not marked from then or before):
// their snapshot at or before the time (store/series.go), read with the
// targets (targetsAt). Such a target has a row (hosts 0 when it had no
// host then), the others none, and their reconcilers are read from the
// history.
func seriesGroups(targets []pastTarget) ([]groupAt, error) {
	var out []groupAt
	for _, t := range targets {
		if !t.series {
			continue
		}
		var gs []store.SeriesGroup
		if t.snapshot != nil {
			var err error
			if gs, err = store.ParseSeriesGroups(*t.snapshot); err != nil {
				return nil, err
			}
		}
		if len(gs) == 0 { // no host then
			out = append(out, groupAt{target: t.id})
		}
		for _, g := range gs {
			out = append(out, groupAt{target: t.id, sha: g.Commit, status: g.Status, hosts: g.Hosts})
		}
	}
	return out, nil
}

// pastCandidate is a host-target pair that existed at the time, before its
// state then is read.
type pastCandidate struct {
	reconcilerID int64
	key          hostKey
	row          HostStateRow
}

// hostRowsAt reads up to limit host-target pairs after the key that existed
// at the time, in (host, reconciler, target) order, with their state then
// and each row's key; pairs whose state does not pass the filter's status
// and time range, or do not deploy d, are left out. last, when more pairs follow, is the key of
// the last pair read, kept or not, to continue from.
func (s *Service) hostRowsAt(ctx context.Context, past *pastReader, f Filter, at time.Time, d Deployed, limit int, after *hostKey) (rows []HostStateRow, keys []hostKey, last *hostKey, err error) {
	at = at.UTC()
	w := &where{}
	w.targetFilter(f)
	if f.Host != "" {
		w.add("h.name = ?", f.Host)
	}
	w.add("r.created_at <= ?", at)
	w.add("(r.retired_at IS NULL OR r.retired_at > ?)", at)
	if after != nil {
		w.add(hostOrderPrefix+" >= substr(?, 1, 512) AND (h.name > ? OR (h.name = ? AND (r.name > ? OR (r.name = ? AND t.id > ?))))",
			after.Host, after.Host, after.Host, after.Reconciler, after.Reconciler, after.TargetID)
	}
	atArg := w.bind("?", at)
	db := s.st.Read()
	q, err := db.Query(ctx, `SELECT r.id, h.name, h.type, r.name, t.workload_id, t.environment_id, t.name, t.id,
			COALESCE(sv.version, ''), sa.id
		FROM reconcilers r
		JOIN hosts h ON h.id = r.host_id
		JOIN targets t ON t.endpoint_id = r.endpoint_id`+filterJoins(f)+`
		`+s.scheduledJoin("a.id, a.version_id", "t.id", atArg)+`
		LEFT JOIN workload_versions sv ON sv.id = sa.version_id
		WHERE `+w.sql()+`
		ORDER BY `+hostOrder+`, r.name, t.id LIMIT `+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return nil, nil, nil, err
	}
	var cands []pastCandidate
	var wids, envIDs []int64
	for q.Next() {
		var c pastCandidate
		var scheduledID *int64
		var wid, envID int64
		if err := q.Scan(&c.reconcilerID, &c.row.Host, &c.row.HostType, &c.row.Reconciler, &wid, &envID,
			&c.row.Target, &c.key.TargetID, &c.row.Scheduled, &scheduledID); err != nil {
			q.Close()
			return nil, nil, nil, err
		}
		if scheduledID == nil {
			c.row.Scheduled = ""
		}
		c.key.Host, c.key.Reconciler = c.row.Host, c.row.Reconciler
		cands, wids, envIDs = append(cands, c), append(wids, wid), append(envIDs, envID)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return nil, nil, nil, err
	}
	workloads, envs, err := s.namesOf(ctx, db, wids)
	if err != nil {
		return nil, nil, nil, err
	}
	for i := range cands {
		wl := workloads[wids[i]]
		cands[i].row.Workspace, cands[i].row.Application, cands[i].row.Workload, cands[i].row.Environment = wl.Workspace, wl.Application, wl.Workload, envs[envIDs[i]]
	}
	if len(cands) > limit {
		cands = cands[:limit]
		last = &cands[limit-1].key
	}
	rows, keys, err = s.pastRows(ctx, past, f, at, d, cands, true)
	return rows, keys, last, err
}

// pastRows completes candidates with their state at the time and the
// version it deployed, and keeps those whose state passes the filter's
// status and time range and deploys d, with their keys. A candidate whose
// reconciler had not reported by then has no row. Without since (and a
// time range), a row's StatusSince is its last change's time.
func (s *Service) pastRows(ctx context.Context, past *pastReader, f Filter, at time.Time, d Deployed, cands []pastCandidate, since bool) (rows []HostStateRow, keys []hostKey, err error) {
	seen := map[int64]bool{}
	var ids []int64
	for _, c := range cands {
		if !seen[c.reconcilerID] {
			seen[c.reconcilerID] = true
			ids = append(ids, c.reconcilerID)
		}
	}
	states, err := s.statesAt(ctx, past, ids, at, since || f.timed())
	if err != nil {
		return nil, nil, err
	}
	var pairs []versionKey
	for _, c := range cands {
		if st, ok := states[c.reconcilerID]; ok {
			pairs = append(pairs, versionKey{c.key.TargetID, st.commit})
		}
	}
	versions, err := s.versionsOf(ctx, pairs)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cands {
		st, ok := states[c.reconcilerID]
		if !ok {
			continue // no report by then
		}
		r := c.row
		r.Commit, r.Status, r.Message, r.StatusSince, r.LastReportAt = st.commit, st.status, st.message, st.since, st.last
		v := versions[versionKey{c.key.TargetID, st.commit}]
		r.Version, r.VersionKnown = v.version, v.known
		r.UpToDate = r.VersionKnown && r.Scheduled != "" && r.Version == r.Scheduled
		if !d.matches(r.Version, r.VersionKnown) || (f.Status != "" && r.Status != f.Status) || (!f.Since.IsZero() && r.StatusSince.Before(f.Since)) || (!f.Until.IsZero() && r.StatusSince.After(f.Until)) {
			continue
		}
		rows = append(rows, r)
		keys = append(keys, c.key)
	}
	return rows, keys, nil
}

// pastReader reads the reconcilers' past states for one report call,
// through one querier (with read replicas, one replica: which reconcilers
// changed since the time and what the history says of them agree). The
// history's partitions (store.HistoryLayout) are read on that querier
// once, when a probe first needs them, rather than once for each slice or
// batch of the page.
type pastReader struct {
	st      *store.Store
	q       store.Querier
	read    bool // the partitions below were read
	parts   []store.HistoryPartition
	waiting bool
}

func (s *Service) newPastReader() *pastReader { return &pastReader{st: s.st, q: s.st.Read()} }

// historyAt joins, as dh, the latest status change at or before the time
// (at, bound as atArg) of the reconciler whose id is rid: one index probe
// on SQLite (a correlated subquery).
//
// On PostgreSQL the probe asks the monthly partitions by name, newest
// first from at's month, each only when the newer ones had no change of
// the reconciler: so it reads one row of one partition for a reconciler
// that changed in that month, however long the history. The same probe on
// the partitioned table would have PostgreSQL either merge every
// partition's latest row or, when its statistics (an ANALYZE of the
// table) say a reconciler has few rows, read all of them and sort: 14
// buffers a reconciler instead of 4 at 10,000 hosts, and growing with the
// history. While rows wait in the default partition, which may hold any
// time, the partitioned table is probed.
func (p *pastReader) historyAt(ctx context.Context, rid, atArg string, at time.Time) (string, error) {
	latest := func(sel, table, gate string) string {
		return `SELECT ` + sel + ` FROM ` + table + ` h WHERE ` + gate + `h.reconciler_id = ` + rid + ` AND h.changed_at <= ` + atArg +
			` ORDER BY h.changed_at DESC, h.id DESC LIMIT 1`
	}
	if p.st.Engine() != "postgres" {
		return `JOIN deployment_history dh ON dh.id = (` + latest("h.id", "deployment_history", "") + `)`, nil
	}
	cols := []string{"id", "deployment_id", "status", "message", "changed_at"}
	probe := func(table, gate string) string { return latest("h."+strings.Join(cols, ", h."), table, gate) }
	if !p.read {
		var err error
		if p.parts, p.waiting, err = p.st.HistoryLayout(ctx, p.q); err != nil {
			return "", err
		}
		p.read = true
	}
	if p.waiting || len(p.parts) == 0 {
		return `CROSS JOIN LATERAL (` + probe("deployment_history", "") + `) dh`, nil
	}
	// The months that may hold changes at or before at, newest first (the
	// oldest alone when at is before every month: it has none).
	var months []string
	for i := len(p.parts) - 1; i >= 0; i-- {
		if !p.parts[i].From.After(at) {
			months = append(months, p.parts[i].Name)
		}
	}
	if len(months) == 0 {
		months = []string{p.parts[0].Name}
	}
	if len(months) == 1 {
		return `CROSS JOIN LATERAL (` + probe(months[0], "") + `) dh`, nil
	}
	// A chain of probes: month i runs only when months 0..i-1 found
	// nothing; the columns come from the one that found a change.
	var from strings.Builder
	from.WriteString(`(SELECT 1) one`)
	found := make([]string, 0, len(months))
	for i, m := range months {
		gate := ""
		if i > 0 {
			gate = `COALESCE(` + strings.Join(found, ", ") + `) IS NULL AND `
		}
		alias := "m" + strconv.Itoa(i)
		from.WriteString(` LEFT JOIN LATERAL (` + probe(m, gate) + `) ` + alias + ` ON TRUE`)
		found = append(found, alias+".changed_at")
	}
	pick := make([]string, 0, len(cols))
	for _, c := range cols {
		each := make([]string, len(months))
		for i := range months {
			each[i] = "m" + strconv.Itoa(i) + "." + c
		}
		pick = append(pick, `COALESCE(`+strings.Join(each, ", ")+`) AS `+c)
	}
	return `CROSS JOIN LATERAL (SELECT * FROM (SELECT ` + strings.Join(pick, ", ") + ` FROM ` + from.String() + `) x
			WHERE x.changed_at IS NOT NULL) dh`, nil
}

// pastState is a reconciler's state at a time.
type pastState struct {
	deployment              int64
	commit, status, message string
	since, last             time.Time
}

// statesAt reads each reconciler's state at the time: its latest status
// change at or before at and, when since is asked for, since when that
// change's deployment had that status (the first change of its last run
// of it). Without since, the state's since is the change's time.
//
// A reconciler's current deployment is the one that changed last, and a
// deployment's last change is its latest history row; so a reconciler
// whose current deployment last changed at or before the time was then in
// the state it is in now, which its current deployment holds. Only the
// reconcilers that changed after the time need the history (one index
// probe each, whatever their history): looking into the recent past
// costs what changed since.
func (s *Service) statesAt(ctx context.Context, past *pastReader, ids []int64, at time.Time, since bool) (map[int64]pastState, error) {
	at = at.UTC()
	out := make(map[int64]pastState, len(ids))
	latest := map[int64]pastState{} // by deployment
	engine := s.st.Engine()
	// keep reads a row of (reconciler, deployment, commit, status,
	// message, time of the change).
	keep := func(row store.Row) error {
		var r, dep int64
		var st pastState
		if err := row.Scan(&r, &dep, &st.commit, &st.status, &st.message, &st.last); err != nil {
			return err
		}
		st.last = st.last.UTC()
		st.since, st.deployment = st.last, dep
		out[r] = st
		latest[dep] = st
		return nil
	}
	for chunk := range slices.Chunk(ids, 1000) {
		var a store.Args
		// (A status changed after the time rules the reconciler out
		// before its deployment is read: see targetRowsAt.)
		then := a.Bind(at)
		err := collectEach(ctx, past.q, `SELECT r.id, d.id, d.commit_sha, d.status, d.message, d.last_changed
			FROM reconcilers r JOIN deployments d ON d.id = r.current_deployment_id
			WHERE `+store.In(engine, &a, "r.id", chunk)+` AND r.status_since <= `+then+` AND d.last_changed <= `+then, a, keep)
		if err != nil {
			return nil, err
		}
	}
	// Changed since the time: read from history.
	recent := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { _, ok := out[id]; return ok })
	for chunk := range slices.Chunk(recent, 1000) {
		var a store.Args
		history, err := past.historyAt(ctx, "r.id", a.Bind(at), at)
		if err != nil {
			return nil, err
		}
		err = collectEach(ctx, past.q, `SELECT r.id, dh.deployment_id, d.commit_sha, dh.status, dh.message, dh.changed_at
			FROM reconcilers r `+history+` JOIN deployments d ON d.id = dh.deployment_id
			WHERE `+store.In(engine, &a, "r.id", chunk), a, keep)
		if err != nil {
			return nil, err
		}
	}
	if !since || len(latest) == 0 {
		return out, nil
	}
	type change struct {
		id     int64
		status string
		at     time.Time
	}
	byDeployment := map[int64][]change{}
	for chunk := range slices.Chunk(slices.Collect(maps.Keys(latest)), 1000) {
		var a store.Args
		err := collectEach(ctx, past.q, `SELECT deployment_id, id, status, changed_at FROM deployment_history
			WHERE `+store.In(engine, &a, "deployment_id", chunk)+` AND changed_at <= `+a.Bind(at), a, func(row store.Row) error {
			var dep int64
			var c change
			if err := row.Scan(&dep, &c.id, &c.status, &c.at); err != nil {
				return err
			}
			c.at = c.at.UTC()
			byDeployment[dep] = append(byDeployment[dep], c)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sinces := make(map[int64]time.Time, len(byDeployment))
	for dep, cs := range byDeployment {
		slices.SortFunc(cs, func(a, b change) int { return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id)) })
		st := latest[dep]
		since := st.last
		for i := len(cs) - 1; i >= 0 && cs[i].status == st.status; i-- {
			since = cs[i].at
		}
		sinces[dep] = since
	}
	for r, st := range out {
		if t, ok := sinces[st.deployment]; ok {
			st.since = t
			out[r] = st
		}
	}
	return out, nil
}

type versionKey struct {
	target int64
	sha    string
}

type resolvedVersion struct {
	version string
	known   bool
}

// versionsOf resolves (target, commit) pairs to versions of the target:
// only the pairs asked for are read, not every commit a target ever
// resolved.
func (s *Service) versionsOf(ctx context.Context, asked []versionKey) (map[versionKey]resolvedVersion, error) {
	out := map[versionKey]resolvedVersion{}
	want := map[versionKey]bool{}
	var pairs []versionKey
	for _, k := range asked {
		if !want[k] {
			want[k] = true
			pairs = append(pairs, k)
		}
	}
	for chunk := range slices.Chunk(pairs, 1000) {
		var a store.Args
		rows := make([][]any, len(chunk))
		for i, k := range chunk {
			rows[i] = []any{k.target, k.sha}
		}
		err := collectEach(ctx, s.st.Read(), `SELECT res.target_id, res.sha, v.version
			FROM `+store.ValuesTable(s.st.Engine(), &a, []string{"tid", "sha"}, []string{"bigint", "text"}, rows)+`
			JOIN resolutions res ON res.target_id = s.tid AND res.sha = s.sha
			JOIN workload_versions v ON v.id = res.version_id`, a, func(r store.Row) error {
			var k versionKey
			var v string
			if err := r.Scan(&k.target, &k.sha, &v); err != nil {
				return err
			}
			out[k] = resolvedVersion{version: v, known: true}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
