package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The functions in this file are the write side of the store: each is one
// or two statements, run by ingest inside a transaction (q). They take the
// current time from the caller so that ingest decides what "now" is.

// ensureID returns the id that sel finds, inserting with ins (an INSERT
// without ON CONFLICT/RETURNING) when there is none. A concurrent insert of
// the same natural key is tolerated: the loser reads the winner's row.
func ensureID(ctx context.Context, q Querier, sel string, selArgs []any, ins string, insArgs []any) (id int64, created bool, err error) {
	err = q.QueryRow(ctx, sel, selArgs...).Scan(&id)
	if err == nil || !errors.Is(err, ErrNoRows) {
		return id, false, err
	}
	err = q.QueryRow(ctx, ins+" ON CONFLICT DO NOTHING RETURNING id", insArgs...).Scan(&id)
	if errors.Is(err, ErrNoRows) {
		err = q.QueryRow(ctx, sel, selArgs...).Scan(&id)
		return id, false, err
	}
	return id, err == nil, err
}

// EnsureWorkspace returns the id of the named workspace, creating it.
func EnsureWorkspace(ctx context.Context, q Querier, name string, now time.Time) (int64, error) {
	id, _, err := ensureID(ctx, q,
		`SELECT id FROM workspaces WHERE name = $1`, []any{name},
		`INSERT INTO workspaces (name, created_at) VALUES ($1, $2)`, []any{name, now})
	return id, err
}

// EnsureApplication returns the id of an application of a workspace,
// creating it.
func EnsureApplication(ctx context.Context, q Querier, workspaceID int64, name string, now time.Time) (int64, error) {
	id, _, err := ensureID(ctx, q,
		`SELECT id FROM applications WHERE workspace_id = $1 AND name = $2`, []any{workspaceID, name},
		`INSERT INTO applications (workspace_id, name, created_at) VALUES ($1, $2, $3)`, []any{workspaceID, name, now})
	return id, err
}

