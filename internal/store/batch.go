package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// Batch writes: many reports of known reconcilers in a few statements.
// PostgreSQL takes arrays (unnest), so a batch costs the same few round
// trips whatever its size; SQLite runs in-process, where a loop inside one
// transaction is as fast.
//
// Every batch takes its row locks in one global order (reconcilers by id,
// then their deployments, then commits by endpoint and sha), so that
// concurrent batches wait for each other instead of deadlocking.

// GetReconcilerStates reads the stored state of many reconcilers; unknown
// ones are absent from the map.
func GetReconcilerStates(ctx context.Context, q Querier, engine string, keys []model.ReconcilerKey) (map[model.ReconcilerKey]ReconcilerState, error) {
	out := make(map[model.ReconcilerKey]ReconcilerState, len(keys))
	if engine != "postgres" {
		for _, k := range keys {
			st, err := GetReconcilerState(ctx, q, k.Host, k.Name)
			if errors.Is(err, ErrNoRows) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[k] = st
		}
		return out, nil
	}
	hosts := make([]string, len(keys))
	names := make([]string, len(keys))
	for i, k := range keys {
		hosts[i], names[i] = k.Host, k.Name
	}
	rows, err := q.Query(ctx, `SELECT h.name, r.name, `+reconcilerStateCols+`
		FROM (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS k(host, name)
		JOIN hosts h ON h.name = k.host
		JOIN reconcilers r ON r.host_id = h.id AND r.name = k.name
		JOIN endpoints e ON e.id = r.endpoint_id
		LEFT JOIN deployments d ON d.id = r.current_deployment_id`, hosts, names)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k model.ReconcilerKey
		st, err := scanReconcilerState(rows, &k)
		if err != nil {
			return nil, err
		}
		out[k] = st
	}
	return out, rows.Err()
}

// KnownReport is a report of a stored reconciler whose host, type and
// endpoint are unchanged, no older than its current deployment.
type KnownReport struct {
	ReconcilerID int64
	EndpointID   int64
	Commit       string
	Status       model.Status
	Message      string
	MessageBytes int
	At           time.Time // when the reconciler reached the state
	ReportAt     time.Time // when the hub received it
}

// NewCommit is a commit first seen on an endpoint (or seen earlier than
// recorded) by a batch.
type NewCommit struct {
	EndpointID int64
	SHA        string
	Seen       time.Time
}

// LockReconcilers takes the row locks of reconcilers in id order: every
// writer locks the reconcilers it changes first, in this one order.
func LockReconcilers(ctx context.Context, q Querier, engine string, ids []int64) error {
	if engine != "postgres" || len(ids) == 0 {
		return nil // SQLite writers take the whole database's lock
	}
	ids = slices.Sorted(slices.Values(ids))
	_, err := q.Exec(ctx, `SELECT id FROM reconcilers WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`, slices.Compact(ids))
	return err
}

