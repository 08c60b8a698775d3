package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
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
// ones are absent from the map. forUpdate also locks them, in id order
// (inside a transaction, on PostgreSQL; SQLite writers hold the database's
// lock).
func GetReconcilerStates(ctx context.Context, q Querier, engine string, keys []model.ReconcilerKey, forUpdate bool) (map[model.ReconcilerKey]ReconcilerState, error) {
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
	const named = `FROM (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS k(host, name)
		JOIN hosts h ON h.name = k.host
		JOIN reconcilers r ON r.host_id = h.id AND r.name = k.name`
	if forUpdate {
		ids, err := Collect(ctx, q, `SELECT r.id `+named+` ORDER BY r.id FOR UPDATE OF r`, []any{hosts, names}, scanID)
		if err != nil {
			return nil, err
		}
		return GetReconcilerStatesByID(ctx, q, engine, ids, false)
	}
	rows, err := q.Query(ctx, `SELECT h.name, r.name, `+reconcilerStateCols+` `+named+`
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

// GetReconcilerStatesByID is GetReconcilerStates for reconcilers known by
// id (they are never deleted, so an id stays theirs): the same rows, found
// by primary key instead of by name. Ids with no reconciler are absent.
//
// On PostgreSQL forUpdate locks the reconcilers first and reads them in a
// second statement: a locking read that waits for another writer gets the
// new version of the row it locks but the rows it joins (the current
// deployment, the host) as they were before that writer committed, and a
// batch would compare its reports with a state that is gone.
func GetReconcilerStatesByID(ctx context.Context, q Querier, engine string, ids []int64, forUpdate bool) (map[model.ReconcilerKey]ReconcilerState, error) {
	out := make(map[model.ReconcilerKey]ReconcilerState, len(ids))
	for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), 1000) {
		if forUpdate && engine == "postgres" {
			if _, err := q.Exec(ctx, `SELECT id FROM reconcilers WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`, chunk); err != nil {
				return nil, err
			}
		}
		var a Args
		rows, err := q.Query(ctx, `SELECT h.name, r.name, `+reconcilerStateCols+reconcilerStateFrom+`
			WHERE `+In(engine, &a, "r.id", chunk), a...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k model.ReconcilerKey
			st, err := scanReconcilerState(rows, &k)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
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
	// Current is the commit of the reconciler's current deployment before
	// the batch ("" none), as the caller read it with its lock.
	Current string
}

// NewCommit is a commit first seen on an endpoint (or seen earlier than
// recorded) by a batch.
type NewCommit struct {
	EndpointID int64
	SHA        string
	Seen       time.Time
}

// WriteKnownReports writes reports of known reconcilers, locked by the
// caller, in order (several may name one reconciler): their deployments,
// with a history row for each change, and the reconcilers' current
// deployment and report time. It returns the indexes of the reports older than
// the last change of their deployment, which the caller writes one by one
// (UpsertDeployment: history only), the history rows it wrote, and, on
// PostgreSQL, the state of each deployment it changed (their endpoints
// left to the caller). Their commits are the caller's to record
// (RecordCommits).
//
// On PostgreSQL the batch is worked out in memory from one read of the
// deployments it names, with the rules of UpsertDeployment, and written in
// three statements whatever its size: each deployment and each reconciler
// once however many of its reports the batch holds, and every history row.
func WriteKnownReports(ctx context.Context, q Querier, engine string, rs []KnownReport) ([]int, map[DeploymentKey]KnownDeployment, []HistoryChange, error) {
	if engine != "postgres" {
		var changes []HistoryChange
		for _, r := range rs {
			if err := TouchReconciler(ctx, q, r.ReconcilerID, r.ReportAt); err != nil {
				return nil, nil, nil, err
			}
			wrote, err := UpsertDeployment(ctx, q, r.ReconcilerID, r.Commit, r.Status, r.Message, r.MessageBytes, r.At)
			if err != nil {
				return nil, nil, nil, err
			}
			if wrote {
				changes = append(changes, HistoryChange{ReconcilerID: r.ReconcilerID, Commit: r.Commit, Status: r.Status, At: r.At})
			}
		}
		return nil, nil, changes, nil
	}
	deps, err := readDeployments(ctx, q, rs)
	if err != nil {
		return nil, nil, nil, err
	}
	type reconcilerWrite struct {
		current  deploymentKey
		has      bool
		reportAt time.Time
	}
	recs := make(map[int64]*reconcilerWrite, len(rs))
	type historyRow struct {
		key deploymentKey
		r   int // its report, in rs
	}
	history := make([]historyRow, 0, len(rs))
	var late []int
	for i, r := range rs {
		k := deploymentKey{r.ReconcilerID, r.Commit}
		rec := recs[r.ReconcilerID]
		if rec == nil {
			rec = &reconcilerWrite{}
			if c := (deploymentKey{r.ReconcilerID, r.Current}); deps[c] != nil {
				rec.current, rec.has = c, true
			}
			recs[r.ReconcilerID] = rec
		}
		if r.ReportAt.After(rec.reportAt) {
			rec.reportAt = r.ReportAt
		}
		// The reconciler's current deployment moves here unless another
		// one changed later.
		moves := !rec.has || rec.current == k || !deps[rec.current].last.After(r.At)
		d, changed, isLate := nextDeployment(deps[k], r.Status, r.Message, r.MessageBytes, r.At, moves && rec.has && rec.current != k)
		if isLate {
			late = append(late, i)
			continue
		}
		deps[k] = d
		if changed {
			d.dirty = true
			history = append(history, historyRow{k, i})
		}
		if moves {
			rec.current, rec.has = k, true
		}
	}

	// Deployments, in key order: those stored change in place by id (an
	// update costs half an upsert's work, which locks the row it finds
	// first), new ones are inserted (no one else writes the deployments of
	// a locked reconciler, so they cannot exist meanwhile).
	keys := slices.SortedFunc(maps.Keys(deps), compareDeploymentKeys)
	var stored, fresh deploymentColumns
	for _, k := range keys {
		if d := deps[k]; d.dirty && d.id != 0 {
			stored.add(k, d)
		} else if d.dirty {
			fresh.add(k, d)
		}
	}
	if len(stored.rids) > 0 {
		if _, err := q.Exec(ctx, `UPDATE deployments d SET status = u.status, message = u.message, message_bytes = u.bytes,
				status_since = u.since, last_changed = u.last, first_success_at = u.success, first_failure_at = u.failure
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
				AS u(id, status, message, bytes, since, last, success, failure)
			WHERE d.id = u.id`, stored.ids, stored.statuses, stored.messages, stored.sizes, stored.sinces, stored.lasts, stored.successes, stored.fails); err != nil {
			return nil, nil, nil, err
		}
	}
	if len(fresh.rids) > 0 {
		ids, err := Collect(ctx, q, `INSERT INTO deployments (reconciler_id, commit_sha, status, message, message_bytes, first_seen, status_since, last_changed, first_success_at, first_failure_at)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
			RETURNING reconciler_id, commit_sha, id`, []any{fresh.rids, fresh.shas, fresh.statuses, fresh.messages, fresh.sizes, fresh.firstSeens, fresh.sinces, fresh.lasts, fresh.successes, fresh.fails},
			func(r Row) (deploymentRow, error) {
				var d deploymentRow
				err := r.Scan(&d.key.reconciler, &d.key.sha, &d.id)
				return d, err
			})
		if err != nil {
			return nil, nil, nil, err
		}
		for _, d := range ids {
			deps[d.key].id = d.id
		}
	}

	// History, in report order.
	if len(history) > 0 {
		n := len(history)
		ids, recIDs, statuses, messages, sizes, ats := make([]int64, n), make([]int64, n), make([]string, n), make([]string, n), make([]int32, n), make([]time.Time, n)
		for i, h := range history {
			r := &rs[h.r]
			ids[i], recIDs[i], statuses[i], messages[i], sizes[i], ats[i] = deps[h.key].id, h.key.reconciler, string(r.Status), r.Message, int32(r.MessageBytes), r.At
		}
		if _, err := q.Exec(ctx, `INSERT INTO deployment_history (deployment_id, reconciler_id, status, message, message_bytes, changed_at)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::timestamptz[])`, ids, recIDs, statuses, messages, sizes, ats); err != nil {
			return nil, nil, nil, err
		}
	}

	// Each reconciler once, in id order: live, its report time, its
	// current deployment.
	var touchOnly []int64
	var recIDs, depIDs []int64
	var recShas, recStatuses []string
	var recSinces, reportAts []time.Time
	for _, id := range slices.Sorted(maps.Keys(recs)) {
		rec := recs[id]
		if !rec.has {
			touchOnly = append(touchOnly, id)
			continue
		}
		d := deps[rec.current]
		recIDs, depIDs, recShas, recStatuses = append(recIDs, id), append(depIDs, d.id), append(recShas, rec.current.sha), append(recStatuses, string(d.status))
		recSinces, reportAts = append(recSinces, d.since), append(reportAts, rec.reportAt)
	}
	if len(recIDs) > 0 {
		if _, err := q.Exec(ctx, `UPDATE reconcilers r SET retired_at = NULL, last_report_at = GREATEST(r.last_report_at, u.report_at),
				current_deployment_id = u.dep, commit_sha = u.sha, status = u.st, status_since = u.since
			FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[]) AS u(id, dep, sha, st, since, report_at)
			WHERE r.id = u.id`, recIDs, depIDs, recShas, recStatuses, recSinces, reportAts); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, id := range touchOnly {
		if err := TouchReconciler(ctx, q, id, recs[id].reportAt); err != nil {
			return nil, nil, nil, err
		}
	}
	changes := make([]HistoryChange, len(history))
	for i, h := range history {
		changes[i] = HistoryChange{ReconcilerID: h.key.reconciler, Commit: h.key.sha, Status: rs[h.r].Status, At: rs[h.r].At}
	}
	written := make(map[DeploymentKey]KnownDeployment, len(history))
	for k, d := range deps {
		if d.dirty {
			written[DeploymentKey{ReconcilerID: k.reconciler, Commit: k.sha}] = KnownDeployment{Status: string(d.status), Since: d.since, Last: d.last,
				FirstSuccess: d.firstSuccess, FirstFailure: d.firstFailure}
		}
	}
	return late, written, changes, nil
}

// deploymentColumns are deployments to write, a column each.
type deploymentColumns struct {
	ids, rids                 []int64
	shas, statuses, messages  []string
	sizes                     []int32
	firstSeens, sinces, lasts []time.Time
	successes, fails          []*time.Time
}

func (c *deploymentColumns) add(k deploymentKey, d *deploymentRow) {
	c.ids, c.rids, c.shas, c.statuses, c.messages = append(c.ids, d.id), append(c.rids, k.reconciler), append(c.shas, k.sha), append(c.statuses, string(d.status)), append(c.messages, d.message)
	c.sizes, c.firstSeens, c.sinces, c.lasts = append(c.sizes, int32(d.bytes)), append(c.firstSeens, d.firstSeen), append(c.sinces, d.since), append(c.lasts, d.last)
	c.successes, c.fails = append(c.successes, d.firstSuccess), append(c.fails, d.firstFailure)
}

// deploymentKey names a deployment: a reconciler's of one commit.
type deploymentKey struct {
	reconciler int64
	sha        string
}

func compareDeploymentKeys(a, b deploymentKey) int {
	return cmp.Or(cmp.Compare(a.reconciler, b.reconciler), cmp.Compare(a.sha, b.sha))
}

// deploymentRow is a deployment as WriteKnownReports works it out (id 0:
// new; dirty: to write).
type deploymentRow struct {
	key                        deploymentKey
	id                         int64
	status                     model.Status
	message                    string
	bytes                      int
	firstSeen, since, last     time.Time
	firstSuccess, firstFailure *time.Time
	dirty                      bool
}

// nextDeployment is a deployment (nil: none yet) after a report of it:
// the state it moves to and whether that is a change (a history row), or
// late when the report is older than the deployment's last change (its
// state stays; the report is history only). returning says that the
// report makes the stored deployment its reconciler's current one again
// (the reconciler went back to a commit it had left): that is a change
// even at the same status and message, so that history, and time travel
// from it, see the return; the status's since stays its run's first
// change.
func nextDeployment(d *deploymentRow, status model.Status, message string, bytes int, at time.Time, returning bool) (next *deploymentRow, changed, late bool) {
	switch {
	case d == nil:
		d = &deploymentRow{status: status, message: message, bytes: bytes, firstSeen: at, since: at, last: at}
		d.noteFirsts(status, at)
		return d, true, false
	case at.Before(d.last):
		return d, false, true
	case d.status == status && d.message == message && !returning:
		return d, false, false
	}
	n := *d
	if n.status != status {
		n.since = at
	}
	n.status, n.message, n.bytes, n.last = status, message, bytes, at
	n.noteFirsts(status, at)
	return &n, true, false
}

// noteFirsts moves a deployment's first success or first failure to at
// when a report of status at that time comes before it (firstAtSQL says
// the same in SQL).
func (d *deploymentRow) noteFirsts(status model.Status, at time.Time) {
	first := func(t *time.Time, want model.Status) *time.Time {
		if status == want && (t == nil || t.After(at)) {
			return &at
		}
		return t
	}
	d.firstSuccess, d.firstFailure = first(d.firstSuccess, model.StatusSuccess), first(d.firstFailure, model.StatusFailure)
}

// readDeployments reads the stored deployments that reports name and the
// reconcilers' current ones, by key.
func readDeployments(ctx context.Context, q Querier, rs []KnownReport) (map[deploymentKey]*deploymentRow, error) {
	seen := make(map[deploymentKey]bool, len(rs))
	for _, r := range rs {
		seen[deploymentKey{r.ReconcilerID, r.Commit}] = true
		if r.Current != "" {
			seen[deploymentKey{r.ReconcilerID, r.Current}] = true
		}
	}
	rids, shas := make([]int64, 0, len(seen)), make([]string, 0, len(seen))
	for k := range seen {
		rids, shas = append(rids, k.reconciler), append(shas, k.sha)
	}
	rows, err := Collect(ctx, q, `SELECT d.reconciler_id, d.commit_sha, d.id, d.status, d.message, d.message_bytes, d.first_seen, d.status_since, d.last_changed, d.first_success_at, d.first_failure_at
		FROM unnest($1::bigint[], $2::text[]) AS k(rid, sha)
		JOIN deployments d ON d.reconciler_id = k.rid AND d.commit_sha = k.sha`,
		[]any{rids, shas}, func(r Row) (*deploymentRow, error) {
			var d deploymentRow
			err := r.Scan(&d.key.reconciler, &d.key.sha, &d.id, &d.status, &d.message, &d.bytes, &d.firstSeen, &d.since, &d.last, &d.firstSuccess, &d.firstFailure)
			d.firstSeen, d.since, d.last = d.firstSeen.UTC(), d.since.UTC(), d.last.UTC()
			return &d, err
		})
	if err != nil {
		return nil, fmt.Errorf("read deployments: %w", err)
	}
	out := make(map[deploymentKey]*deploymentRow, len(seen)) // the batch's new deployments join it
	for _, d := range rows {
		out[d.key] = d
	}
	return out, nil
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
	// New commits, and earlier sightings of known ones: rows that stay as
	// they are are not locked, so that batches seeing the same commits do
	// not wait for each other.
	out, err := Collect(ctx, q, `WITH u AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS u(ep, sha, at)),
		inserted AS (INSERT INTO commits (endpoint_id, sha, first_seen) SELECT ep, sha, at FROM u
			ON CONFLICT DO NOTHING RETURNING endpoint_id, sha, first_seen),
		earlier AS (UPDATE commits c SET first_seen = u.at FROM u
			WHERE c.endpoint_id = u.ep AND c.sha = u.sha AND c.first_seen > u.at RETURNING c.endpoint_id, c.sha, c.first_seen)
		SELECT * FROM inserted UNION ALL SELECT * FROM earlier`, []any{eps, shas, ats}, func(r Row) (NewCommit, error) {
		var c NewCommit
		err := r.Scan(&c.EndpointID, &c.SHA, &c.Seen)
		return c, err
	})
	slices.SortFunc(out, func(a, b NewCommit) int {
		return cmp.Or(cmp.Compare(a.EndpointID, b.EndpointID), cmp.Compare(a.SHA, b.SHA))
	})
	return out, err
}

// HostFacts is what a report says of its host: a type ("" keeps the
// stored one) and labels (nil keeps them).
type HostFacts struct {
	Name   string
	Type   string
	Labels map[string]string
}

// EnsureHosts returns the ids of hosts by name, creating the missing ones
// (in name order) and updating given types and labels.
func EnsureHosts(ctx context.Context, q Querier, engine string, hosts []HostFacts, now time.Time) (map[string]int64, error) {
	out := make(map[string]int64, len(hosts))
	hosts = slices.Clone(hosts)
	slices.SortFunc(hosts, func(a, b HostFacts) int { return cmp.Compare(a.Name, b.Name) })
	if engine != "postgres" {
		for _, h := range hosts {
			id, err := EnsureHost(ctx, q, h.Name, h.Type, h.Labels, now)
			if err != nil {
				return nil, err
			}
			out[h.Name] = id
		}
		return out, nil
	}
	n := len(hosts)
	names, types, labels, setLabels := make([]string, n), make([]string, n), make([]string, n), make([]bool, n)
	for i, h := range hosts {
		lb, err := labelsJSON(h.Labels)
		if err != nil {
			return nil, err
		}
		names[i], types[i], labels[i], setLabels[i] = h.Name, h.Type, lb, h.Labels != nil
	}
	if _, err := q.Exec(ctx, `INSERT INTO hosts (name, type, labels, created_at)
		SELECT name, CASE WHEN typ = '' THEN 'cluster' ELSE typ END, CAST(lb AS JSONB), $4
		FROM unnest($1::text[], $2::text[], $3::text[]) AS u(name, typ, lb)
		ON CONFLICT DO NOTHING`, names, types, labels, now); err != nil {
		return nil, fmt.Errorf("insert hosts: %w", err)
	}
	rows, err := Collect(ctx, q, `UPDATE hosts h SET type = CASE WHEN u.typ = '' THEN h.type ELSE u.typ END,
			labels = CASE WHEN u.set THEN CAST(u.lb AS JSONB) ELSE h.labels END
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) AS u(name, typ, lb, set)
		WHERE h.name = u.name RETURNING h.id, h.name`, []any{names, types, labels, setLabels}, func(r Row) (LiveReconciler, error) {
		var x LiveReconciler
		err := r.Scan(&x.ID, &x.Key.Host)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("update hosts: %w", err)
	}
	for _, x := range rows {
		out[x.Key.Host] = x.ID
	}
	return out, nil
}

// ReconcilerUpsert is a reconciler to create or update: live, of its type,
// endpoint and (non-empty) source, reported at ReportAt.
type ReconcilerUpsert struct {
	HostID     int64
	Name       string
	Type       string
	Source     string
	EndpointID int64
	ReportAt   time.Time
}

// ReconcilerOf names a reconciler by its host's id.
type ReconcilerOf struct {
	HostID int64
	Name   string
}

// Upserted is a reconciler UpsertReconcilers created or updated: Before is
// what it was when it existed (a concurrent writer may just have created
// it).
type Upserted struct {
	ID     int64
	Before *ReconcilerFacts
}

// UpsertReconcilers creates or updates reconcilers, in (host, name) order,
// locking them.
func UpsertReconcilers(ctx context.Context, q Querier, engine string, rs []ReconcilerUpsert) (map[ReconcilerOf]Upserted, error) {
	out := make(map[ReconcilerOf]Upserted, len(rs))
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b ReconcilerUpsert) int {
		return cmp.Or(cmp.Compare(a.HostID, b.HostID), cmp.Compare(a.Name, b.Name))
	})
	if engine != "postgres" {
		for _, r := range rs {
			id, before, err := UpsertReconciler(ctx, q, r.HostID, r.Name, r.Type, r.Source, r.EndpointID, r.ReportAt)
			if err != nil {
				return nil, err
			}
			out[ReconcilerOf{r.HostID, r.Name}] = Upserted{id, before}
		}
		return out, nil
	}
	n := len(rs)
	hids, eps := make([]int64, n), make([]int64, n)
	names, types, sources := make([]string, n), make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	for i, r := range rs {
		hids[i], names[i], types[i], sources[i], eps[i], ats[i] = r.HostID, r.Name, r.Type, r.Source, r.EndpointID, r.ReportAt
	}
	type row struct {
		id, host int64
		name     string
		before   ReconcilerFacts
	}
	scanRow := func(r Row) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.host, &x.name, &x.before.EndpointID, &x.before.Commit, &x.before.Status, &x.before.Live)
		return x, err
	}
	inserted, err := Collect(ctx, q, `INSERT INTO reconcilers (host_id, name, type, source, endpoint_id, last_report_at, created_at)
		SELECT * , at FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[]) AS u(hid, name, typ, src, ep, at)
		ON CONFLICT DO NOTHING
		RETURNING id, host_id, name, endpoint_id, commit_sha, status, retired_at IS NULL`, []any{hids, names, types, sources, eps, ats}, scanRow)
	if err != nil {
		return nil, fmt.Errorf("insert reconcilers: %w", err)
	}
	created := map[ReconcilerOf]bool{}
	for _, x := range inserted {
		created[ReconcilerOf{x.host, x.name}] = true
		out[ReconcilerOf{x.host, x.name}] = Upserted{ID: x.id}
	}
	// The others existed (none in a fleet's first sweep): lock them and
	// read what they were, then update.
	var otherHids []int64
	var otherNames []string
	index := map[ReconcilerOf]int{}
	for i, r := range rs {
		k := ReconcilerOf{r.HostID, r.Name}
		index[k] = i
		if !created[k] {
			otherHids, otherNames = append(otherHids, r.HostID), append(otherNames, r.Name)
		}
	}
	if len(otherHids) == 0 {
		return out, nil
	}
	existing, err := Collect(ctx, q, `SELECT r.id, r.host_id, r.name, r.endpoint_id, r.commit_sha, r.status, r.retired_at IS NULL
		FROM unnest($1::bigint[], $2::text[]) AS u(hid, name)
		JOIN reconcilers r ON r.host_id = u.hid AND r.name = u.name ORDER BY r.id FOR UPDATE OF r`, []any{otherHids, otherNames}, scanRow)
	if err != nil {
		return nil, fmt.Errorf("lock reconcilers: %w", err)
	}
	var ids []int64
	var upd []int
	for _, x := range existing {
		k := ReconcilerOf{x.host, x.name}
		before := x.before
		out[k] = Upserted{ID: x.id, Before: &before}
		ids = append(ids, x.id)
		upd = append(upd, index[k])
	}
	if len(ids) == 0 {
		return out, nil
	}
	utypes, usources, ueps, uats := make([]string, len(ids)), make([]string, len(ids)), make([]int64, len(ids)), make([]time.Time, len(ids))
	for j, i := range upd {
		utypes[j], usources[j], ueps[j], uats[j] = types[i], sources[i], eps[i], ats[i]
	}
	if _, err := q.Exec(ctx, `UPDATE reconcilers r SET type = u.typ, endpoint_id = u.ep, retired_at = NULL,
			source = CASE WHEN u.src <> '' THEN u.src ELSE r.source END, last_report_at = GREATEST(r.last_report_at, u.at)
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[]) AS u(id, typ, src, ep, at)
		WHERE r.id = u.id`, ids, utypes, usources, ueps, uats); err != nil {
		return nil, fmt.Errorf("update reconcilers: %w", err)
	}
	return out, nil
}

// TouchReconcilers records reports that repeat the reconcilers' state: they
// are live and reported at reportAt.
func TouchReconcilers(ctx context.Context, q Querier, engine string, ids []int64, reportAt time.Time) error {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if engine != "postgres" {
		for _, id := range ids {
			if err := TouchReconciler(ctx, q, id, reportAt); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := q.Exec(ctx, `UPDATE reconcilers SET retired_at = NULL, last_report_at = GREATEST(last_report_at, $2)
		WHERE id = ANY($1::bigint[])`, ids, reportAt)
	return err
}