// EnsureWorkload returns the id of a workload of an application, creating
// it, and records its source location when one is given.
func EnsureWorkload(ctx context.Context, q Querier, applicationID int64, name string, src model.WorkloadSource, now time.Time) (int64, error) {
	id, _, err := ensureID(ctx, q,
		`SELECT id FROM workloads WHERE application_id = $1 AND name = $2`, []any{applicationID, name},
		`INSERT INTO workloads (application_id, name, source_repo, source_branch, source_path, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		[]any{applicationID, name, src.Repo, src.Branch, src.Path, now})
	if err != nil || src == (model.WorkloadSource{}) {
		return id, err
	}
	_, err = q.Exec(ctx, `UPDATE workloads SET source_repo = $2, source_branch = $3, source_path = $4
		WHERE id = $1 AND (source_repo <> $2 OR source_branch <> $3 OR source_path <> $4)`,
		id, src.Repo, src.Branch, src.Path)
	return id, err
}

// EnsureEnvironment returns the id of the named environment, creating it.
func EnsureEnvironment(ctx context.Context, q Querier, name string, now time.Time) (int64, error) {
	id, _, err := ensureID(ctx, q,
		`SELECT id FROM environments WHERE name = $1`, []any{name},
		`INSERT INTO environments (name, created_at) VALUES ($1, $2)`, []any{name, now})
	return id, err
}

// EndpointRow is a stored endpoint.
type EndpointRow struct {
	ID        int64
	BranchKey string // "" when the branch is unknown
}

// EnsureEndpoint returns the stored endpoint with ep's key, creating it.
//
// Commits are compared branch-wide, so every endpoint belongs to its
// branch (branch_key). An endpoint known only in joined form (from a
// reconciler: "repo/branch/path") belongs to the longest known branch
// whose repository and branch prefix its key; it moves when a longer one
// becomes known ("release/v2" after "release"), and it takes its own
// branch when a target names its parts. moved lists the branches that
// gained or lost endpoints: the times commits were first seen on them may
// have changed.
func EnsureEndpoint(ctx context.Context, q Querier, ep model.Endpoint, now time.Time) (_ EndpointRow, moved []string, err error) {
	key := ep.Key()
	var row EndpointRow
	var joined bool
	err = q.QueryRow(ctx, `SELECT id, branch_key, joined FROM endpoints WHERE key = $1`, key).Scan(&row.ID, &row.BranchKey, &joined)
	switch {
	case errors.Is(err, ErrNoRows):
		branchKey, prefix := ep.BranchKey(), ""
		if ep.Joined {
			var a Args
			if err := q.QueryRow(ctx, `SELECT branch_key FROM endpoints WHERE branch_prefix IN (`+BindList(&a, branchPrefixes(key))+`)
				ORDER BY length(branch_prefix) DESC LIMIT 1`, a...).Scan(&branchKey); err != nil && !errors.Is(err, ErrNoRows) {
				return row, nil, err
			}
		} else {
			prefix = model.Endpoint{Repo: ep.Repo, Branch: ep.Branch}.Key()
		}
		id, _, err := ensureID(ctx, q,
			`SELECT id FROM endpoints WHERE key = $1`, []any{key},
			`INSERT INTO endpoints (key, storage_type, repo, branch, path, joined, branch_key, branch_prefix, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			[]any{key, ep.StorageType, ep.Repo, ep.Branch, ep.Path, ep.Joined, branchKey, prefix, now})
		if err != nil {
			return row, nil, err
		}
		row = EndpointRow{ID: id, BranchKey: branchKey}
		if ep.Joined {
			return row, nil, nil
		}
		moved, err := placeJoinedEndpoints(ctx, q, prefix, branchKey)
		return row, moved, err
	case err != nil:
		return row, nil, err
	}
	if endpointKept(joined, ep) {
		return row, nil, nil
	}
	// A target now tells where repository, branch and path split.
	old := row.BranchKey
	prefix := model.Endpoint{Repo: ep.Repo, Branch: ep.Branch}.Key()
	row.BranchKey = ep.BranchKey()
	if _, err := q.Exec(ctx, `UPDATE endpoints SET repo = $2, branch = $3, path = $4, joined = $5, branch_key = $6, branch_prefix = $7 WHERE id = $1`,
		row.ID, ep.Repo, ep.Branch, ep.Path, false, row.BranchKey, prefix); err != nil {
		return row, nil, err
	}
	moved, err = placeJoinedEndpoints(ctx, q, prefix, row.BranchKey)
	if err != nil {
		return row, nil, err
	}
	if old != row.BranchKey {
		moved = appendBranch(moved, old, row.BranchKey)
	}
	return row, moved, nil
}

// endpointKept reports whether a stored endpoint (joined: known only in
// joined form) stays as it is when ep names it: unless ep, from a target,
// now tells where its parts split.
func endpointKept(joined bool, ep model.Endpoint) bool { return !joined || ep.Joined }

// EnsureEndpoints is EnsureEndpoint for several endpoints, by key: the
// stored ones that need no change are read in one statement (a first
// sweep of a fleet names hundreds of known endpoints a batch), the others
// are ensured one by one in key order. It returns them by key, and the
// branches that gained or lost endpoints.
func EnsureEndpoints(ctx context.Context, q Querier, engine string, eps map[string]model.Endpoint, now time.Time) (map[string]EndpointRow, []string, error) {
	out := make(map[string]EndpointRow, len(eps))
	if len(eps) == 0 {
		return out, nil, nil
	}
	keys := slices.Sorted(maps.Keys(eps))
	type stored struct {
		key    string
		row    EndpointRow
		joined bool
	}
	var a Args
	rows, err := Collect(ctx, q, `SELECT key, id, branch_key, joined FROM endpoints WHERE `+In(engine, &a, "key", keys), a, func(r Row) (stored, error) {
		var s stored
		err := r.Scan(&s.key, &s.row.ID, &s.row.BranchKey, &s.joined)
		return s, err
	})
	if err != nil {
		return nil, nil, err
	}
	for _, s := range rows {
		if endpointKept(s.joined, eps[s.key]) {
			out[s.key] = s.row
		}
	}
	var moved []string
	for _, key := range keys {
		if _, ok := out[key]; ok {
			continue
		}
		row, m, err := EnsureEndpoint(ctx, q, eps[key], now)
		if err != nil {
			return nil, nil, fmt.Errorf("ensure manifests endpoint %s: %w", model.Quote(key), err)
		}
		out[key] = row
		moved = appendBranch(moved, m...)
	}
	return out, moved, nil
}

