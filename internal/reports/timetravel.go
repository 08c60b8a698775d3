package reports

import (
	"cmp"
	"context"
	"slices"
	"strconv"
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
	if f.Status != "" || !f.Since.IsZero() || !f.Until.IsZero() || d != (Deployed{}) {
		batch = max(batch, 500)
	}
	for len(out) <= limit {
		rows, ks, last, err := s.hostRowsAt(ctx, f, at, d, batch, after)
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
// and host counts.
func (s *Service) EnvironmentStateAt(ctx context.Context, f Filter, at time.Time, p Page) ([]EnvironmentStateRow, string, error) {
	type groupKey struct {
		ref     TargetRef
		version string
		known   bool
		status  string
	}
	groups := map[groupKey]int{}
	scheduled := map[TargetRef]*Scheduled{}
	var after *hostKey
	for {
		rows, _, last, err := s.hostRowsAt(ctx, f, at, Deployed{}, 5000, after)
		if err != nil {
			return nil, "", err
		}
		for _, r := range rows {
			groups[groupKey{r.TargetRef, r.Version, r.VersionKnown, r.Status}]++
		}
		if last == nil {
			break
		}
		after = last
	}
	idle, err := s.targetsAt(ctx, f, at)
	if err != nil {
		return nil, "", err
	}
	var out []EnvironmentStateRow
	reconciled := map[TargetRef]bool{}
	for k := range groups {
		reconciled[k.ref] = true
	}
	for _, t := range idle {
		scheduled[t.TargetRef] = t.Scheduled
		if !reconciled[t.TargetRef] && f.Host == "" && f.Status == "" && f.Since.IsZero() && f.Until.IsZero() {
			out = append(out, EnvironmentStateRow{TargetRef: t.TargetRef, Scheduled: t.Scheduled})
		}
	}
	for k, n := range groups {
		r := EnvironmentStateRow{TargetRef: k.ref, Scheduled: scheduled[k.ref], DeployedVersion: k.version, DeployedKnown: k.known, Status: k.status, Hosts: n}
		r.UpToDate = r.DeployedKnown && r.Scheduled != nil && r.DeployedVersion == r.Scheduled.Version
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b EnvironmentStateRow) int {
		return cmp.Or(compareRefs(a.TargetRef, b.TargetRef), -cmp.Compare(a.Hosts, b.Hosts),
			cmp.Compare(a.DeployedVersion, b.DeployedVersion), cmp.Compare(a.Status, b.Status))
	})
	return pageAfter("environment-state-at", out, p, func(r EnvironmentStateRow) stateAtKey {
		return stateAtKey{r.TargetRef, r.Hosts, r.DeployedVersion, r.Status}
	}, func(a, b stateAtKey) int {
		return cmp.Or(compareRefs(a.Ref, b.Ref), -cmp.Compare(a.Hosts, b.Hosts), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Status, b.Status))
	})
}

// stateAtKey is the sort key of EnvironmentStateAt's rows.
type stateAtKey struct {
	Ref     TargetRef
	Hosts   int
	Version string
	Status  string
}

// idleTarget is a target with what was scheduled on it, and when it was
// created.
type idleTarget struct {
	TargetRef
	Scheduled *Scheduled
	CreatedAt time.Time
}

