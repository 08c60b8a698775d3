package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
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
// An endpoint first seen in joined form (from a reconciler) learns its
// branch when a target names its parts, and an endpoint in joined form is
// placed on the longest known branch whose repository and branch prefix its
// key, so that commits are compared branch-wide.
func EnsureEndpoint(ctx context.Context, q Querier, ep model.Endpoint, now time.Time) (EndpointRow, error) {
	key := ep.Key()
	var row EndpointRow
	var joined bool
	err := q.QueryRow(ctx, `SELECT id, branch_key, joined FROM endpoints WHERE key = $1`, key).Scan(&row.ID, &row.BranchKey, &joined)
	switch {
	case errors.Is(err, ErrNoRows):
		branchKey, prefix := ep.BranchKey(), ""
		if ep.Joined {
			if err := q.QueryRow(ctx, `SELECT branch_key FROM endpoints
				WHERE branch_prefix <> '' AND ($1 = branch_prefix OR substr($1, 1, length(branch_prefix) + 1) = branch_prefix || '/')
				ORDER BY length(branch_prefix) DESC LIMIT 1`, key).Scan(&branchKey); err != nil && !errors.Is(err, ErrNoRows) {
				return row, err
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
			return row, err
		}
		row = EndpointRow{ID: id, BranchKey: branchKey}
		if !ep.Joined {
			return row, placeJoinedEndpoints(ctx, q, prefix, branchKey)
		}
		return row, nil
	case err != nil:
		return row, err
	}
	if joined && !ep.Joined {
		// A target now tells where repository, branch and path split.
		prefix := model.Endpoint{Repo: ep.Repo, Branch: ep.Branch}.Key()
		row.BranchKey = ep.BranchKey()
		if _, err := q.Exec(ctx, `UPDATE endpoints SET repo = $2, branch = $3, path = $4, joined = $5, branch_key = $6, branch_prefix = $7 WHERE id = $1`,
			row.ID, ep.Repo, ep.Branch, ep.Path, false, row.BranchKey, prefix); err != nil {
			return row, err
		}
		return row, placeJoinedEndpoints(ctx, q, prefix, row.BranchKey)
	}
	return row, nil
}

func placeJoinedEndpoints(ctx context.Context, q Querier, prefix, branchKey string) error {
	_, err := q.Exec(ctx, `UPDATE endpoints SET branch_key = $2
		WHERE joined AND branch_key = '' AND ($1 = key OR substr(key, 1, length($1) + 1) = $1 || '/')`, prefix, branchKey)
	return err
}

// TargetRow is a stored deployment target.
type TargetRow struct {
	ID         int64
	EndpointID int64
	BranchKey  string
}

// UpsertTarget creates or updates the target (workload, environment, name).
// moved reports whether it is new or its endpoint changed, which changes
// which reconcilers count for it.
func UpsertTarget(ctx context.Context, q Querier, workloadID, environmentID int64, name string, ep EndpointRow, labels map[string]string, now time.Time) (t TargetRow, moved bool, err error) {
	lb, err := labelsJSON(labels)
	if err != nil {
		return t, false, err
	}
	id, created, err := ensureID(ctx, q,
		`SELECT id FROM targets WHERE workload_id = $1 AND environment_id = $2 AND name = $3`, []any{workloadID, environmentID, name},
		`INSERT INTO targets (workload_id, environment_id, name, endpoint_id, labels, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		[]any{workloadID, environmentID, name, ep.ID, lb, now})
	if err != nil {
		return t, false, err
	}
	t = TargetRow{ID: id, EndpointID: ep.ID, BranchKey: ep.BranchKey}
	if created {
		return t, true, nil
	}
	n, err := q.Exec(ctx, `UPDATE targets SET endpoint_id = $2 WHERE id = $1 AND endpoint_id <> $2`, id, ep.ID)
	if err != nil {
		return t, false, err
	}
	if labels != nil {
		if _, err := q.Exec(ctx, `UPDATE targets SET labels = $2 WHERE id = $1`, id, lb); err != nil {
			return t, false, err
		}
	}
	return t, n > 0, nil
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
	rows, err := q.Query(ctx, `SELECT `+assignmentCols+` FROM assignments WHERE target_id = $1 ORDER BY assigned_at, id`, targetID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Assignment
	for rows.Next() {
		a, err := scanAssignment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// InsertAssignment records a new assignment; commit "" means pending.
func InsertAssignment(ctx context.Context, q Querier, targetID, versionID int64, commit, fluxSource string, assignedAt, now time.Time) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO assignments (target_id, version_id, commit_sha, flux_source, assigned_at, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		targetID, versionID, nullIfEmpty(commit), fluxSource, assignedAt, now).Scan(&id)
	return id, err
}

// SetAssignmentCommit resolves a pending assignment.
func SetAssignmentCommit(ctx context.Context, q Querier, assignmentID int64, commit string) error {
	_, err := q.Exec(ctx, `UPDATE assignments SET commit_sha = $2 WHERE id = $1 AND commit_sha IS NULL`, assignmentID, commit)
	return err
}

// PendingAssignment is an assignment waiting for its commit.
type PendingAssignment struct {
	ID         int64
	Target     TargetRow
	RecordedAt time.Time
}

// PendingAssignments lists the assignments waiting for the revision of a
// Flux Kustomization ("namespace/name").
func PendingAssignments(ctx context.Context, q Querier, fluxSource string) ([]PendingAssignment, error) {
	rows, err := q.Query(ctx, `SELECT a.id, a.target_id, t.endpoint_id, e.branch_key, a.recorded_at
		FROM assignments a JOIN targets t ON t.id = a.target_id JOIN endpoints e ON e.id = t.endpoint_id
		WHERE a.commit_sha IS NULL AND a.flux_source = $1 ORDER BY a.id`, fluxSource)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PendingAssignment
	for rows.Next() {
		var p PendingAssignment
		if err := rows.Scan(&p.ID, &p.Target.ID, &p.Target.EndpointID, &p.Target.BranchKey, &p.RecordedAt); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RecordCommit notes that sha was seen on an endpoint at seen. It reports
// whether that changed when the commit was first seen there.
func RecordCommit(ctx context.Context, q Querier, endpointID int64, sha string, seen time.Time) (bool, error) {
	n, err := q.Exec(ctx, `INSERT INTO commits (endpoint_id, sha, first_seen) VALUES ($1, $2, $3)
		ON CONFLICT (endpoint_id, sha) DO UPDATE SET first_seen = excluded.first_seen
		WHERE excluded.first_seen < commits.first_seen`, endpointID, sha, seen)
	return n > 0, err
}

// ExpandCommit returns the one full commit on the endpoint's branch that an
// abbreviated sha abbreviates, or sha itself when there is none or several.
func ExpandCommit(ctx context.Context, q Querier, ep EndpointRow, sha string) (string, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT c.sha FROM commits c JOIN endpoints e ON e.id = c.endpoint_id
		WHERE (c.endpoint_id = $1 OR ($2 <> '' AND e.branch_key = $2))
		  AND length(c.sha) > length($3) AND substr(c.sha, 1, length($3)) = $3
		LIMIT 2`, ep.ID, ep.BranchKey, sha)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", err
		}
		found = append(found, s)
	}
	if len(found) == 1 {
		return found[0], rows.Err()
	}
	return sha, rows.Err()
}