// placeJoinedEndpoints moves the joined endpoints under a branch's prefix
// to that branch, unless they are on a branch with a longer prefix
// already. It returns the branches that gained or lost endpoints.
func placeJoinedEndpoints(ctx context.Context, q Querier, prefix, branchKey string) ([]string, error) {
	// The range on the key's first 512 characters (endpoints_joined_order)
	// holds every key equal to the prefix or under it: '0' follows '/'.
	const which = `joined AND substr(key, 1, 512) >= $3 AND substr(key, 1, 512) < $4
		AND branch_key <> $2 AND ($1 = key OR substr(key, 1, length($1) + 1) = $1 || '/')
		AND (branch_key = '' OR length($1) > (SELECT max(length(b.branch_prefix)) FROM endpoints b
			WHERE b.branch_key = endpoints.branch_key AND b.branch_prefix <> ''))`
	lo := string([]rune(prefix)[:min(512, len([]rune(prefix)))])
	args := []any{prefix, branchKey, lo, lo + "0"}
	old, err := Collect(ctx, q, `SELECT DISTINCT branch_key FROM endpoints WHERE `+which+` ORDER BY branch_key`,
		args, func(r Row) (string, error) {
			var b string
			err := r.Scan(&b)
			return b, err
		})
	if err != nil || len(old) == 0 {
		return nil, err
	}
	if _, err := q.Exec(ctx, `UPDATE endpoints SET branch_key = $2 WHERE `+which, args...); err != nil {
		return nil, err
	}
	return appendBranch(old, branchKey), nil
}

// branchPrefixes lists the branch prefixes a joined endpoint key may lie
// under: the key and each part of it that ends before a '/'.
func branchPrefixes(key string) []string {
	out := []string{key}
	for i := range len(key) {
		if key[i] == '/' {
			out = append(out, key[:i])
		}
	}
	return out
}

// appendBranch adds branch keys to a list, skipping "" and repeats.
func appendBranch(list []string, keys ...string) []string {
	for _, k := range keys {
		if k != "" && !slices.Contains(list, k) {
			list = append(list, k)
		}
	}
	return slices.DeleteFunc(list, func(k string) bool { return k == "" })
}

// TargetRow is a stored deployment target.
type TargetRow struct {
	ID         int64
	EndpointID int64
	BranchKey  string
}