// targetsAt lists the targets the filter names that existed at the time,
// each with the assignment scheduled then.
func (s *Service) targetsAt(ctx context.Context, f Filter, at time.Time) ([]idleTarget, error) {
	w := &where{}
	w.targetFilter(f)
	w.add("t.created_at <= ?", at.UTC())
	atArg := w.bind("?", at.UTC())
	rows, err := s.st.Read().Query(ctx, `SELECT ws.name, app.name, wl.name, env.name, t.name, t.created_at,
			COALESCE(sv.version, ''), COALESCE(sa.commit_sha, ''), sa.assigned_at
		FROM targets t`+targetJoins+`
		LEFT JOIN assignments sa ON sa.id = (SELECT a.id FROM assignments a WHERE a.target_id = t.id AND a.assigned_at <= `+atArg+`
			ORDER BY a.assigned_at DESC, a.id DESC LIMIT 1)
		LEFT JOIN workload_versions sv ON sv.id = sa.version_id
		WHERE `+w.sql(), w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []idleTarget
	for rows.Next() {
		var t idleTarget
		var sched Scheduled
		var assigned *time.Time
		if err := rows.Scan(&t.Workspace, &t.Application, &t.Workload, &t.Environment, &t.Target, &t.CreatedAt,
			&sched.Version, &sched.Commit, &assigned); err != nil {
			return nil, err
		}
		if assigned != nil {
			sched.AssignedAt = assigned.UTC()
			t.Scheduled = &sched
		}
		out = append(out, t)
	}
	return out, rows.Err()
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
func (s *Service) hostRowsAt(ctx context.Context, f Filter, at time.Time, d Deployed, limit int, after *hostKey) (rows []HostStateRow, keys []hostKey, last *hostKey, err error) {
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
	q, err := s.st.Read().Query(ctx, `SELECT r.id, h.name, h.type, r.name, ws.name, app.name, wl.name, env.name, t.name, t.id,
			COALESCE(sv.version, ''), sa.id
		FROM reconcilers r
		JOIN hosts h ON h.id = r.host_id
		JOIN targets t ON t.endpoint_id = r.endpoint_id`+targetJoins+`
		LEFT JOIN assignments sa ON sa.id = (SELECT a.id FROM assignments a WHERE a.target_id = t.id AND a.assigned_at <= `+atArg+`
			ORDER BY a.assigned_at DESC, a.id DESC LIMIT 1)
		LEFT JOIN workload_versions sv ON sv.id = sa.version_id
		WHERE `+w.sql()+`
		ORDER BY `+hostOrder+`, r.name, t.id LIMIT `+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return nil, nil, nil, err
	}
	var cands []pastCandidate
	for q.Next() {
		var c pastCandidate
		var scheduledID *int64
		if err := q.Scan(&c.reconcilerID, &c.row.Host, &c.row.HostType, &c.row.Reconciler, &c.row.Workspace, &c.row.Application,
			&c.row.Workload, &c.row.Environment, &c.row.Target, &c.key.TargetID, &c.row.Scheduled, &scheduledID); err != nil {
			q.Close()
			return nil, nil, nil, err
		}
		if scheduledID == nil {
			c.row.Scheduled = ""
		}
		c.key.Host, c.key.Reconciler = c.row.Host, c.row.Reconciler
		cands = append(cands, c)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return nil, nil, nil, err
	}
	if len(cands) > limit {
		cands = cands[:limit]
		last = &cands[limit-1].key
	}
	states, err := s.statesAt(ctx, cands, at)
	if err != nil {
		return nil, nil, nil, err
	}
	versions, err := s.versionsOf(ctx, cands, states)
	if err != nil {
		return nil, nil, nil, err
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
	return rows, keys, last, nil
}

// pastState is a reconciler's state at a time.
type pastState struct {
	commit, status, message string
	since, last             time.Time
}

// statesAt reads, for each candidate's reconciler, its latest status change
// at or before at, and since when it had that status.
func (s *Service) statesAt(ctx context.Context, cands []pastCandidate, at time.Time) (map[int64]pastState, error) {
	seen := map[int64]bool{}
	var ids []int64
	for _, c := range cands {
		if !seen[c.reconcilerID] {
			seen[c.reconcilerID] = true
			ids = append(ids, c.reconcilerID)
		}
	}
	type change struct {
		deployment  int64
		id          int64
		commit      string
		status, msg string
		at          time.Time
	}
	byReconciler := map[int64][]change{}
	for chunk := range slices.Chunk(ids, 500) {
		// Each deployment's history up to the time, through its index
		// (deployment, time). On PostgreSQL a lateral join says so: a
		// plain join let the planner read the whole fleet's history up to
		// the time for every chunk (10-20 s mid-history at 10,000 hosts).
		var a store.Args
		engine, until := s.st.Engine(), a.Bind(at.UTC())
		history := `JOIN deployment_history dh ON dh.deployment_id = d.id AND dh.changed_at <= ` + until
		if engine == "postgres" {
			history = `CROSS JOIN LATERAL (SELECT h.id, h.status, h.message, h.changed_at FROM deployment_history h
				WHERE h.deployment_id = d.id AND h.changed_at <= ` + until + `) dh`
		}
		rows, err := s.st.Read().Query(ctx, `SELECT d.reconciler_id, d.id, dh.id, d.commit_sha, dh.status, dh.message, dh.changed_at
			FROM deployments d `+history+`
			WHERE `+store.InIDs(engine, &a, "d.reconciler_id", chunk), a...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var r int64
			var c change
			if err := rows.Scan(&r, &c.deployment, &c.id, &c.commit, &c.status, &c.msg, &c.at); err != nil {
				rows.Close()
				return nil, err
			}
			c.at = c.at.UTC()
			byReconciler[r] = append(byReconciler[r], c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make(map[int64]pastState, len(byReconciler))
	for r, cs := range byReconciler {
		slices.SortFunc(cs, func(a, b change) int { return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id)) })
		last := cs[len(cs)-1]
		st := pastState{commit: last.commit, status: last.status, message: last.msg, since: last.at, last: last.at}
		// Since: the first change of the last run of this status on this
		// deployment.
		for i := len(cs) - 1; i >= 0; i-- {
			if cs[i].deployment != last.deployment {
				continue
			}
			if cs[i].status != last.status {
				break
			}
			st.since = cs[i].at
		}
		out[r] = st
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

// versionsOf resolves each candidate's commit at the time to a version of
// its target.
func (s *Service) versionsOf(ctx context.Context, cands []pastCandidate, states map[int64]pastState) (map[versionKey]resolvedVersion, error) {
	out := map[versionKey]resolvedVersion{}
	targets := map[int64]bool{}
	var targetIDs []int64
	for _, c := range cands {
		if _, ok := states[c.reconcilerID]; ok && !targets[c.key.TargetID] {
			targets[c.key.TargetID] = true
			targetIDs = append(targetIDs, c.key.TargetID)
		}
	}
	want := map[versionKey]bool{}
	for _, c := range cands {
		if st, ok := states[c.reconcilerID]; ok {
			want[versionKey{c.key.TargetID, st.commit}] = true
		}
	}
	for chunk := range slices.Chunk(targetIDs, 500) {
		var args []any
		rows, err := s.st.Read().Query(ctx, `SELECT res.target_id, res.sha, v.version FROM resolutions res
			JOIN assignments a ON a.id = res.assignment_id JOIN workload_versions v ON v.id = a.version_id
			WHERE res.target_id IN (`+bindIDs(&args, chunk)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k versionKey
			var v string
			if err := rows.Scan(&k.target, &k.sha, &v); err != nil {
				rows.Close()
				return nil, err
			}
			if want[k] {
				out[k] = resolvedVersion{version: v, known: true}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
