package reports

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// Drift lists where reality differs from the desired state, longest first:
// hosts not at their target's scheduled version, failing at it, reporting
// a commit the hub cannot place, registered and not reporting yet, applying
// an endpoint no target has, or silent for longer than staleAfter (0: the
// Service's default); and targets no host reconciles. Since and Until
// bound when each started. Pages follow (since, kind, host, target).
//
// Hosts' drift is maintained at ingest (the drift table); staleness and
// targets without hosts are found through indexes at read time, so the
// cost grows with the page and the drifting hosts, not with the fleet.
func (s *Service) Drift(ctx context.Context, f Filter, staleAfter time.Duration, p Page) ([]DriftRow, string, error) {
	return s.drift(ctx, f, nil, staleAfter, p)
}

// drift is Drift narrowed to some kinds (none: every kind).
func (s *Service) drift(ctx context.Context, f Filter, kinds []string, staleAfter time.Duration, p Page) ([]DriftRow, string, error) {
	if staleAfter <= 0 {
		staleAfter = s.staleAfter
	}
	var after driftKey
	hasAfter, err := decodeCursor("drift", p.Cursor, &after)
	if err != nil {
		return nil, "", err
	}
	now := s.now().UTC()
	limit := p.limit()
	w := &where{}
	targetFilter := func() string {
		tw := &where{args: w.args}
		tw.targetFilter(f)
		w.args = tw.args
		return tw.sql()
	}
	hostFilter := func() string {
		cond := "TRUE"
		if f.Host != "" {
			cond = w.bind("h.name = ?", f.Host)
		}
		if f.Status != "" {
			cond += " AND " + statusIs(w, "r.status", f.Status)
		}
		return cond
	}
	noTargetFilter := f.Workspace == "" && f.Application == "" && f.Environment == "" && f.Workload == "" && f.Target == ""
	// Three sources, each read through an index in (since) order.
	parts := []string{`SELECT dr.since, dr.kind, dr.reconciler_id, dr.target_id FROM drift dr
		JOIN reconcilers r ON r.id = dr.reconciler_id JOIN hosts h ON h.id = r.host_id
		LEFT JOIN targets t ON t.id = dr.target_id
		LEFT JOIN workloads wl ON wl.id = t.workload_id LEFT JOIN applications app ON app.id = wl.application_id
		LEFT JOIN workspaces ws ON ws.id = app.workspace_id LEFT JOIN environments env ON env.id = t.environment_id
		WHERE ` + hostFilter() + ` AND (` + targetFilter() + `)` + map[bool]string{false: " AND dr.target_id <> 0"}[noTargetFilter]}
	parts = append(parts, `SELECT r.last_report_at AS since, 'stale' AS kind, r.id AS reconciler_id, t.id AS target_id FROM reconcilers r
		JOIN hosts h ON h.id = r.host_id JOIN targets t ON t.endpoint_id = r.endpoint_id`+targetJoins+`
		WHERE r.retired_at IS NULL AND r.status <> '' AND r.last_report_at < `+w.bind("?", now.Add(-staleAfter))+`
		AND `+hostFilter()+` AND `+targetFilter())
	if f.Host == "" && f.Status == "" {
		parts = append(parts, `SELECT t.created_at AS since, 'no_hosts' AS kind, 0 AS reconciler_id, t.id AS target_id FROM targets t`+targetJoins+`
			WHERE NOT EXISTS (SELECT 1 FROM endpoint_counts c WHERE c.endpoint_id = t.endpoint_id) AND `+targetFilter())
	}
	outer := &where{args: w.args}
	if !f.Since.IsZero() {
		outer.add("since >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		outer.add("since <= ?", f.Until.UTC())
	}
	if hasAfter {
		outer.add("(since, kind, reconciler_id, target_id) > (?, ?, ?, ?)", after.Since, after.Kind, after.Reconciler, after.Target)
	}
	if len(kinds) > 0 {
		in := make([]string, len(kinds))
		for i, k := range kinds {
			in[i] = outer.bind("?", k)
		}
		outer.conds = append(outer.conds, "kind IN ("+strings.Join(in, ", ")+")")
	}
	// Each source is filtered, ordered and cut to the page on its own, so
	// that each is read through its index in (since) order and stops at
	// the page: one LIMIT over the union had PostgreSQL sort every stale
	// reconciler of a fleet that stopped reporting (25,000 for one
	// environment at 10,000 hosts: 57 ms, 15 through the index).
	page := ` ORDER BY since, kind, reconciler_id, target_id LIMIT ` + strconv.Itoa(limit+1)
	for i, p := range parts {
		parts[i] = `SELECT * FROM (SELECT * FROM (` + p + `) x WHERE ` + outer.sql() + page + `) x`
	}
	// The page's keys, then what each row shows joined to them alone:
	// its reconciler (with its host and current deployment's message), its
	// target (with the version scheduled) and the version its commit
	// resolves to on that target. The names are read apart (namesOf).
	var rows []driftRow
	read := func(q store.Querier) error {
		rows, err = store.Collect(ctx, q, `SELECT k.since, k.kind, k.reconciler_id, k.target_id,
				COALESCE(h.name, ''), COALESCE(r.name, ''), COALESCE(r.commit_sha, ''), COALESCE(r.status, ''), COALESCE(d.message, ''),
				COALESCE(t.workload_id, 0), COALESCE(t.environment_id, 0), COALESCE(t.name, ''), COALESCE(sv.version, ''),
				COALESCE(rv.version, '')
			FROM (SELECT since, kind, reconciler_id, target_id FROM (`+strings.Join(parts, " UNION ALL ")+`) x`+page+`) k
			LEFT JOIN reconcilers r ON r.id = k.reconciler_id
			LEFT JOIN hosts h ON h.id = r.host_id
			LEFT JOIN deployments d ON d.id = r.current_deployment_id
			LEFT JOIN targets t ON t.id = k.target_id
			LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
			LEFT JOIN workload_versions sv ON sv.id = sa.version_id
			LEFT JOIN resolutions res ON res.target_id = k.target_id AND res.sha = r.commit_sha
			LEFT JOIN workload_versions rv ON rv.id = res.version_id
			ORDER BY k.since, k.kind, k.reconciler_id, k.target_id`,
			outer.args, func(r store.Row) (driftRow, error) {
				var x driftRow
				err := r.Scan(&x.key.Since, &x.key.Kind, &x.key.Reconciler, &x.key.Target,
					&x.Host, &x.Reconciler, &x.Commit, &x.Status, &x.Message, &x.wid, &x.envID, &x.Target, &x.Scheduled, &x.Deployed)
				x.key.Since = x.key.Since.UTC()
				return x, err
			})
		return err
	}
	if !f.timed() {
		err = read(s.st.Read())
	} else {
		// Which source a time range leaves rows in, and how many, only its
		// values tell: a plan made once for any range hashed and sorted
		// every stale reconciler.
		err = s.st.ReadForValues(ctx, read)
	}
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = encodeCursor("drift", rows[limit-1].key)
	}
	out, err := s.driftRows(ctx, rows, now)
	return out, next, err
}

