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

// ReconcilerKey names a reconciler.
type ReconcilerKey struct{ Host, Name string }

// GetReconcilerStates reads the stored state of many reconcilers; unknown
// ones are absent from the map.
func (s *Store) GetReconcilerStates(ctx context.Context, keys []ReconcilerKey) (map[ReconcilerKey]ReconcilerState, error) {
	out := make(map[ReconcilerKey]ReconcilerState, len(keys))
	if s.Engine() != "postgres" {
		for _, k := range keys {
			st, err := GetReconcilerState(ctx, s.d, k.Host, k.Name)
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
	rows, err := s.d.Query(ctx, `SELECT h.name, r.name, r.id, e.id, e.branch_key, h.type, h.labels, r.type, e.key, r.last_report_at, r.retired_at, r.source,
			r.commit_sha, r.status, COALESCE(d.message, '')
		FROM unnest($1::text[], $2::text[]) AS k(host, name)
		JOIN hosts h ON h.name = k.host
		JOIN reconcilers r ON r.host_id = h.id AND r.name = k.name
		JOIN endpoints e ON e.id = r.endpoint_id
		LEFT JOIN deployments d ON d.id = r.current_deployment_id`, hosts, names)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k ReconcilerKey
		var st ReconcilerState
		var retired *time.Time
		if err := rows.Scan(&k.Host, &k.Name, &st.ID, &st.Endpoint.ID, &st.Endpoint.BranchKey, &st.HostType, &st.HostLabels, &st.Type,
			&st.EndpointKey, &st.LastReportAt, &retired, &st.Source, &st.Commit, &st.Status, &st.Message); err != nil {
			return nil, err
		}
		st.Retired = retired != nil
		out[k] = st
	}
	return out, rows.Err()
}

// KnownReport is a report of a stored reconciler whose host, type and
// endpoint are unchanged.
type KnownReport struct {
	ReconcilerID int64
	EndpointID   int64
	Commit       string
	Status       model.Status
	Message      string
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

// WriteKnownReports writes reports of known reconcilers, at most one per
// reconciler (the caller splits a batch into such rounds), and records
// their commits. It returns the commits that changed when they were first
// seen on an endpoint, which the caller resolves.
func WriteKnownReports(ctx context.Context, q Querier, engine string, rs []KnownReport) ([]NewCommit, error) {
	if engine != "postgres" {
		var out []NewCommit
		for _, r := range rs {
			if err := TouchReconciler(ctx, q, r.ReconcilerID, r.ReportAt); err != nil {
				return nil, err
			}
			if _, err := UpsertDeployment(ctx, q, r.ReconcilerID, r.Commit, r.Status, r.Message, r.At); err != nil {
				return nil, err
			}
			changed, err := RecordCommit(ctx, q, r.EndpointID, r.Commit, r.At)
			if err != nil {
				return nil, err
			}
			if changed {
				out = append(out, NewCommit{r.EndpointID, r.Commit, r.At})
			}
		}
		return out, nil
	}
	// Rows go in reconciler order, so that concurrent batches lock in the
	// same order and do not deadlock (a deadlock would only be retried).
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b KnownReport) int { return cmp.Compare(a.ReconcilerID, b.ReconcilerID) })
	n := len(rs)
	ids, eps := make([]int64, n), make([]int64, n)
	commits, statuses, messages := make([]string, n), make([]string, n), make([]string, n)
	ats, reportAts := make([]time.Time, n), make([]time.Time, n)
	for i, r := range rs {
		ids[i], eps[i], commits[i], statuses[i], messages[i], ats[i], reportAts[i] =
			r.ReconcilerID, r.EndpointID, r.Commit, string(r.Status), r.Message, r.At, r.ReportAt
	}
	// New or changed deployments, with their history rows.
	if _, err := q.Exec(ctx, `WITH changed AS (
			INSERT INTO deployments (reconciler_id, commit_sha, status, message, first_seen, status_since, last_changed)
			SELECT id, sha, st, msg, at, at, at FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS u(id, sha, st, msg, at)
			ON CONFLICT (reconciler_id, commit_sha) DO UPDATE SET status = excluded.status, message = excluded.message,
				last_changed = excluded.last_changed,
				status_since = CASE WHEN deployments.status <> excluded.status THEN excluded.status_since ELSE deployments.status_since END
			WHERE deployments.status <> excluded.status OR deployments.message <> excluded.message
			RETURNING id, status, message, last_changed)
		INSERT INTO deployment_history (deployment_id, status, message, changed_at)
		SELECT id, status, message, last_changed FROM changed`, ids, commits, statuses, messages, ats); err != nil {
		return nil, err
	}
	// Each reconciler: live, its report time, its current deployment; one
	// update per row, in id order.
	if _, err := q.Exec(ctx, `UPDATE reconcilers r SET retired_at = NULL, last_report_at = GREATEST(r.last_report_at, u.at),
			current_deployment_id = d.id, commit_sha = d.commit_sha, status = d.status, status_since = d.status_since
		FROM (SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS u(id, sha, at) ORDER BY id) u
		JOIN deployments d ON d.reconciler_id = u.id AND d.commit_sha = u.sha
		WHERE r.id = u.id`, ids, commits, reportAts); err != nil {
		return nil, err
	}
	// Commits, once per (endpoint, commit), earliest time first.
	type ck struct {
		ep  int64
		sha string
	}
	first := map[ck]time.Time{}
	for i := range rs {
		k := ck{eps[i], commits[i]}
		if t, ok := first[k]; !ok || ats[i].Before(t) {
			first[k] = ats[i]
		}
	}
	ceps, cshas, cats := make([]int64, 0, len(first)), make([]string, 0, len(first)), make([]time.Time, 0, len(first))
	for k, t := range first {
		ceps, cshas, cats = append(ceps, k.ep), append(cshas, k.sha), append(cats, t)
	}
	rows, err := q.Query(ctx, `INSERT INTO commits (endpoint_id, sha, first_seen)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
		ON CONFLICT (endpoint_id, sha) DO UPDATE SET first_seen = excluded.first_seen WHERE excluded.first_seen < commits.first_seen
		RETURNING endpoint_id, sha, first_seen`, ceps, cshas, cats)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []NewCommit
	for rows.Next() {
		var c NewCommit
		if err := rows.Scan(&c.EndpointID, &c.SHA, &c.Seen); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