// WriteKnownReports writes reports of known reconcilers, locked by the
// caller, at most one per reconciler (the caller splits a batch into such
// rounds): their deployments, with history, and the reconcilers' current
// deployment and report time. Their commits are the caller's to record
// (RecordCommits).
func WriteKnownReports(ctx context.Context, q Querier, engine string, rs []KnownReport) error {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b KnownReport) int { return cmp.Compare(a.ReconcilerID, b.ReconcilerID) })
	if engine != "postgres" {
		for _, r := range rs {
			if err := TouchReconciler(ctx, q, r.ReconcilerID, r.ReportAt); err != nil {
				return err
			}
			if _, err := UpsertDeployment(ctx, q, r.ReconcilerID, r.Commit, r.Status, r.Message, r.MessageBytes, r.At); err != nil {
				return err
			}
		}
		return nil
	}
	n := len(rs)
	ids := make([]int64, n)
	shas, statuses, messages := make([]string, n), make([]string, n), make([]string, n)
	sizes := make([]int32, n)
	ats, reportAts := make([]time.Time, n), make([]time.Time, n)
	for i, r := range rs {
		ids[i], shas[i], statuses[i], messages[i], sizes[i], ats[i], reportAts[i] =
			r.ReconcilerID, r.Commit, string(r.Status), r.Message, int32(r.MessageBytes), r.At, r.ReportAt
	}
	// New or changed deployments, with their history rows.
	if _, err := q.Exec(ctx, `WITH changed AS (
			INSERT INTO deployments (reconciler_id, commit_sha, status, message, message_bytes, first_seen, status_since, last_changed)
			SELECT id, sha, st, msg, size, at, at, at
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[]) AS u(id, sha, st, msg, size, at)
			ON CONFLICT (reconciler_id, commit_sha) DO UPDATE SET status = excluded.status, message = excluded.message,
				message_bytes = excluded.message_bytes, last_changed = excluded.last_changed,
				status_since = CASE WHEN deployments.status <> excluded.status THEN excluded.status_since ELSE deployments.status_since END
			WHERE (deployments.status <> excluded.status OR deployments.message <> excluded.message)
			  AND deployments.last_changed <= excluded.last_changed
			RETURNING id, status, message, message_bytes, last_changed)
		INSERT INTO deployment_history (deployment_id, status, message, message_bytes, changed_at)
		SELECT id, status, message, message_bytes, last_changed FROM changed ORDER BY id`,
		ids, shas, statuses, messages, sizes, ats); err != nil {
		return err
	}
	// Each reconciler: live, its report time, its current deployment.
	_, err := q.Exec(ctx, `UPDATE reconcilers r SET retired_at = NULL, last_report_at = GREATEST(r.last_report_at, u.report_at),
			current_deployment_id = d.id, commit_sha = d.commit_sha, status = d.status, status_since = d.status_since
		FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS u(id, sha, at, report_at)
		JOIN deployments d ON d.reconciler_id = u.id AND d.commit_sha = u.sha
		WHERE r.id = u.id AND NOT EXISTS (
			SELECT 1 FROM deployments c WHERE c.id = r.current_deployment_id AND c.id <> d.id AND c.last_changed > u.at)`,
		ids, shas, ats, reportAts)
	return err
}

// RecordCommits notes when commits were seen on endpoints (see
// RecordCommit), each (endpoint, commit) once at its earliest time, in
// (endpoint, sha) order. It returns the ones whose first sighting on their
// endpoint changed, in that order.
func RecordCommits(ctx context.Context, q Querier, engine string, seen []NewCommit) ([]NewCommit, error) {
	seen = slices.Clone(seen)
	slices.SortFunc(seen, func(a, b NewCommit) int {
		return cmp.Or(cmp.Compare(a.EndpointID, b.EndpointID), cmp.Compare(a.SHA, b.SHA), a.Seen.Compare(b.Seen))
	})
	seen = slices.CompactFunc(seen, func(a, b NewCommit) bool { return a.EndpointID == b.EndpointID && a.SHA == b.SHA })
	if engine != "postgres" {
		var out []NewCommit
		for _, c := range seen {
			changed, err := RecordCommit(ctx, q, c.EndpointID, c.SHA, c.Seen)
			if err != nil {
				return nil, err
			}
			if changed {
				out = append(out, c)
			}
		}
		return out, nil
	}
	eps, shas, ats := make([]int64, len(seen)), make([]string, len(seen)), make([]time.Time, len(seen))
	for i, c := range seen {
		eps[i], shas[i], ats[i] = c.EndpointID, c.SHA, c.Seen
	}
	out, err := Collect(ctx, q, `INSERT INTO commits (endpoint_id, sha, first_seen)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
		ON CONFLICT (endpoint_id, sha) DO UPDATE SET first_seen = excluded.first_seen WHERE excluded.first_seen < commits.first_seen
		RETURNING endpoint_id, sha, first_seen`, []any{eps, shas, ats}, func(r Row) (NewCommit, error) {
		var c NewCommit
		err := r.Scan(&c.EndpointID, &c.SHA, &c.Seen)
		return c, err
	})
	slices.SortFunc(out, func(a, b NewCommit) int {
		return cmp.Or(cmp.Compare(a.EndpointID, b.EndpointID), cmp.Compare(a.SHA, b.SHA))
	})
	return out, err
}