// driftKey is the sort key of a drift row.
type driftKey struct {
	Since      time.Time `json:"s"`
	Kind       string    `json:"k"`
	Reconciler int64     `json:"r"`
	Target     int64     `json:"t"`
}

// driftRow is a row of a Drift page as read, before its names.
type driftRow struct {
	DriftRow
	key        driftKey
	wid, envID int64
}

// driftRows completes a page of drift rows: the names of their targets'
// workloads and environments, and the endpoints of the reconcilers no
// target has.
func (s *Service) driftRows(ctx context.Context, rows []driftRow, now time.Time) ([]DriftRow, error) {
	db := s.st.Read()
	var wids, unplaced []int64
	for _, x := range rows {
		if x.key.Target != 0 {
			wids = append(wids, x.wid)
		}
		if x.key.Kind == DriftUnplaced {
			unplaced = append(unplaced, x.key.Reconciler)
		}
	}
	workloads, envs, err := s.namesOf(ctx, db, wids)
	if err != nil {
		return nil, err
	}
	endpoints := map[int64]string{}
	if len(unplaced) > 0 {
		var a store.Args
		err := collectEach(ctx, db, `SELECT r.id, e.repo, e.branch, e.path FROM reconcilers r JOIN endpoints e ON e.id = r.endpoint_id
			WHERE `+store.In(s.st.Engine(), &a, "r.id", slices.Compact(slices.Sorted(slices.Values(unplaced)))), a, func(r store.Row) error {
			var id int64
			var repo, branch, path string
			err := r.Scan(&id, &repo, &branch, &path)
			endpoints[id] = joinEndpoint(repo, branch, path)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]DriftRow, 0, len(rows))
	for _, x := range rows {
		r := x.DriftRow
		r.Kind, r.Since, r.For = x.key.Kind, x.key.Since, now.Sub(x.key.Since).Seconds()
		if x.key.Target != 0 {
			wl := workloads[x.wid]
			r.Workspace, r.Application, r.Workload, r.Environment = wl.Workspace, wl.Application, wl.Workload, envs[x.envID]
		}
		if x.key.Reconciler != 0 {
			r.Status = shownStatus(r.Status)
			if x.key.Kind == DriftUnplaced {
				r.Message = "no target has the endpoint " + endpoints[x.key.Reconciler] + "; " + r.Message
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// collectEach runs a query and calls fn with each row.
func collectEach(ctx context.Context, q store.Querier, sql string, args []any, fn func(store.Row) error) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