// UpsertTarget creates or updates the target (workload, environment, name).
// moved reports whether it is new or its endpoint changed, which changes
// which reconcilers count for it; from is the endpoint it had (0: new).
// The target's row stays locked until the transaction ends.
func UpsertTarget(ctx context.Context, q Querier, workloadID, environmentID int64, name string, ep EndpointRow, labels map[string]string, now time.Time) (t TargetRow, moved bool, from int64, err error) {
	lb, err := labelsJSON(labels)
	if err != nil {
		return t, false, 0, err
	}
	id, created, err := ensureID(ctx, q,
		`SELECT id FROM targets WHERE workload_id = $1 AND environment_id = $2 AND name = $3`, []any{workloadID, environmentID, name},
		`INSERT INTO targets (workload_id, environment_id, name, endpoint_id, labels, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		[]any{workloadID, environmentID, name, ep.ID, lb, now})
	if err != nil {
		return t, false, 0, err
	}
	t = TargetRow{ID: id, EndpointID: ep.ID, BranchKey: ep.BranchKey}
	if created {
		return t, true, 0, nil
	}
	// Lock the row (a no-op update is portable), then move it.
	if err := q.QueryRow(ctx, `UPDATE targets SET endpoint_id = endpoint_id WHERE id = $1 RETURNING endpoint_id`, id).Scan(&from); err != nil {
		return t, false, 0, err
	}
	if from != ep.ID {
		if _, err := q.Exec(ctx, `UPDATE targets SET endpoint_id = $2 WHERE id = $1`, id, ep.ID); err != nil {
			return t, false, 0, err
		}
	}
	if labels != nil {
		if _, err := q.Exec(ctx, `UPDATE targets SET labels = $2 WHERE id = $1`, id, lb); err != nil {
			return t, false, 0, err
		}
	}
	return t, from != ep.ID, from, nil
}

// VersionRow is a stored workload version.
type VersionRow struct {
	ID          int64
	Build       string
	BuildCommit string
	BuildTime   *time.Time
}

// EnsureVersion returns the stored version (workload, version), creating it
// with the given build metadata. An existing version is returned as stored,
// with empty metadata filled in; the caller decides about conflicts.
func EnsureVersion(ctx context.Context, q Querier, workloadID int64, version, build, buildCommit string, buildTime *time.Time, now time.Time) (VersionRow, error) {
	var v VersionRow
	err := q.QueryRow(ctx, `SELECT id, build, build_commit, build_time FROM workload_versions WHERE workload_id = $1 AND version = $2`,
		workloadID, version).Scan(&v.ID, &v.Build, &v.BuildCommit, &v.BuildTime)
	if errors.Is(err, ErrNoRows) {
		id, _, err := ensureID(ctx, q,
			`SELECT id FROM workload_versions WHERE workload_id = $1 AND version = $2`, []any{workloadID, version},
			`INSERT INTO workload_versions (workload_id, version, build, build_commit, build_time, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			[]any{workloadID, version, build, buildCommit, buildTime, now})
		return VersionRow{ID: id, Build: build, BuildCommit: buildCommit, BuildTime: buildTime}, err
	}
	if err != nil {
		return v, err
	}
	fill := func(stored *string, given string) {
		if *stored == "" && given != "" {
			*stored = given
		}
	}
	b, c := v.Build, v.BuildCommit
	fill(&v.Build, build)
	fill(&v.BuildCommit, buildCommit)
	filledTime := v.BuildTime == nil && buildTime != nil
	if filledTime {
		v.BuildTime = buildTime
	}
	if b != v.Build || c != v.BuildCommit || filledTime {
		_, err = q.Exec(ctx, `UPDATE workload_versions SET build = $2, build_commit = $3, build_time = $4 WHERE id = $1`,
			v.ID, v.Build, v.BuildCommit, v.BuildTime)
	}
	return v, err
}

// Assignment is a stored assignment of a version to a target.
type Assignment struct {
	ID         int64
	VersionID  int64
	Commit     string // "" while pending
	FluxSource string
	AssignedAt time.Time
}

const assignmentCols = `id, version_id, COALESCE(commit_sha, ''), flux_source, assigned_at`

func scanAssignment(r Row) (a Assignment, err error) {
	err = r.Scan(&a.ID, &a.VersionID, &a.Commit, &a.FluxSource, &a.AssignedAt)
	return a, err
}

// LockTarget takes the target's row lock (a no-op update, portable across
// engines), so that concurrent descriptors for one target assign one at a
// time.
func LockTarget(ctx context.Context, q Querier, targetID int64) error {
	_, err := q.Exec(ctx, `UPDATE targets SET endpoint_id = endpoint_id WHERE id = $1`, targetID)
	return err
}

// TargetAssignments lists a target's assignments, oldest first.
func TargetAssignments(ctx context.Context, q Querier, targetID int64) ([]Assignment, error) {
	return Collect(ctx, q, `SELECT `+assignmentCols+` FROM assignments WHERE target_id = $1 ORDER BY assigned_at, id`, []any{targetID}, scanAssignment)
}

