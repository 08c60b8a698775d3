package reports

import (
	"context"
	"slices"
	"time"
)

// TargetSummary counts one target's live hosts for alerting: the numbers of
// Environment State and Drift, added up per target.
type TargetSummary struct {
	TargetRef
	Scheduled *Scheduled `json:"scheduled,omitempty"` // nil: no assignment yet
	// Hosts are the target's live hosts (reconcilers), reported or only
	// registered.
	Hosts int `json:"hosts"`
	// AtScheduled run the scheduled version, in any status.
	AtScheduled int `json:"atScheduled"`
	// ByStatus counts hosts by the status of their current report
	// (StatusNotReported for those that have not reported yet).
	ByStatus map[string]int `json:"byStatus"`
	// Drifted counts hosts by drift kind (DriftVersion, DriftFailed,
	// DriftUnknown, DriftStale, DriftNotReported), as Drift lists them.
	Drifted map[string]int `json:"drifted"`
	// RolloutSince is when the scheduled version was assigned, while its
	// rollout is in progress: not yet succeeded on every host, and failing
	// on none. Nil otherwise.
	RolloutSince *time.Time `json:"rolloutSince,omitempty"`
}

// Summary is the fleet's state for alerting, one entry per target.
type Summary struct {
	Targets []TargetSummary `json:"targets"`
	// Unplaced counts live reconcilers whose endpoint no target has.
	Unplaced int `json:"unplaced"`
	// LastReportAt is the newest report of any live reconciler (zero when
	// none has reported).
	LastReportAt time.Time `json:"lastReportAt,omitzero"`
}

// SummaryKinds are the drift kinds a TargetSummary counts: those that
// concern a host of a target. (Targets without hosts have Hosts 0;
// unplaced reconcilers have no target.)
var SummaryKinds = []string{DriftVersion, DriftFailed, DriftUnknown, DriftStale, DriftNotReported}

// Summary counts, per target the filter names, its hosts, how many run the
// scheduled version, their statuses and drift, and whether a rollout is in
// progress; hosts silent for longer than staleAfter (0: the Service's
// default) are stale. Its numbers are those of EnvironmentState and Drift:
// it reads Environment State's groups, and counts stale hosts as Drift
// does. Only the target filters apply.
func (s *Service) Summary(ctx context.Context, f Filter, staleAfter time.Duration) (Summary, error) {
	if staleAfter <= 0 {
		staleAfter = s.staleAfter
	}
	f = Filter{Workspace: f.Workspace, Application: f.Application, Environment: f.Environment, Workload: f.Workload, Target: f.Target}
	var rows []EnvironmentStateRow
	for p := (Page{Limit: MaxLimit}); ; {
		page, next, err := s.EnvironmentState(ctx, f, p)
		if err != nil {
			return Summary{}, err
		}
		rows = append(rows, page...)
		if next == "" {
			break
		}
		p.Cursor = next
	}
	index := map[TargetRef]int{}     // of out.Targets
	succeeded := map[TargetRef]int{} // hosts at the scheduled version with success
	var out Summary
	for _, r := range rows {
		i, ok := index[r.TargetRef]
		if !ok {
			i = len(out.Targets)
			index[r.TargetRef] = i
			out.Targets = append(out.Targets, TargetSummary{TargetRef: r.TargetRef, Scheduled: r.Scheduled,
				ByStatus: map[string]int{}, Drifted: map[string]int{}})
		}
		t := &out.Targets[i]
		if r.Hosts == 0 {
			continue
		}
		t.Hosts += r.Hosts
		t.ByStatus[r.Status] += r.Hosts
		switch {
		case r.Status == StatusNotReported:
			t.Drifted[DriftNotReported] += r.Hosts
		case !r.DeployedKnown:
			t.Drifted[DriftUnknown] += r.Hosts
		case r.Scheduled != nil && !r.UpToDate:
			t.Drifted[DriftVersion] += r.Hosts
		case r.UpToDate && r.Status == "failure":
			t.Drifted[DriftFailed] += r.Hosts
		}
		if r.UpToDate {
			t.AtScheduled += r.Hosts
			if r.Status == "success" {
				succeeded[r.TargetRef] += r.Hosts
			}
		}
	}
	stale, err := s.staleCounts(ctx, f, s.now().UTC().Add(-staleAfter))
	if err != nil {
		return Summary{}, err
	}
	for ref, n := range stale {
		if i, ok := index[ref]; ok {
			out.Targets[i].Drifted[DriftStale] = n
		}
	}
	for i := range out.Targets {
		t := &out.Targets[i]
		if t.Scheduled != nil && t.Hosts > 0 && succeeded[t.TargetRef] < t.Hosts && t.Drifted[DriftFailed] == 0 {
			at := t.Scheduled.AssignedAt
			t.RolloutSince = &at
		}
	}
	slices.SortFunc(out.Targets, func(a, b TargetSummary) int { return compareRefs(a.TargetRef, b.TargetRef) })

	var last *time.Time
	if err := s.st.Read().QueryRow(ctx, `SELECT
			(SELECT count(*) FROM reconcilers r WHERE r.retired_at IS NULL
				AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.endpoint_id = r.endpoint_id)),
			(SELECT max(r.last_report_at) FROM reconcilers r WHERE r.retired_at IS NULL AND r.current_deployment_id IS NOT NULL)`,
	).Scan(&out.Unplaced, &last); err != nil {
		return Summary{}, err
	}
	if last != nil {
		out.LastReportAt = last.UTC()
	}
	return out, nil
}

// staleCounts counts, per target, live hosts whose last report is older
// than before: the rows Drift lists as stale (not those that have not
// reported at all).
func (s *Service) staleCounts(ctx context.Context, f Filter, before time.Time) (map[TargetRef]int, error) {
	w := &where{}
	w.add("r.retired_at IS NULL")
	w.add("r.current_deployment_id IS NOT NULL")
	w.add("r.last_report_at < ?", before)
	w.targetFilter(f)
	rows, err := s.st.Read().Query(ctx, `SELECT ws.name, app.name, wl.name, env.name, t.name, count(*)
		FROM reconcilers r
		JOIN targets t ON t.endpoint_id = r.endpoint_id`+targetJoins+`
		WHERE `+w.sql()+`
		GROUP BY ws.name, app.name, wl.name, env.name, t.name`, w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[TargetRef]int{}
	for rows.Next() {
		var ref TargetRef
		var n int
		if err := rows.Scan(&ref.Workspace, &ref.Application, &ref.Workload, &ref.Environment, &ref.Target, &n); err != nil {
			return nil, err
		}
		out[ref] = n
	}
	return out, rows.Err()
}
