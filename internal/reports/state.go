package reports

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// liveFrom is every live reconciler (r) that has reported, with its host
// (h), each target (t) on the endpoint it applies, the version its current
// commit resolves to for that target (v, NULL when unknown) and the target's
// scheduled version (sa, sv).
const liveFrom = `
	FROM reconcilers r
	JOIN hosts h ON h.id = r.host_id
	JOIN targets t ON t.endpoint_id = r.endpoint_id` + targetJoins + `
	LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = r.commit_sha
	LEFT JOIN assignments a ON a.id = res.assignment_id
	LEFT JOIN workload_versions v ON v.id = a.version_id
	LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
	LEFT JOIN workload_versions sv ON sv.id = sa.version_id`

// liveFilter filters live host-target rows.
func liveFilter(f Filter) *where {
	w := reconcilerFilter(f)
	w.targetFilter(f)
	return w
}

// reconcilerFilter filters live reconcilers (r), including those registered
// but not reported yet, by host (h), status and the time they reached it
// (for one not reported yet: when it was registered).
func reconcilerFilter(f Filter) *where {
	w := &where{}
	w.add("r.retired_at IS NULL")
	if f.Host != "" {
		w.add("h.name = ?", f.Host)
	}
	if f.Status != "" {
		w.add("r.status = ?", storedStatus(f.Status))
	}
	if !f.Since.IsZero() {
		w.add("COALESCE(r.status_since, r.created_at) >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		w.add("COALESCE(r.status_since, r.created_at) <= ?", f.Until.UTC())
	}
	return w
}

// EnvironmentState lists, per target, the scheduled version and one row per
// (deployed version, status) with its host count. Targets that no host
// reconciles have one row with no hosts, unless the filter names a host or
// status.
func (s *Service) EnvironmentState(ctx context.Context, f Filter, p Page) ([]EnvironmentStateRow, string, error) {
	rows, err := s.environmentState(ctx, f)
	if err != nil {
		return nil, "", err
	}
	return paginate(rows, p)
}

// environmentState is every row of EnvironmentState, in order.
func (s *Service) environmentState(ctx context.Context, f Filter) ([]EnvironmentStateRow, error) {
	// Count reconcilers per (endpoint, commit, status) first, from one
	// index; then place the few groups on targets and versions.
	w := reconcilerFilter(f)
	hostJoin := ""
	if f.Host != "" {
		hostJoin = " JOIN hosts h ON h.id = r.host_id"
	}
	tw := &where{args: w.args}
	tw.targetFilter(f)
	rows, err := s.st.Read().Query(ctx, `WITH rg AS (
			SELECT r.endpoint_id, r.commit_sha, r.status, count(*) AS hosts
			FROM reconcilers r`+hostJoin+`
			WHERE `+w.sql()+`
			GROUP BY r.endpoint_id, r.commit_sha, r.status),
		g AS (
			SELECT t.id AS target_id, res.assignment_id AS assignment_id, rg.status AS status, sum(rg.hosts) AS hosts
			FROM rg JOIN targets t ON t.endpoint_id = rg.endpoint_id`+targetJoins+`
			LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = rg.commit_sha
			WHERE `+tw.sql()+`
			GROUP BY t.id, res.assignment_id, rg.status)
		SELECT ws.name, app.name, wl.name, env.name, t.name,
			COALESCE(sv.version, ''), COALESCE(sa.commit_sha, ''), sa.assigned_at,
			COALESCE(v.version, ''), CASE WHEN g.assignment_id IS NULL THEN 0 ELSE 1 END, g.status, g.hosts
		FROM g JOIN targets t ON t.id = g.target_id`+targetJoins+`
		LEFT JOIN assignments a ON a.id = g.assignment_id
		LEFT JOIN workload_versions v ON v.id = a.version_id
		LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
		LEFT JOIN workload_versions sv ON sv.id = sa.version_id`, tw.args...)
	if err != nil {
		return nil, err
	}
	var out []EnvironmentStateRow
	for rows.Next() {
		var r EnvironmentStateRow
		var sched Scheduled
		var assignedAt *time.Time
		var known int
		if err := rows.Scan(&r.Workspace, &r.Application, &r.Workload, &r.Environment, &r.Target,
			&sched.Version, &sched.Commit, &assignedAt, &r.DeployedVersion, &known, &r.Status, &r.Hosts); err != nil {
			rows.Close()
			return nil, err
		}
		if assignedAt != nil {
			sched.AssignedAt = assignedAt.UTC()
			r.Scheduled = &sched
		}
		r.DeployedKnown = known == 1
		r.Status = shownStatus(r.Status)
		r.UpToDate = r.DeployedKnown && r.Scheduled != nil && r.DeployedVersion == sched.Version
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if f.Host == "" && f.Status == "" && f.Since.IsZero() && f.Until.IsZero() {
		idle, err := s.unreconciledTargets(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, t := range idle {
			out = append(out, EnvironmentStateRow{TargetRef: t.TargetRef, Scheduled: t.Scheduled})
		}
	}
	slices.SortFunc(out, func(a, b EnvironmentStateRow) int {
		return cmp.Or(compareRefs(a.TargetRef, b.TargetRef), -cmp.Compare(a.Hosts, b.Hosts),
			cmp.Compare(a.DeployedVersion, b.DeployedVersion), cmp.Compare(a.Status, b.Status))
	})
	return out, nil
}

func compareRefs(a, b TargetRef) int {
	return cmp.Or(cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.Workspace, b.Workspace),
		cmp.Compare(a.Application, b.Application), cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Target, b.Target))
}

type idleTarget struct {
	TargetRef
	Scheduled *Scheduled
	CreatedAt time.Time
}

// unreconciledTargets lists targets that no live reconciler applies.
func (s *Service) unreconciledTargets(ctx context.Context, f Filter) ([]idleTarget, error) {
	w := &where{}
	w.targetFilter(f)
	w.add(`NOT EXISTS (SELECT 1 FROM reconcilers r WHERE r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL)`)
	rows, err := s.st.Read().Query(ctx, `SELECT ws.name, app.name, wl.name, env.name, t.name, t.created_at,
			COALESCE(sv.version, ''), COALESCE(sa.commit_sha, ''), sa.assigned_at
		FROM targets t`+targetJoins+`
		LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
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
		var at *time.Time
		if err := rows.Scan(&t.Workspace, &t.Application, &t.Workload, &t.Environment, &t.Target, &t.CreatedAt,
			&sched.Version, &sched.Commit, &at); err != nil {
			return nil, err
		}
		if at != nil {
			sched.AssignedAt = at.UTC()
			t.Scheduled = &sched
		}
		out = append(out, t)
	}
	return out, rows.Err()
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
func (s *Service) hostRows(ctx context.Context, f Filter, limit int, after *hostKey) ([]hostRow, []hostKey, error) {
	w := liveFilter(f)
	if after != nil {
		w.add("(h.name > ? OR (h.name = ? AND (r.name > ? OR (r.name = ? AND t.id > ?))))",
			after.Host, after.Host, after.Reconciler, after.Reconciler, after.TargetID)
	}
	q := `SELECT h.name, h.type, r.name, ws.name, app.name, wl.name, env.name, t.name, t.id,
			COALESCE(v.version, ''), CASE WHEN res.assignment_id IS NULL THEN 0 ELSE 1 END,
			r.commit_sha, r.status, COALESCE(d.message, ''), COALESCE(d.message_bytes, 0), COALESCE(r.status_since, r.created_at),
			r.last_report_at, COALESCE(d.first_seen, r.created_at),
			COALESCE(sv.version, ''), sa.assigned_at
		` + liveFrom + `
		LEFT JOIN deployments d ON d.id = r.current_deployment_id
		WHERE ` + w.sql() + `
		ORDER BY h.name, r.name, t.id`
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	rows, err := s.st.Read().Query(ctx, q, w.args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out []hostRow
	var keys []hostKey
	for rows.Next() {
		var h hostRow
		var k hostKey
		var known int
		if err := rows.Scan(&h.Host, &h.HostType, &h.Reconciler, &h.Workspace, &h.Application, &h.Workload, &h.Environment, &h.Target, &k.TargetID,
			&h.Version, &known, &h.Commit, &h.Status, &h.Message, &h.MessageBytes, &h.StatusSince, &h.LastReportAt, &h.FirstSeen,
			&h.Scheduled, &h.ScheduledAt); err != nil {
			return nil, nil, err
		}
		h.Status = shownStatus(h.Status)
		h.StatusSince, h.LastReportAt, h.FirstSeen = h.StatusSince.UTC(), h.LastReportAt.UTC(), h.FirstSeen.UTC()
		h.VersionKnown = known == 1
		h.HasSchedule = h.ScheduledAt != nil
		h.UpToDate = h.VersionKnown && h.HasSchedule && h.Version == h.Scheduled
		k.Host, k.Reconciler = h.Host, h.Reconciler
		out = append(out, h)
		keys = append(keys, k)
	}
	return out, keys, rows.Err()
}

// HostState lists what each host deploys for each target, by host. It pages
// by key, so it stays fast at any depth.
func (s *Service) HostState(ctx context.Context, f Filter, p Page) ([]HostStateRow, string, error) {
	after, err := decodeHostKey(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	rows, keys, err := s.hostRows(ctx, f, limit+1, after)
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
// with host counts.
func (s *Service) Discrepancies(ctx context.Context, f Filter, order []string, p Page) (Discrepancies, string, error) {
	envs, err := s.Environments(ctx, order)
	if err != nil {
		return Discrepancies{}, "", err
	}
	if f.Environment != "" {
		envs = slices.DeleteFunc(envs, func(e string) bool { return e != f.Environment })
	}
	all, err := s.environmentState(ctx, f)
	if err != nil {
		return Discrepancies{}, "", err
	}
	col := map[string]int{}
	for i, e := range envs {
		col[e] = i
	}
	type wlKey struct{ ws, app, wl string }
	rowsByKey := map[wlKey]*DiscrepancyRow{}
	var keys []wlKey
	for _, r := range all {
		k := wlKey{r.Workspace, r.Application, r.Workload}
		dr := rowsByKey[k]
		if dr == nil {
			dr = &DiscrepancyRow{Workspace: k.ws, Application: k.app, Workload: k.wl, Cells: make([]DiscrepancyCell, len(envs))}
			for i, e := range envs {
				dr.Cells[i] = DiscrepancyCell{Environment: e, Targets: []string{}, Scheduled: []string{}, Deployed: []VersionHosts{}}
			}
			rowsByKey[k] = dr
			keys = append(keys, k)
		}
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
		if r.Hosts > 0 {
			j := slices.IndexFunc(c.Deployed, func(v VersionHosts) bool { return v.Version == r.DeployedVersion })
			if j < 0 {
				c.Deployed = append(c.Deployed, VersionHosts{Version: r.DeployedVersion})
				j = len(c.Deployed) - 1
			}
			c.Deployed[j].Hosts += r.Hosts
		}
	}
	slices.SortFunc(keys, func(a, b wlKey) int {
		return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.app, b.app), cmp.Compare(a.wl, b.wl))
	})
	items := make([]DiscrepancyRow, 0, len(keys))
	for _, k := range keys {
		dr := rowsByKey[k]
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
		items = append(items, *dr)
	}
	page, next, err := paginate(items, p)
	return Discrepancies{Environments: envs, Items: page}, next, err
}

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

// Drift lists where reality differs from the desired state, longest first:
// hosts not at their target's scheduled version, failing at it, reporting
// a commit the hub cannot place, applying an endpoint no target has, or
// silent for longer than staleAfter (0: the Service's default); and targets
// no host reconciles.
func (s *Service) Drift(ctx context.Context, f Filter, staleAfter time.Duration, p Page) ([]DriftRow, string, error) {
	if staleAfter <= 0 {
		staleAfter = s.staleAfter
	}
	now := s.now().UTC()
	hosts, _, err := s.hostRows(ctx, Filter{Workspace: f.Workspace, Application: f.Application, Environment: f.Environment,
		Workload: f.Workload, Target: f.Target, Host: f.Host, Status: f.Status}, 0, nil)
	if err != nil {
		return nil, "", err
	}
	var out []DriftRow
	add := func(kind string, h hostRow, since time.Time) {
		out = append(out, DriftRow{Kind: kind, TargetRef: h.TargetRef, Host: h.Host, Reconciler: h.Reconciler,
			Scheduled: h.Scheduled, Deployed: h.Version, Commit: h.Commit, Status: h.Status, Message: h.Message, Since: since})
	}
	for _, h := range hosts {
		switch {
		case h.Status == StatusNotReported:
			add(DriftNotReported, h, h.StatusSince)
			continue // not stale either: it has not reported at all
		case !h.VersionKnown:
			add(DriftUnknown, h, h.FirstSeen)
		case h.HasSchedule && h.Version != h.Scheduled:
			add(DriftVersion, h, latest(h.ScheduledAt.UTC(), h.FirstSeen))
		case h.UpToDate && h.Status == "failure":
			add(DriftFailed, h, h.StatusSince)
		}
		if now.Sub(h.LastReportAt) > staleAfter {
			add(DriftStale, h, h.LastReportAt)
		}
	}
	if f.Host == "" && f.Status == "" {
		idle, err := s.unreconciledTargets(ctx, f)
		if err != nil {
			return nil, "", err
		}
		for _, t := range idle {
			r := DriftRow{Kind: DriftNoHosts, TargetRef: t.TargetRef, Since: t.CreatedAt.UTC()}
			if t.Scheduled != nil {
				r.Scheduled = t.Scheduled.Version
			}
			out = append(out, r)
		}
	}
	if f.Workspace == "" && f.Application == "" && f.Environment == "" && f.Workload == "" && f.Target == "" {
		unplaced, err := s.unplaced(ctx, f)
		if err != nil {
			return nil, "", err
		}
		out = append(out, unplaced...)
	}
	out = slices.DeleteFunc(out, func(r DriftRow) bool {
		return !f.Since.IsZero() && r.Since.Before(f.Since) || !f.Until.IsZero() && r.Since.After(f.Until)
	})
	for i := range out {
		out[i].For = now.Sub(out[i].Since).Seconds()
	}
	slices.SortStableFunc(out, func(a, b DriftRow) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Kind, b.Kind))
	})
	return paginate(out, p)
}

// unplaced lists live reconcilers whose endpoint no target has.
func (s *Service) unplaced(ctx context.Context, f Filter) ([]DriftRow, error) {
	w := reconcilerFilter(Filter{Host: f.Host, Status: f.Status})
	w.add("NOT EXISTS (SELECT 1 FROM targets t WHERE t.endpoint_id = r.endpoint_id)")
	rows, err := s.st.Read().Query(ctx, `SELECT h.name, r.name, r.commit_sha, r.status, COALESCE(d.message, ''), COALESCE(d.first_seen, r.created_at), e.repo, e.branch, e.path
		FROM reconcilers r JOIN hosts h ON h.id = r.host_id JOIN endpoints e ON e.id = r.endpoint_id
		LEFT JOIN deployments d ON d.id = r.current_deployment_id
		WHERE `+w.sql(), w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DriftRow
	for rows.Next() {
		r := DriftRow{Kind: DriftUnplaced}
		var repo, branch, path string
		if err := rows.Scan(&r.Host, &r.Reconciler, &r.Commit, &r.Status, &r.Message, &r.Since, &repo, &branch, &path); err != nil {
			return nil, err
		}
		r.Since = r.Since.UTC()
		r.Status = shownStatus(r.Status)
		r.Message = "no target has the endpoint " + joinEndpoint(repo, branch, path) + "; " + r.Message
		out = append(out, r)
	}
	return out, rows.Err()
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

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