// InsertAssignment records a new assignment; commit "" means pending.
func InsertAssignment(ctx context.Context, q Querier, targetID, versionID int64, commit, fluxSource string, assignedAt, now time.Time) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO assignments (target_id, version_id, commit_sha, flux_source, assigned_at, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		targetID, versionID, nullIfEmpty(commit), fluxSource, assignedAt, now).Scan(&id)
	return id, err
}

// SetAssignment gives an assignment its commit (when pending) and the time
// it took effect.
func SetAssignment(ctx context.Context, q Querier, assignmentID int64, commit string, assignedAt time.Time) error {
	_, err := q.Exec(ctx, `UPDATE assignments SET commit_sha = COALESCE(commit_sha, $2), assigned_at = $3 WHERE id = $1`,
		assignmentID, nullIfEmpty(commit), assignedAt)
	return err
}

// PendingAssignment is an assignment waiting for its commit.
type PendingAssignment struct {
	ID         int64
	Target     TargetRow
	AssignedAt time.Time
	RecordedAt time.Time
}

// PendingAssignments lists the assignments waiting for the revision of a
// Flux Kustomization ("namespace/name").
func PendingAssignments(ctx context.Context, q Querier, fluxSource string) ([]PendingAssignment, error) {
	return Collect(ctx, q, `SELECT a.id, a.target_id, t.endpoint_id, e.branch_key, a.assigned_at, a.recorded_at
		FROM assignments a JOIN targets t ON t.id = a.target_id JOIN endpoints e ON e.id = t.endpoint_id
		WHERE a.commit_sha IS NULL AND a.flux_source = $1 ORDER BY a.target_id, a.id`, []any{fluxSource}, func(r Row) (PendingAssignment, error) {
		var p PendingAssignment
		err := r.Scan(&p.ID, &p.Target.ID, &p.Target.EndpointID, &p.Target.BranchKey, &p.AssignedAt, &p.RecordedAt)
		return p, err
	})
}

// ReconcilerState is what the store holds of a reconciler: enough to tell
// whether a report changes anything.
type ReconcilerState struct {
	ID           int64
	Endpoint     EndpointRow
	HostType     string
	HostLabels   string
	Type         string
	EndpointKey  string
	LastReportAt time.Time
	RetiredAt    time.Time // when retired; zero when live
	Source       string
	// The current deployment: "" commit and status when the reconciler
	// has not reported yet.
	Commit      string
	Status      model.Status
	Message     string
	FirstSeen   time.Time // when the current commit was first reported
	LastChanged time.Time // when its status or message last changed
}

// Retired reports whether the reconciler is retired.
func (s ReconcilerState) Retired() bool { return !s.RetiredAt.IsZero() }

// GetReconcilerState reads a reconciler and its latest deployment.
func GetReconcilerState(ctx context.Context, q Querier, host, name string) (ReconcilerState, error) {
	var k model.ReconcilerKey
	s, err := scanReconcilerState(q.QueryRow(ctx, `SELECT h.name, r.name, `+reconcilerStateCols+reconcilerStateFrom+`
		WHERE h.name = $1 AND r.name = $2`, host, name), &k)
	return s, err
}

const reconcilerStateCols = `r.id, e.id, e.branch_key, h.type, h.labels, r.type, e.key, r.last_report_at, r.retired_at, r.source,
	r.commit_sha, r.status, COALESCE(d.message, ''), d.first_seen, d.last_changed`

const reconcilerStateFrom = `
	FROM hosts h JOIN reconcilers r ON r.host_id = h.id
	JOIN endpoints e ON e.id = r.endpoint_id
	LEFT JOIN deployments d ON d.id = r.current_deployment_id`

func scanReconcilerState(r Row, k *model.ReconcilerKey) (ReconcilerState, error) {
	var s ReconcilerState
	var retired, first, last *time.Time
	err := r.Scan(&k.Host, &k.Name, &s.ID, &s.Endpoint.ID, &s.Endpoint.BranchKey, &s.HostType, &s.HostLabels, &s.Type, &s.EndpointKey,
		&s.LastReportAt, &retired, &s.Source, &s.Commit, &s.Status, &s.Message, &first, &last)
	if retired != nil {
		s.RetiredAt = retired.UTC()
	}
	if first != nil {
		s.FirstSeen, s.LastChanged = first.UTC(), last.UTC()
	}
	return s, err
}