// CommitSeen is a commit and when it was first seen on a target's branch.
type CommitSeen struct {
	SHA       string
	FirstSeen time.Time
}

// TargetCommits lists the commits seen on a target's endpoint, each with
// when it was first seen anywhere on the target's branch. With sha set,
// only that commit.
func TargetCommits(ctx context.Context, q Querier, t TargetRow, sha string) ([]CommitSeen, error) {
	rows, err := q.Query(ctx, `SELECT c.sha, (
			SELECT min(c2.first_seen) FROM commits c2 JOIN endpoints e2 ON e2.id = c2.endpoint_id
			WHERE c2.sha = c.sha AND (c2.endpoint_id = $1 OR ($2 <> '' AND e2.branch_key = $2)))
		FROM commits c WHERE c.endpoint_id = $1 AND ($3 = '' OR c.sha = $3)`, t.EndpointID, t.BranchKey, sha)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CommitSeen
	for rows.Next() {
		var c CommitSeen
		if err := rows.Scan(&c.SHA, &c.FirstSeen); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// TargetsToResolve lists the targets whose resolution of sha may have
// changed because sha was recorded on an endpoint at seen: the endpoint's
// own targets, and, when this moved the time sha was first seen on the
// branch, the branch's other targets that have seen sha.
func TargetsToResolve(ctx context.Context, q Querier, ep EndpointRow, sha string, seen time.Time) ([]TargetRow, error) {
	rows, err := q.Query(ctx, `SELECT t.id, t.endpoint_id, e.branch_key FROM targets t
		JOIN endpoints e ON e.id = t.endpoint_id
		JOIN commits c ON c.endpoint_id = t.endpoint_id AND c.sha = $3
		WHERE t.endpoint_id = $1 OR ($2 <> '' AND e.branch_key = $2 AND NOT EXISTS (
			SELECT 1 FROM commits o JOIN endpoints oe ON oe.id = o.endpoint_id
			WHERE o.sha = $3 AND o.endpoint_id <> $1 AND oe.branch_key = $2 AND o.first_seen <= $4))`,
		ep.ID, ep.BranchKey, sha, seen)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TargetRow
	for rows.Next() {
		var t TargetRow
		if err := rows.Scan(&t.ID, &t.EndpointID, &t.BranchKey); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TargetResolutions returns the stored resolution of each commit of a
// target: the assignment in effect, or 0 for an unknown version.
func TargetResolutions(ctx context.Context, q Querier, targetID int64, sha string) (map[string]int64, error) {
	rows, err := q.Query(ctx, `SELECT sha, COALESCE(assignment_id, 0) FROM resolutions WHERE target_id = $1 AND ($2 = '' OR sha = $2)`, targetID, sha)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var s string
		var id int64
		if err := rows.Scan(&s, &id); err != nil {
			return nil, err
		}
		out[s] = id
	}
	return out, rows.Err()
}

// SetResolution stores which assignment (0: none, unknown version) is in
// effect for a target at a commit.
func SetResolution(ctx context.Context, q Querier, targetID int64, sha string, assignmentID int64) error {
	var a any
	if assignmentID != 0 {
		a = assignmentID
	}
	_, err := q.Exec(ctx, `INSERT INTO resolutions (target_id, sha, assignment_id) VALUES ($1, $2, $3)
		ON CONFLICT (target_id, sha) DO UPDATE SET assignment_id = excluded.assignment_id`, targetID, sha, a)
	return err
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
	Retired      bool
	Source       string
	Commit       string
	Status       model.Status
	Message      string
}

// GetReconcilerState reads a reconciler and its latest deployment.
func GetReconcilerState(ctx context.Context, q Querier, host, name string) (ReconcilerState, error) {
	var s ReconcilerState
	var retired *time.Time
	err := q.QueryRow(ctx, `SELECT r.id, e.id, e.branch_key, h.type, h.labels, r.type, e.key, r.last_report_at, r.retired_at, r.source,
			COALESCE(d.commit_sha, ''), COALESCE(d.status, ''), COALESCE(d.message, '')
		FROM hosts h JOIN reconcilers r ON r.host_id = h.id
		JOIN endpoints e ON e.id = r.endpoint_id
		LEFT JOIN deployments d ON d.id = r.current_deployment_id
		WHERE h.name = $1 AND r.name = $2`, host, name).Scan(
		&s.ID, &s.Endpoint.ID, &s.Endpoint.BranchKey, &s.HostType, &s.HostLabels, &s.Type, &s.EndpointKey, &s.LastReportAt, &retired, &s.Source, &s.Commit, &s.Status, &s.Message)
	s.Retired = retired != nil
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
// reports for one reconciler apply one at a time.
func UpsertReconciler(ctx context.Context, q Querier, hostID int64, name, typ, source string, endpointID int64, reportAt time.Time) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO reconcilers (host_id, name, type, source, endpoint_id, last_report_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (host_id, name) DO UPDATE SET type = excluded.type, endpoint_id = excluded.endpoint_id,
			retired_at = NULL,
			source = CASE WHEN excluded.source <> '' THEN excluded.source ELSE reconcilers.source END,
			last_report_at = CASE WHEN excluded.last_report_at > reconcilers.last_report_at THEN excluded.last_report_at ELSE reconcilers.last_report_at END
		RETURNING id`, hostID, name, typ, source, endpointID, reportAt).Scan(&id)
	return id, err
}

// DeploymentRow is a reconciler's deployment of one commit.
type DeploymentRow struct {
	ID      int64
	Status  model.Status
	Message string
}

// UpsertDeployment records that a reconciler is at status for commit,
// keeping every change of status or message in deployment_history, and
// makes it the reconciler's current deployment. It reports whether the
// deployment changed.
func UpsertDeployment(ctx context.Context, q Querier, reconcilerID int64, commit string, status model.Status, message string, at time.Time) (bool, error) {
	var d DeploymentRow
	var since time.Time
	err := q.QueryRow(ctx, `SELECT id, status, message, status_since FROM deployments WHERE reconciler_id = $1 AND commit_sha = $2`,
		reconcilerID, commit).Scan(&d.ID, &d.Status, &d.Message, &since)
	changed := true
	switch {
	case errors.Is(err, ErrNoRows):
		since = at
		err = q.QueryRow(ctx, `INSERT INTO deployments (reconciler_id, commit_sha, status, message, first_seen, status_since, last_changed)
			VALUES ($1, $2, $3, $4, $5, $5, $5) RETURNING id`, reconcilerID, commit, status, message, at).Scan(&d.ID)
	case err == nil && (d.Status != status || d.Message != message):
		if d.Status != status {
			since = at
		}
		_, err = q.Exec(ctx, `UPDATE deployments SET status = $2, message = $3, last_changed = $4, status_since = $5 WHERE id = $1`,
			d.ID, status, message, at, since)
	default:
		changed = false
	}
	if err != nil {
		return false, err
	}
	if changed {
		if _, err := q.Exec(ctx, `INSERT INTO deployment_history (deployment_id, status, message, changed_at) VALUES ($1, $2, $3, $4)`,
			d.ID, status, message, at); err != nil {
			return false, err
		}
	}
	_, err = q.Exec(ctx, `UPDATE reconcilers SET current_deployment_id = $2, commit_sha = $3, status = $4, status_since = $5
		WHERE id = $1 AND (current_deployment_id IS NULL OR current_deployment_id <> $2 OR status <> $4 OR status_since <> $5)`,
		reconcilerID, d.ID, commit, status, since)
	return changed, err
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

// RetireReconciler marks a reconciler retired: it stops counting as a host
// of its target, its history stays. It reports whether it was live.
func RetireReconciler(ctx context.Context, q Querier, host, name string, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE reconcilers SET retired_at = $3
		WHERE retired_at IS NULL AND name = $2 AND host_id = (SELECT id FROM hosts WHERE name = $1)`, host, name, now)
	return n > 0, err
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

// RetireReconcilerID retires a live reconciler by id; it reports whether it
// was live.
func RetireReconcilerID(ctx context.Context, q Querier, id int64, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE reconcilers SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL`, id, now)
	return n > 0, err
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
	_, err = q.Exec(ctx, `INSERT INTO azure_resource_graphs (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`, name, specJSON, now)
	return err == nil, err
}