// EnsureHost returns the id of the named host, creating it; a non-empty
// type and non-nil labels replace the stored ones.
func EnsureHost(ctx context.Context, q Querier, name, hostType string, labels map[string]string, now time.Time) (int64, error) {
	lb, err := labelsJSON(labels)
	if err != nil {
		return 0, err
	}
	typ := hostType
	if typ == "" {
		typ = model.HostCluster
	}
	id, created, err := ensureID(ctx, q,
		`SELECT id FROM hosts WHERE name = $1`, []any{name},
		`INSERT INTO hosts (name, type, labels, created_at) VALUES ($1, $2, $3, $4)`, []any{name, typ, lb, now})
	if err != nil || created {
		return id, err
	}
	if hostType != "" {
		if _, err := q.Exec(ctx, `UPDATE hosts SET type = $2 WHERE id = $1 AND type <> $2`, id, hostType); err != nil {
			return 0, err
		}
	}
	if labels != nil {
		if _, err := q.Exec(ctx, `UPDATE hosts SET labels = $2 WHERE id = $1`, id, lb); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// UpsertReconciler creates or updates a reconciler of a host, marks it live
// (not retired) and records the time of its report. A non-empty source
// replaces the stored one. The update also locks the row, so concurrent
// reports for one reconciler apply one at a time. When the reconciler
// existed (a concurrent writer may just have created it), before is what
// it was.
func UpsertReconciler(ctx context.Context, q Querier, hostID int64, name, typ, source string, endpointID int64, reportAt time.Time) (id int64, before *ReconcilerFacts, err error) {
	id, created, err := ensureID(ctx, q,
		`SELECT id FROM reconcilers WHERE host_id = $1 AND name = $2`, []any{hostID, name},
		`INSERT INTO reconcilers (host_id, name, type, source, endpoint_id, last_report_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		[]any{hostID, name, typ, source, endpointID, reportAt})
	if err != nil || created {
		return id, nil, err
	}
	var f ReconcilerFacts
	if err := q.QueryRow(ctx, `UPDATE reconcilers SET type = type WHERE id = $1 RETURNING endpoint_id, commit_sha, status, retired_at IS NULL`, id).
		Scan(&f.EndpointID, &f.Commit, &f.Status, &f.Live); err != nil {
		return id, nil, err
	}
	_, err = q.Exec(ctx, `UPDATE reconcilers SET type = $2, endpoint_id = $3, retired_at = NULL,
			source = CASE WHEN $4 <> '' THEN $4 ELSE source END,
			last_report_at = CASE WHEN $5 > last_report_at THEN $5 ELSE last_report_at END
		WHERE id = $1`, id, typ, endpointID, source, reportAt)
	return id, &f, err
}

// UpsertDeployment records that a reconciler was at status for commit at
// time at, keeping every change of status or message in deployment_history.
// A report newer than the deployment's last change moves its status; an
// older one (arriving late) is only added to its history. The deployment
// becomes the reconciler's current one unless the reconciler's current
// deployment changed after at. It reports whether the deployment changed.
func UpsertDeployment(ctx context.Context, q Querier, reconcilerID int64, commit string, status model.Status, message string, messageBytes int, at time.Time) (bool, error) {
	stored := &deploymentRow{}
	err := q.QueryRow(ctx, `SELECT id, status, message, message_bytes, first_seen, status_since, last_changed, first_success_at, first_failure_at
		FROM deployments WHERE reconciler_id = $1 AND commit_sha = $2`, reconcilerID, commit).
		Scan(&stored.id, &stored.status, &stored.message, &stored.bytes, &stored.firstSeen, &stored.since, &stored.last, &stored.firstSuccess, &stored.firstFailure)
	switch {
	case errors.Is(err, ErrNoRows):
		stored = nil
	case err != nil:
		return false, err
	}
	returning := false
	if stored != nil {
		var current int64
		var last time.Time
		err := q.QueryRow(ctx, `SELECT c.id, c.last_changed FROM reconcilers r JOIN deployments c ON c.id = r.current_deployment_id
			WHERE r.id = $1`, reconcilerID).Scan(&current, &last)
		switch {
		case errors.Is(err, ErrNoRows):
		case err != nil:
			return false, err
		default:
			returning = current != stored.id && !last.After(at)
		}
	}
	d, changed, late := nextDeployment(stored, status, message, messageBytes, at, returning)
	switch {
	case late:
		// History only. It may still be the first sighting.
		_, err = q.Exec(ctx, `UPDATE deployments SET first_seen = CASE WHEN first_seen > $2 THEN $2 ELSE first_seen END,
			first_success_at = `+firstAtSQL("first_success_at", model.StatusSuccess, "$3", "$2")+`,
			first_failure_at = `+firstAtSQL("first_failure_at", model.StatusFailure, "$3", "$2")+` WHERE id = $1`, d.id, at, status)
		var n int64
		if err == nil {
			n, err = q.Exec(ctx, `INSERT INTO deployment_history (deployment_id, reconciler_id, status, message, message_bytes, changed_at)
				SELECT $1, $6, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM deployment_history
					WHERE deployment_id = $1 AND changed_at = $5 AND status = $2 AND message = $3)`,
				d.id, status, message, messageBytes, at, reconcilerID)
		}
		return n > 0, err
	case stored == nil:
		err = q.QueryRow(ctx, `INSERT INTO deployments (reconciler_id, commit_sha, status, message, message_bytes, first_seen, status_since, last_changed, first_success_at, first_failure_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			reconcilerID, commit, d.status, d.message, d.bytes, d.firstSeen, d.since, d.last, d.firstSuccess, d.firstFailure).Scan(&d.id)
	case changed:
		_, err = q.Exec(ctx, `UPDATE deployments SET status = $2, message = $3, message_bytes = $4, status_since = $5, last_changed = $6,
			first_success_at = $7, first_failure_at = $8 WHERE id = $1`, d.id, d.status, d.message, d.bytes, d.since, d.last, d.firstSuccess, d.firstFailure)
	}
	if err != nil {
		return false, err
	}
	if changed {
		if _, err := q.Exec(ctx, `INSERT INTO deployment_history (deployment_id, reconciler_id, status, message, message_bytes, changed_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			d.id, reconcilerID, status, message, messageBytes, at); err != nil {
			return false, err
		}
	}
	_, err = q.Exec(ctx, `UPDATE reconcilers SET current_deployment_id = $2, commit_sha = $3, status = $4, status_since = $5
		WHERE id = $1 AND (current_deployment_id IS NULL OR current_deployment_id <> $2 OR status <> $4 OR status_since <> $5)
		  AND NOT EXISTS (SELECT 1 FROM deployments c WHERE c.id = reconcilers.current_deployment_id AND c.id <> $2 AND c.last_changed > $6)`,
		reconcilerID, d.id, commit, d.status, d.since, at)
	return changed, err
}

// firstAtSQL is the deployments column (first_success_at or
// first_failure_at) that a late report of status at time at leaves:
// deploymentRow.noteFirsts, in SQL.
func firstAtSQL(column string, want model.Status, status, at string) string {
	return `CASE WHEN ` + status + ` = '` + string(want) + `' AND (` + column + ` IS NULL OR ` + column + ` > ` + at + `) THEN ` + at + ` ELSE ` + column + ` END`
}

// RefreshScheduled points a target at its latest assignment by time.
func RefreshScheduled(ctx context.Context, q Querier, targetID int64) error {
	_, err := q.Exec(ctx, `UPDATE targets SET scheduled_assignment_id =
		(SELECT id FROM assignments WHERE target_id = $1 ORDER BY assigned_at DESC, id DESC LIMIT 1) WHERE id = $1`, targetID)
	return err
}

// TouchReconciler records a report of a known reconciler: it is live and
// reported at reportAt. The update locks the row, so concurrent reports for
// one reconciler apply one at a time.
func TouchReconciler(ctx context.Context, q Querier, id int64, reportAt time.Time) error {
	_, err := q.Exec(ctx, `UPDATE reconcilers SET retired_at = NULL,
		last_report_at = CASE WHEN $2 > last_report_at THEN $2 ELSE last_report_at END WHERE id = $1`, id, reportAt)
	return err
}

// RetireReconciler marks a live reconciler retired: it stops counting as a
// host of its target, its history stays. It returns its id and what it
// was (id 0: there was no such live reconciler).
func RetireReconciler(ctx context.Context, q Querier, host, name string, now time.Time) (int64, ReconcilerFacts, error) {
	var id int64
	f := ReconcilerFacts{Live: true}
	err := q.QueryRow(ctx, `UPDATE reconcilers SET retired_at = $3
		WHERE retired_at IS NULL AND name = $2 AND host_id = (SELECT id FROM hosts WHERE name = $1)
		RETURNING id, endpoint_id, commit_sha, status`, host, name, now).Scan(&id, &f.EndpointID, &f.Commit, &f.Status)
	if errors.Is(err, ErrNoRows) {
		return 0, f, nil
	}
	return id, f, err
}

// LiveReconciler is a live reconciler's id and key.
type LiveReconciler struct {
	ID  int64
	Key model.ReconcilerKey
}

// SourceReconcilers lists the live reconcilers a source reported.
func SourceReconcilers(ctx context.Context, q Querier, source string) ([]LiveReconciler, error) {
	rows, err := q.Query(ctx, `SELECT r.id, h.name, r.name FROM reconcilers r JOIN hosts h ON h.id = r.host_id
		WHERE r.source = $1 AND r.retired_at IS NULL ORDER BY r.id`, source)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LiveReconciler
	for rows.Next() {
		var l LiveReconciler
		if err := rows.Scan(&l.ID, &l.Key.Host, &l.Key.Name); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// RetireReconcilerID retires a live reconciler by id; it returns what it
// was (ok false: it was not live).
func RetireReconcilerID(ctx context.Context, q Querier, id int64, now time.Time) (f ReconcilerFacts, ok bool, err error) {
	f.Live = true
	err = q.QueryRow(ctx, `UPDATE reconcilers SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL
		RETURNING endpoint_id, commit_sha, status`, id, now).Scan(&f.EndpointID, &f.Commit, &f.Status)
	if errors.Is(err, ErrNoRows) {
		return f, false, nil
	}
	return f, err == nil, err
}

func labelsJSON(labels map[string]string) (string, error) {
	if labels == nil {
		return "{}", nil
	}
	b, err := json.Marshal(labels)
	return string(b), err
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// UpsertAzureResourceGraph stores a poller configuration by name. It
// reports whether anything changed.
func UpsertAzureResourceGraph(ctx context.Context, q Querier, name, specJSON string, now time.Time) (bool, error) {
	var stored string
	err := q.QueryRow(ctx, `SELECT CAST(spec AS TEXT) FROM azure_resource_graphs WHERE name = $1`, name).Scan(&stored)
	if err == nil {
		var a, b any
		if json.Unmarshal([]byte(stored), &a) == nil && json.Unmarshal([]byte(specJSON), &b) == nil && reflect.DeepEqual(a, b) {
			return false, nil
		}
	} else if !errors.Is(err, ErrNoRows) {
		return false, err
	}
	id, created, err := ensureID(ctx, q, `SELECT id FROM azure_resource_graphs WHERE name = $1`, []any{name},
		`INSERT INTO azure_resource_graphs (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $3)`, []any{name, specJSON, now})
	if err != nil || created {
		return err == nil, err
	}
	_, err = q.Exec(ctx, `UPDATE azure_resource_graphs SET spec = $2, updated_at = $3 WHERE id = $1`, id, specJSON, now)
	return err == nil, err
}
