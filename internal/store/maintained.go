package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The maintained state (migration 0005): what the reports read, kept by
// ingest in the same transaction as the change that moves it.
//
//   - endpoint_counts: live reconcilers by (endpoint, commit, status),
//     adjusted by deltas (concurrent writers add up);
//   - reconciler_assignments: each reconciler's latest state for each
//     assignment of its targets, recomputed for the (reconciler, target,
//     assignment) triples a change touches;
//   - assignment_outcomes: per assignment, adjusted by deltas from the
//     reconciler_assignments rows that change, or recomputed from them
//     under the outcome row's lock (OutcomeChanges says when);
//   - drift: per live (reconciler, target), recomputed for the reconcilers
//     and targets a change touches;
//   - host_environments: the environments each host deploys to, in host
//     name order, recomputed for the hosts whose reconcilers or whose
//     endpoints' targets a change moves.
//
// Rebuild recomputes all of it from the primary tables, and Check compares
// what is stored with that recomputation.

// maintainedVersion changes when what the maintained tables mean changes;
// the hub rebuilds them when it starts on an older version.
const maintainedVersion = 2 // 2: outcomes count each host's first success

// CountKey is a group of endpoint_counts.
type CountKey struct {
	EndpointID int64
	Commit     string
	Status     string
}

// CountDelta is what a write changes in an endpoint_counts group: hosts
// added (negative: removed), and the latest change time and the earliest
// status time of the reconcilers it holds after the write (zero: none).
type CountDelta struct {
	Hosts    int
	Latest   time.Time
	Earliest time.Time
}

// endOfTime is after every time a store holds (and within what both
// engines store).
var endOfTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// AdjustEndpointCounts adds deltas to endpoint_counts, in key order, raises
// each group's latest_since to the change time of the reconcilers written
// into it and lowers its earliest_since to their status time, and drops
// groups that reach zero. On PostgreSQL, in two statements whatever the
// number of groups.
func AdjustEndpointCounts(ctx context.Context, q Querier, engine string, deltas map[CountKey]CountDelta) error {
	keys := slices.SortedFunc(maps.Keys(deltas), func(a, b CountKey) int {
		return cmp.Or(cmp.Compare(a.EndpointID, b.EndpointID), cmp.Compare(a.Commit, b.Commit), cmp.Compare(a.Status, b.Status))
	})
	keys = slices.DeleteFunc(keys, func(k CountKey) bool { return deltas[k] == CountDelta{} })
	if len(keys) == 0 {
		return nil
	}
	// A group nobody joined keeps its bound: the epoch never raises it.
	latest := func(k CountKey) time.Time {
		if l := deltas[k].Latest; !l.IsZero() {
			return l
		}
		return time.Unix(0, 0).UTC()
	}
	// Nor does the end of time lower the other.
	earliest := func(k CountKey) time.Time {
		if e := deltas[k].Earliest; !e.IsZero() {
			return e
		}
		return endOfTime
	}
	if engine == "postgres" {
		eps := make([]int64, len(keys))
		shas := make([]string, len(keys))
		statuses := make([]string, len(keys))
		ds := make([]int64, len(keys))
		ls := make([]time.Time, len(keys))
		es := make([]time.Time, len(keys))
		for i, k := range keys {
			eps[i], shas[i], statuses[i], ds[i], ls[i], es[i] = k.EndpointID, k.Commit, k.Status, int64(deltas[k].Hosts), latest(k), earliest(k)
		}
		// unnest keeps the (sorted) order: rows are locked in key order.
		if _, err := q.Exec(ctx, `INSERT INTO endpoint_counts (endpoint_id, commit_sha, status, hosts, latest_since, earliest_since)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[])
			ON CONFLICT (endpoint_id, commit_sha, status) DO UPDATE SET hosts = endpoint_counts.hosts + excluded.hosts,
				latest_since = GREATEST(endpoint_counts.latest_since, excluded.latest_since),
				earliest_since = LEAST(endpoint_counts.earliest_since, excluded.earliest_since)`,
			eps, shas, statuses, ds, ls, es); err != nil {
			return fmt.Errorf("adjust endpoint counts: %w", err)
		}
		if _, err := q.Exec(ctx, `DELETE FROM endpoint_counts c USING unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS u(ep, sha, st, d)
			WHERE u.d < 0 AND c.endpoint_id = u.ep AND c.commit_sha = u.sha AND c.status = u.st AND c.hosts <= 0`,
			eps, shas, statuses, ds); err != nil {
			return fmt.Errorf("adjust endpoint counts: %w", err)
		}
		return nil
	}
	for _, k := range keys {
		d := deltas[k]
		if _, err := q.Exec(ctx, `INSERT INTO endpoint_counts (endpoint_id, commit_sha, status, hosts, latest_since, earliest_since) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (endpoint_id, commit_sha, status) DO UPDATE SET hosts = endpoint_counts.hosts + excluded.hosts,
				latest_since = max(endpoint_counts.latest_since, excluded.latest_since),
				earliest_since = min(endpoint_counts.earliest_since, excluded.earliest_since)`,
			k.EndpointID, k.Commit, k.Status, d.Hosts, latest(k), earliest(k)); err != nil {
			return fmt.Errorf("adjust endpoint counts: %w", err)
		}
		if d.Hosts < 0 {
			if _, err := q.Exec(ctx, `DELETE FROM endpoint_counts WHERE endpoint_id = $1 AND commit_sha = $2 AND status = $3 AND hosts <= 0`,
				k.EndpointID, k.Commit, k.Status); err != nil {
				return fmt.Errorf("adjust endpoint counts: %w", err)
			}
		}
	}
	return nil
}

// ReconcilerFacts is what endpoint_counts and host_counts count of a
// reconciler.
type ReconcilerFacts struct {
	// HostID is set when ReadReconcilerFacts reads the facts (a
	// reconciler's host never changes).
	HostID     int64
	EndpointID int64
	Commit     string
	Status     string
	Live       bool
	// Since is its change time: the last change of its current
	// deployment (status, message, or the return to it), else when it
	// was registered. It is never before its status time (when its
	// status last changed). ReadReconcilerFacts reads it; CountDeltas
	// reads it of the reconcilers after a write alone, SeriesChanges of
	// a reconciler before its return from retirement too.
	Since time.Time
	// StatusSince is when its status last changed, else when it was
	// registered: what the reports' time filters compare. Read with
	// Since.
	StatusSince time.Time
	// LastReportAt is its last-report time, zero when not known (see
	// ReportTimeMoved).
	LastReportAt time.Time
	// CreatedAt is when it was registered; ReadReconcilerFacts reads it
	// (the endpoint series counts it from then).
	CreatedAt time.Time
	// RetiredAt is when a reconciler not live was retired, zero when not
	// known (the endpoint series stops counting it then).
	RetiredAt time.Time
}

// ReportTimeMoved reports whether a reconciler's move from before to after
// may move its host's host_counts.oldest_report_at (see
// RefreshReportTimes): it became live or retired, reported for the first
// time, or its last-report time moved (or is not known).
func ReportTimeMoved(before, after ReconcilerFacts) bool {
	return before.Live != after.Live || (before.Status == "") != (after.Status == "") ||
		before.LastReportAt.IsZero() || !before.LastReportAt.Equal(after.LastReportAt)
}

// StatusTime is a reconciler's (r) status time in SQL: when its status
// last changed, else when it was registered. The reports' time filters
// compare it, and endpoint_counts.earliest_since bounds it.
const StatusTime = "COALESCE(r.status_since, r.created_at)"

// changeTime is a reconciler's (r, with its current deployment d) change
// time in SQL (see ReconcilerFacts.Since): endpoint_counts.latest_since
// bounds it.
const changeTime = "COALESCE(d.last_changed, r.created_at)"

func (f ReconcilerFacts) group() CountKey { return CountKey{f.EndpointID, f.Commit, f.Status} }

// ReadReconcilerFacts reads the facts of reconcilers by id.
func ReadReconcilerFacts(ctx context.Context, q Querier, engine string, ids []int64) (map[int64]ReconcilerFacts, error) {
	out := make(map[int64]ReconcilerFacts, len(ids))
	for chunk := range slices.Chunk(ids, 1000) {
		var a Args
		type row struct {
			id int64
			f  ReconcilerFacts
		}
		rows, err := Collect(ctx, q, `SELECT r.id, r.host_id, r.endpoint_id, r.commit_sha, r.status, r.retired_at, `+changeTime+`, `+StatusTime+`, r.last_report_at, r.created_at
			FROM reconcilers r LEFT JOIN deployments d ON d.id = r.current_deployment_id WHERE `+In(engine, &a, "r.id", chunk), a,
			func(r Row) (row, error) {
				var x row
				var retired *time.Time
				err := r.Scan(&x.id, &x.f.HostID, &x.f.EndpointID, &x.f.Commit, &x.f.Status, &retired, &x.f.Since, &x.f.StatusSince, &x.f.LastReportAt, &x.f.CreatedAt)
				x.f.LastReportAt, x.f.CreatedAt = x.f.LastReportAt.UTC(), x.f.CreatedAt.UTC()
				if x.f.Live = retired == nil; !x.f.Live {
					x.f.RetiredAt = retired.UTC()
				}
				return x, err
			})
		if err != nil {
			return nil, err
		}
		for _, x := range rows {
			out[x.id] = x.f
		}
	}
	return out, nil
}

// CountDeltas is what moving reconcilers from before to after changes in
// endpoint_counts (absent from before: created; from after: gone), with
// the latest change time and earliest status time of the reconcilers in
// each group after. That includes a reconciler that ends in the group it
// started in (no count changes): within one batch it may have left the
// group and come back.
func CountDeltas(before, after map[int64]ReconcilerFacts) map[CountKey]CountDelta {
	d := map[CountKey]CountDelta{}
	for _, f := range before {
		if f.Live {
			c := d[f.group()]
			c.Hosts--
			d[f.group()] = c
		}
	}
	for _, f := range after {
		if f.Live {
			c := d[f.group()]
			c.Hosts++
			if f.Since.After(c.Latest) {
				c.Latest = f.Since
			}
			if c.Earliest.IsZero() || f.StatusSince.Before(c.Earliest) {
				c.Earliest = f.StatusSince
			}
			d[f.group()] = c
		}
	}
	return d
}

// HostDelta is what a write changes in a host's host_counts row: live
// reconcilers that have reported, and those of them that fail.
type HostDelta struct {
	Reporting, Failing int
}

// HostDeltas is what moving reconcilers from before to after changes in
// host_counts, by host; after holds every reconciler of before (with its
// host id).
func HostDeltas(before, after map[int64]ReconcilerFacts) map[int64]HostDelta {
	d := map[int64]HostDelta{}
	add := func(host int64, f ReconcilerFacts, n int) {
		if !f.Live || f.Status == "" {
			return
		}
		h := d[host]
		h.Reporting += n
		if f.Status == string(model.StatusFailure) {
			h.Failing += n
		}
		d[host] = h
	}
	for id, a := range after {
		if b, ok := before[id]; ok {
			add(a.HostID, b, -1)
		}
		add(a.HostID, a, 1)
	}
	return d
}

// AdjustHostCounts adds deltas to host_counts, in host order, and drops
// the rows of hosts left without a reported live reconciler.
func AdjustHostCounts(ctx context.Context, q Querier, engine string, deltas map[int64]HostDelta) error {
	hosts := slices.Sorted(maps.Keys(deltas))
	hosts = slices.DeleteFunc(hosts, func(h int64) bool { return deltas[h] == HostDelta{} })
	if len(hosts) == 0 {
		return nil
	}
	// Only a host that lost a reported reconciler can reach zero.
	var shrunk []int64
	for _, h := range hosts {
		if deltas[h].Reporting < 0 {
			shrunk = append(shrunk, h)
		}
	}
	if engine == "postgres" {
		reporting, failing := make([]int32, len(hosts)), make([]int32, len(hosts))
		for i, h := range hosts {
			reporting[i], failing[i] = int32(deltas[h].Reporting), int32(deltas[h].Failing)
		}
		if _, err := q.Exec(ctx, `INSERT INTO host_counts (host_id, reporting, failing)
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[])
			ON CONFLICT (host_id) DO UPDATE SET reporting = host_counts.reporting + excluded.reporting,
				failing = host_counts.failing + excluded.failing`, hosts, reporting, failing); err != nil {
			return fmt.Errorf("adjust host counts: %w", err)
		}
	} else {
		for _, h := range hosts {
			d := deltas[h]
			if _, err := q.Exec(ctx, `INSERT INTO host_counts (host_id, reporting, failing) VALUES ($1, $2, $3)
				ON CONFLICT (host_id) DO UPDATE SET reporting = host_counts.reporting + excluded.reporting,
					failing = host_counts.failing + excluded.failing`, h, d.Reporting, d.Failing); err != nil {
				return fmt.Errorf("adjust host counts: %w", err)
			}
		}
	}
	if len(shrunk) > 0 {
		var a Args
		if _, err := q.Exec(ctx, `DELETE FROM host_counts WHERE `+In(engine, &a, "host_id", shrunk)+` AND reporting <= 0`, a...); err != nil {
			return fmt.Errorf("adjust host counts: %w", err)
		}
	}
	return nil
}

// AssignmentScope names the reconciler_assignments rows to recompute.
type AssignmentScope struct {
	// Deployments: the triples of each (reconciler, commit): every target
	// on the reconciler's endpoint and the assignment the commit resolves
	// to there.
	Deployments []DeploymentKey
	// Resolutions: for each (target, commit), every reconciler on the
	// target's endpoint that deployed the commit, at both the assignment
	// the commit resolved to before and the one it resolves to now.
	Resolutions []ResolutionChange
	// Reconcilers and Targets: every row of them.
	Reconcilers []int64
	Targets     []int64
}

// DeploymentKey is a reconciler's deployment of a commit.
type DeploymentKey struct {
	ReconcilerID int64
	Commit       string
	// Known, when not nil, is the deployment's state as the writer left
	// it, with its live reconciler's endpoint: its rows then need no read
	// of the deployment and the reconciler.
	Known *KnownDeployment
}

// KnownDeployment is a deployment's state as a writer of reports left it,
// of a live reconciler on EndpointID.
type KnownDeployment struct {
	EndpointID                 int64
	Status                     string
	Since, Last                time.Time
	FirstSuccess, FirstFailure *time.Time
}

// ResolutionChange is a commit of a target that resolves to another
// assignment than before (0: none).
type ResolutionChange struct {
	TargetID int64
	Commit   string
	Old, New int64
}

// Empty reports whether the scope names nothing.
func (s AssignmentScope) Empty() bool {
	return len(s.Deployments) == 0 && len(s.Resolutions) == 0 && len(s.Reconcilers) == 0 && len(s.Targets) == 0
}

// assignmentKey is a reconciler_assignments row's key.
type assignmentKey struct{ reconciler, target, assignment int64 }

// assignmentState is a reconciler_assignments row.
type assignmentState struct {
	key                        assignmentKey
	status                     string
	since, last                time.Time
	firstSuccess, firstFailure *time.Time
	live                       bool
}

// assignmentStatesSQL computes reconciler_assignments rows: each
// reconciler's latest deployment among those whose commit resolves to the
// assignment, with the earliest success and failure among them, for the
// rows that from (joined first, may be empty) and cond (on r, t and res)
// select.
func assignmentStatesSQL(from, cond string) string {
	if from != "" {
		from += " JOIN reconcilers r ON r.id = s.rid JOIN targets t ON t.id = s.tid AND t.endpoint_id = r.endpoint_id"
	} else {
		from = "reconcilers r JOIN targets t ON t.endpoint_id = r.endpoint_id"
	}
	return `SELECT rid, tid, aid, status, status_since, last_changed, first_success_at, first_failure_at, live FROM (
		SELECT r.id AS rid, t.id AS tid, res.assignment_id AS aid, d.status, d.status_since, d.last_changed,
			min(d.first_success_at) OVER w AS first_success_at, min(d.first_failure_at) OVER w AS first_failure_at,
			r.retired_at IS NULL AS live,
			row_number() OVER (w ORDER BY d.last_changed DESC, d.id DESC) AS n
		FROM ` + from + `
		JOIN resolutions res ON res.target_id = t.id AND res.assignment_id IS NOT NULL
		JOIN deployments d ON d.reconciler_id = r.id AND d.commit_sha = res.sha
		WHERE ` + cond + `
		WINDOW w AS (PARTITION BY r.id, t.id, res.assignment_id)) x
	WHERE n = 1`
}

func scanAssignmentState(r Row) (assignmentState, error) {
	var s assignmentState
	err := r.Scan(&s.key.reconciler, &s.key.target, &s.key.assignment, &s.status, &s.since, &s.last, &s.firstSuccess, &s.firstFailure, &s.live)
	return s, err
}

const assignmentStateCols = `reconciler_id, target_id, assignment_id, status, status_since, last_changed, first_success_at, first_failure_at, live`

// RefreshAssignments recomputes the reconciler_assignments rows of a scope
// and returns how the outcomes of their assignments follow: the caller's
// to write (WriteOutcomes).
func RefreshAssignments(ctx context.Context, q Querier, engine string, scope AssignmentScope) (OutcomeChanges, error) {
	if scope.Empty() {
		return OutcomeChanges{}, nil
	}
	candidates, triples, err := scopeTriples(ctx, q, engine, scope)
	if err != nil {
		return OutcomeChanges{}, err
	}
	// Sized for the rows the candidates name (most batches name no others).
	old := make(map[assignmentKey]assignmentState, len(candidates))
	fresh := make(map[assignmentKey]assignmentState, len(candidates))
	add := func(m map[assignmentKey]assignmentState) func(assignmentState) {
		return func(s assignmentState) { m[s.key] = s }
	}
	// The rows named one by one: those a changed deployment touches, then
	// those of resolution changes. A row's state is its reconciler's latest
	// deployment among those resolving to the assignment, so a deployment
	// that changed after the stored row's last change is the row's new
	// state (its first success and failure the earlier of the two), with
	// no need to read the others (an assignment may have many commits). A
	// row that does not exist yet had no deployment before this one (rows
	// of reconcilers that moved, came back or were created meanwhile are
	// all computed again below), so the deployment is its state. Any other
	// row is computed again.
	byKey := make(map[assignmentKey][]assignmentState, len(candidates))
	for _, c := range candidates {
		byKey[c.key] = append(byKey[c.key], c)
	}
	resolved := map[assignmentKey]bool{}
	for _, k := range triples {
		resolved[k] = true
	}
	named := append(slices.Collect(maps.Keys(byKey)), triples...)
	slices.SortFunc(named, compareAssignmentKeys)
	for chunk := range slices.Chunk(slices.Compact(named), 1000) {
		var a Args
		if err := collectEach(ctx, q, `SELECT `+prefixed("ra.", assignmentStateCols)+` FROM `+triplesTable(engine, &a, chunk)+`
			JOIN reconciler_assignments ra ON ra.reconciler_id = s.rid AND ra.target_id = s.tid AND ra.assignment_id = s.aid`,
			a, scanAssignmentState, add(old)); err != nil {
			return OutcomeChanges{}, fmt.Errorf("read reconciler assignments: %w", err)
		}
	}
	var recompute []assignmentKey
	for k, cs := range byKey {
		o, ok := old[k]
		if len(cs) != 1 || resolved[k] || (ok && !cs[0].last.After(o.last)) {
			recompute = append(recompute, k)
			continue
		}
		n := cs[0]
		if ok {
			n.firstSuccess, n.firstFailure = earliest(n.firstSuccess, o.firstSuccess), earliest(n.firstFailure, o.firstFailure)
		}
		fresh[k] = n
	}
	recompute = append(recompute, triples...)
	slices.SortFunc(recompute, compareAssignmentKeys)
	for chunk := range slices.Chunk(slices.Compact(recompute), 1000) {
		var b Args
		if err := collectEach(ctx, q, assignmentStatesSQL(triplesTable(engine, &b, chunk), "res.assignment_id = s.aid"),
			b, scanAssignmentState, add(fresh)); err != nil {
			return OutcomeChanges{}, fmt.Errorf("compute reconciler assignments: %w", err)
		}
	}
	for _, w := range []struct {
		ids           []int64
		col, freshCol string
	}{{scope.Reconcilers, "reconciler_id", "r.id"}, {scope.Targets, "target_id", "t.id"}} {
		for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(w.ids))), 500) {
			var a, b Args
			if err := collectEach(ctx, q, `SELECT `+assignmentStateCols+` FROM reconciler_assignments WHERE `+In(engine, &a, w.col, chunk),
				a, scanAssignmentState, add(old)); err != nil {
				return OutcomeChanges{}, fmt.Errorf("read reconciler assignments: %w", err)
			}
			if err := collectEach(ctx, q, assignmentStatesSQL("", In(engine, &b, w.freshCol, chunk)), b, scanAssignmentState, add(fresh)); err != nil {
				return OutcomeChanges{}, fmt.Errorf("compute reconciler assignments: %w", err)
			}
		}
	}
	// Write the differences, in key order.
	keys := sortedKeys(old, fresh, compareAssignmentKeys)
	outcomes := OutcomeChanges{Deltas: map[int64]*OutcomeDelta{}, Departed: map[int64]*departure{}, Recompute: map[int64]bool{}}
	var gone []assignmentKey
	var changed, added []assignmentState
	for _, k := range keys {
		o, hadOld := old[k]
		n, hasNew := fresh[k]
		switch {
		case hadOld && !hasNew:
			gone = append(gone, k)
		case hasNew && !hadOld:
			added = append(added, n)
		case hasNew && !sameAssignmentState(o, n):
			changed = append(changed, n)
		default:
			continue
		}
		outcomes.follow(k.assignment, o, hadOld, n, hasNew)
	}
	if err := writeAssignmentStates(ctx, q, engine, gone, changed, added); err != nil {
		return OutcomeChanges{}, err
	}
	return outcomes, nil
}

// OutcomeChanges is how assignment_outcomes rows follow changed
// reconciler_assignments rows. Most changes adjust a row in place: counts
// move by deltas, and the earliest and latest of the hosts' first
// successes and the earliest failure can only move outwards. A host's
// first success and failure stay as it reports again; a
// reconciler_assignments row gives one up (Departed) only when it stops
// counting (its reconciler retires or moves, its commits resolve
// elsewhere). That leaves the stored extremes as they are unless it held
// one of them: WriteOutcomes compares what it gave up with the stored row
// and computes the row again only then, or when a reconciler_assignments
// row goes away (the outcome row may have to go with it).
type OutcomeChanges struct {
	Deltas    map[int64]*OutcomeDelta
	Departed  map[int64]*departure // assignments of Deltas whose rows gave up times
	Recompute map[int64]bool
}

// departure is what an assignment's reconciler_assignments rows gave up:
// first success times and first failure times.
type departure struct {
	success, failure []time.Time
}

// holdsExtreme reports whether a departure may have held an extreme of
// the stored outcome row (at or beyond it: then it is computed again).
func (d *departure) holdsExtreme(stored outcomeExtremes) bool {
	for _, t := range d.success {
		if stored.firstSuccess == nil || stored.lastSuccess == nil || !t.After(*stored.firstSuccess) || !t.Before(*stored.lastSuccess) {
			return true
		}
	}
	for _, t := range d.failure {
		if stored.firstFailure == nil || !t.After(*stored.firstFailure) {
			return true
		}
	}
	return false
}

// outcomeExtremes are a stored assignment_outcomes row's times.
type outcomeExtremes struct {
	firstSuccess, lastSuccess, firstFailure *time.Time
}

// OutcomeDelta adjusts an assignment_outcomes row: counts to add, and
// times the extremes take if they are earlier (First*) or later (Last*).
type OutcomeDelta struct {
	Success, Failure, InProgress int64
	FirstSuccess, LastSuccess    *time.Time
	FirstFailure                 *time.Time
	created                      bool // a reconciler_assignments row was added: the outcome row may not exist yet
}

// follow records a reconciler_assignments row of an assignment going from
// o (when hadOld) to n (when hasNew).
func (c OutcomeChanges) follow(assignment int64, o assignmentState, hadOld bool, n assignmentState, hasNew bool) {
	if c.Recompute[assignment] {
		return
	}
	oldLive, newLive := hadOld && o.live, hasNew && n.live
	keepsSuccess := !oldLive || o.firstSuccess == nil || (newLive && sameTime(n.firstSuccess, o.firstSuccess))
	keepsFailure := !oldLive || o.firstFailure == nil ||
		(newLive && n.firstFailure != nil && !n.firstFailure.After(*o.firstFailure))
	if !hasNew {
		c.Recompute[assignment] = true
		delete(c.Deltas, assignment)
		delete(c.Departed, assignment)
		return
	}
	if !keepsSuccess || !keepsFailure {
		dep := c.Departed[assignment]
		if dep == nil {
			dep = &departure{}
			c.Departed[assignment] = dep
		}
		if !keepsSuccess {
			dep.success = append(dep.success, *o.firstSuccess)
		}
		if !keepsFailure {
			dep.failure = append(dep.failure, *o.firstFailure)
		}
	}
	d := c.Deltas[assignment]
	if d == nil {
		d = &OutcomeDelta{}
		c.Deltas[assignment] = d
	}
	d.created = d.created || !hadOld
	count := func(status string, by int64) {
		switch model.Status(status) {
		case model.StatusSuccess:
			d.Success += by
		case model.StatusFailure:
			d.Failure += by
		case model.StatusInProgress:
			d.InProgress += by
		}
	}
	if oldLive {
		count(o.status, -1)
	}
	if newLive {
		count(n.status, 1)
		if n.firstSuccess != nil {
			d.FirstSuccess = earliest(d.FirstSuccess, n.firstSuccess)
			if d.LastSuccess == nil || n.firstSuccess.After(*d.LastSuccess) {
				d.LastSuccess = n.firstSuccess
			}
		}
		d.FirstFailure = earliest(d.FirstFailure, n.firstFailure)
	}
}

// earliest is the earlier of two optional times.
func earliest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.Before(*a)) {
		return b
	}
	return a
}

// writeAssignmentStates deletes, updates (changed: stored rows) and inserts
// (added) reconciler_assignments rows: a statement each on PostgreSQL, a
// statement a row on SQLite.
func writeAssignmentStates(ctx context.Context, q Querier, engine string, gone []assignmentKey, changed, added []assignmentState) error {
	if engine != "postgres" {
		put := append(slices.Clone(changed), added...)
		for _, k := range gone {
			if _, err := q.Exec(ctx, `DELETE FROM reconciler_assignments WHERE reconciler_id = $1 AND target_id = $2 AND assignment_id = $3`,
				k.reconciler, k.target, k.assignment); err != nil {
				return fmt.Errorf("delete reconciler assignment: %w", err)
			}
		}
		for _, n := range put {
			if _, err := q.Exec(ctx, `INSERT INTO reconciler_assignments (`+assignmentStateCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (reconciler_id, target_id, assignment_id) DO UPDATE SET status = excluded.status,
					status_since = excluded.status_since, last_changed = excluded.last_changed,
					first_success_at = excluded.first_success_at, first_failure_at = excluded.first_failure_at, live = excluded.live`,
				n.key.reconciler, n.key.target, n.key.assignment, n.status, n.since, n.last, n.firstSuccess, n.firstFailure, n.live); err != nil {
				return fmt.Errorf("write reconciler assignment: %w", err)
			}
		}
		return nil
	}
	if len(gone) > 0 {
		rids, tids, aids := make([]int64, len(gone)), make([]int64, len(gone)), make([]int64, len(gone))
		for i, k := range gone {
			rids[i], tids[i], aids[i] = k.reconciler, k.target, k.assignment
		}
		if _, err := q.Exec(ctx, `DELETE FROM reconciler_assignments ra USING unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(rid, tid, aid)
			WHERE ra.reconciler_id = u.rid AND ra.target_id = u.tid AND ra.assignment_id = u.aid`, rids, tids, aids); err != nil {
			return fmt.Errorf("delete reconciler assignments: %w", err)
		}
	}
	// Stored rows change in place (an update costs half an upsert's work);
	// new ones are inserted.
	for _, w := range []struct {
		rows []assignmentState
		sql  string
	}{
		{changed, `UPDATE reconciler_assignments ra SET status = u.status, status_since = u.since, last_changed = u.last,
				first_success_at = u.success, first_failure_at = u.failure, live = u.live
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::bool[])
				AS u(rid, tid, aid, status, since, last, success, failure, live)
			WHERE ra.reconciler_id = u.rid AND ra.target_id = u.tid AND ra.assignment_id = u.aid`},
		{added, `INSERT INTO reconciler_assignments (` + assignmentStateCols + `)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::bool[])
			ON CONFLICT (reconciler_id, target_id, assignment_id) DO UPDATE SET status = excluded.status,
				status_since = excluded.status_since, last_changed = excluded.last_changed,
				first_success_at = excluded.first_success_at, first_failure_at = excluded.first_failure_at, live = excluded.live`},
	} {
		n := len(w.rows)
		if n == 0 {
			continue
		}
		rids, tids, aids := make([]int64, n), make([]int64, n), make([]int64, n)
		statuses, lives := make([]string, n), make([]bool, n)
		sinces, lasts := make([]time.Time, n), make([]time.Time, n)
		successes, fails := make([]*time.Time, n), make([]*time.Time, n)
		for i, p := range w.rows {
			rids[i], tids[i], aids[i], statuses[i], sinces[i], lasts[i], successes[i], fails[i], lives[i] =
				p.key.reconciler, p.key.target, p.key.assignment, p.status, p.since, p.last, p.firstSuccess, p.firstFailure, p.live
		}
		if _, err := q.Exec(ctx, w.sql, rids, tids, aids, statuses, sinces, lasts, successes, fails, lives); err != nil {
			return fmt.Errorf("write reconciler assignments: %w", err)
		}
	}
	return nil
}

// prefixed puts prefix before each of a list of columns.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = prefix + parts[i]
	}
	return strings.Join(parts, ", ")
}

// WriteOutcomes brings assignment_outcomes up to date with changes.
// Writers of reports share these rows (every host of a target counts in
// its assignment's row), so the caller takes them as late in its
// transaction as it can, and each transaction locks them in one sweep in
// id order: the upsert of the deltas alone, or, when some rows gave up
// times or are computed again, all of them first (reading their stored
// times in the same statement).
func WriteOutcomes(ctx context.Context, q Querier, engine string, c OutcomeChanges) error {
	recompute := maps.Clone(c.Recompute)
	if len(c.Departed) > 0 || len(recompute) > 0 {
		// Every row this writes, locked in order before any is written;
		// the departures compared with what is stored.
		ids := slices.Collect(maps.Keys(c.Deltas))
		ids = slices.Sorted(slices.Values(append(ids, slices.Collect(maps.Keys(c.Recompute))...)))
		stored, err := lockOutcomes(ctx, q, engine, ids, slices.Sorted(maps.Keys(c.Departed)))
		if err != nil {
			return err
		}
		for id, dep := range c.Departed {
			if s, ok := stored[id]; !ok || dep.holdsExtreme(s) {
				recompute[id] = true
			}
		}
	}
	deltas := slices.Sorted(maps.Keys(c.Deltas))
	deltas = slices.DeleteFunc(deltas, func(id int64) bool { return recompute[id] || c.Deltas[id].none() })
	if err := addOutcomeDeltas(ctx, q, engine, deltas, c.Deltas); err != nil {
		return err
	}
	return recomputeOutcomes(ctx, q, engine, slices.Sorted(maps.Keys(recompute)))
}

// none reports whether a delta changes nothing, not even which rows exist.
func (d *OutcomeDelta) none() bool {
	return !d.created && d.Success == 0 && d.Failure == 0 && d.InProgress == 0 &&
		d.FirstSuccess == nil && d.LastSuccess == nil && d.FirstFailure == nil
}

// outcomeDeltaSet adds an OutcomeDelta (the excluded row) to an
// assignment_outcomes row: the same text on both engines.
const outcomeDeltaSet = `success = assignment_outcomes.success + excluded.success,
	failure = assignment_outcomes.failure + excluded.failure,
	in_progress = assignment_outcomes.in_progress + excluded.in_progress,
	first_success_at = CASE WHEN excluded.first_success_at IS NULL OR assignment_outcomes.first_success_at <= excluded.first_success_at
		THEN assignment_outcomes.first_success_at ELSE excluded.first_success_at END,
	last_success_at = CASE WHEN excluded.last_success_at IS NULL OR assignment_outcomes.last_success_at >= excluded.last_success_at
		THEN assignment_outcomes.last_success_at ELSE excluded.last_success_at END,
	first_failure_at = CASE WHEN excluded.first_failure_at IS NULL OR assignment_outcomes.first_failure_at <= excluded.first_failure_at
		THEN assignment_outcomes.first_failure_at ELSE excluded.first_failure_at END`

// addOutcomeDeltas upserts deltas into assignment_outcomes (ids in order):
// one statement on PostgreSQL, which locks the rows in that order.
func addOutcomeDeltas(ctx context.Context, q Querier, engine string, ids []int64, deltas map[int64]*OutcomeDelta) error {
	if len(ids) == 0 {
		return nil
	}
	insert := `INSERT INTO assignment_outcomes (assignment_id, ` + outcomeCols + `) `
	conflict := ` ON CONFLICT (assignment_id) DO UPDATE SET ` + outcomeDeltaSet
	if engine != "postgres" {
		for _, id := range ids {
			d := deltas[id]
			if _, err := q.Exec(ctx, insert+`VALUES ($1, $2, $3, $4, $5, $6, $7)`+conflict,
				id, d.Success, d.Failure, d.InProgress, d.FirstSuccess, d.LastSuccess, d.FirstFailure); err != nil {
				return fmt.Errorf("adjust assignment outcomes: %w", err)
			}
		}
		return nil
	}
	n := len(ids)
	success, failure, inProgress := make([]int64, n), make([]int64, n), make([]int64, n)
	firstSuccess, lastSuccess, firstFailure := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	for i, id := range ids {
		d := deltas[id]
		success[i], failure[i], inProgress[i] = d.Success, d.Failure, d.InProgress
		firstSuccess[i], lastSuccess[i], firstFailure[i] = d.FirstSuccess, d.LastSuccess, d.FirstFailure
	}
	if _, err := q.Exec(ctx, insert+`SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[])`+conflict,
		ids, success, failure, inProgress, firstSuccess, lastSuccess, firstFailure); err != nil {
		return fmt.Errorf("adjust assignment outcomes: %w", err)
	}
	return nil
}

// lockOutcomes creates the missing assignment_outcomes rows of ids (in
// order) and locks them all, so that a recomputation (a new statement, a
// new snapshot) sees what concurrent writers of these rows committed, and
// returns the stored times of the rows of read (SQLite writers hold the
// database's lock: nothing to lock there).
func lockOutcomes(ctx context.Context, q Querier, engine string, ids, read []int64) (map[int64]outcomeExtremes, error) {
	type row struct {
		id int64
		outcomeExtremes
	}
	stored := map[int64]outcomeExtremes{}
	scan := func(r Row) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.firstSuccess, &x.lastSuccess, &x.firstFailure)
		return x, err
	}
	keep := func(x row) { stored[x.id] = x.outcomeExtremes }
	const cols = `SELECT assignment_id, first_success_at, last_success_at, first_failure_at FROM assignment_outcomes `
	if engine != "postgres" {
		for chunk := range slices.Chunk(read, 500) {
			var a Args
			if err := collectEach(ctx, q, cols+`WHERE `+In(engine, &a, "assignment_id", chunk), a, scan, keep); err != nil {
				return nil, fmt.Errorf("read assignment outcomes: %w", err)
			}
		}
		return stored, nil
	}
	ids = slices.Compact(ids)
	if _, err := q.Exec(ctx, `INSERT INTO assignment_outcomes (assignment_id) SELECT unnest($1::bigint[]) ON CONFLICT (assignment_id) DO NOTHING`, ids); err != nil {
		return nil, fmt.Errorf("lock assignment outcomes: %w", err)
	}
	if err := collectEach(ctx, q, cols+`WHERE assignment_id = ANY($1::bigint[]) ORDER BY assignment_id FOR UPDATE`, []any{ids}, scan, keep); err != nil {
		return nil, fmt.Errorf("lock assignment outcomes: %w", err)
	}
	return stored, nil
}

// recomputeOutcomes computes assignment_outcomes rows (ids in order, locked
// by the caller on PostgreSQL) again from reconciler_assignments, and
// drops those of assignments left without rows.
func recomputeOutcomes(ctx context.Context, q Querier, engine string, ids []int64) error {
	for chunk := range slices.Chunk(ids, 1000) {
		var a Args
		var table, unchanged string
		if engine == "postgres" {
			table = `(SELECT unnest(` + a.Bind(chunk) + `::bigint[]) AS id) u`
			// Rows that stay as they are are not written.
			unchanged = ` AND (o.` + strings.ReplaceAll(outcomeCols, ", ", ", o.") + `) IS DISTINCT FROM (x.` + strings.ReplaceAll(outcomeCols, ", ", ", x.") + `)`
		} else {
			values := make([]string, len(chunk))
			for i, id := range chunk {
				values[i] = "(" + a.Bind(id) + ")"
			}
			if _, err := q.Exec(ctx, `INSERT INTO assignment_outcomes (assignment_id) VALUES `+strings.Join(values, ", ")+` ON CONFLICT (assignment_id) DO NOTHING`, a...); err != nil {
				return fmt.Errorf("refresh assignment outcomes: %w", err)
			}
			table = `(SELECT column1 AS id FROM (VALUES ` + strings.Join(values, ", ") + `)) u`
		}
		set := make([]string, 0, 6)
		for c := range strings.SplitSeq(outcomeCols, ", ") {
			set = append(set, c+" = x."+c)
		}
		if _, err := q.Exec(ctx, `UPDATE assignment_outcomes AS o SET `+strings.Join(set, ", ")+` FROM (`+outcomesSQL(table)+`) x
			WHERE o.assignment_id = x.assignment_id`+unchanged, a...); err != nil {
			return fmt.Errorf("refresh assignment outcomes: %w", err)
		}
		if _, err := q.Exec(ctx, `DELETE FROM assignment_outcomes WHERE assignment_id IN (SELECT id FROM `+table+`)
			AND NOT EXISTS (SELECT 1 FROM reconciler_assignments ra WHERE ra.assignment_id = assignment_outcomes.assignment_id)`, a...); err != nil {
			return fmt.Errorf("refresh assignment outcomes: %w", err)
		}
	}
	return nil
}

// outcomeCols are the columns of assignment_outcomes after its key.
const outcomeCols = "success, failure, in_progress, first_success_at, last_success_at, first_failure_at"

// outcomesSQL computes the assignment_outcomes rows (assignment_id, then
// outcomeCols) of the assignments that ids (a table u of one column, id)
// lists, from their live reconciler_assignments rows, in one pass.
func outcomesSQL(ids string) string {
	return `SELECT u.id AS assignment_id,
			count(*) FILTER (WHERE ra.status = 'success') AS success,
			count(*) FILTER (WHERE ra.status = 'failure') AS failure,
			count(*) FILTER (WHERE ra.status = 'in_progress') AS in_progress,
			min(ra.first_success_at) AS first_success_at,
			max(ra.first_success_at) AS last_success_at,
			min(ra.first_failure_at) AS first_failure_at
		FROM ` + ids + `
		LEFT JOIN reconciler_assignments ra ON ra.assignment_id = u.id AND ra.live
		GROUP BY u.id`
}

// scopeTriples expands a scope into the rows it touches: for each changed
// deployment, its rows with the deployment's state as a candidate
// (candidates), and the rows of resolution changes (triples, in key
// order).
func scopeTriples(ctx context.Context, q Querier, engine string, scope AssignmentScope) ([]assignmentState, []assignmentKey, error) {
	seen := map[assignmentKey]bool{}
	scan := func(r Row) (assignmentKey, error) {
		var k assignmentKey
		err := r.Scan(&k.reconciler, &k.target, &k.assignment)
		return k, err
	}
	var candidates []assignmentState
	var known, unknown []DeploymentKey
	for _, d := range scope.Deployments {
		if d.Known != nil {
			known = append(known, d)
		} else {
			unknown = append(unknown, d)
		}
	}
	slices.SortFunc(known, func(a, b DeploymentKey) int {
		return cmp.Or(cmp.Compare(a.ReconcilerID, b.ReconcilerID), cmp.Compare(a.Commit, b.Commit))
	})
	known = slices.CompactFunc(known, func(a, b DeploymentKey) bool { return a.ReconcilerID == b.ReconcilerID && a.Commit == b.Commit })
	for chunk := range slices.Chunk(known, 1000) {
		rows := make([][]any, len(chunk))
		for i, d := range chunk {
			rows[i] = []any{int64(i), d.Known.EndpointID, d.Commit}
		}
		var a Args
		type placed struct{ i, target, assignment int64 }
		ps, err := Collect(ctx, q, `SELECT s.i, t.id, res.assignment_id
			FROM `+ValuesTable(engine, &a, []string{"i", "ep", "sha"}, []string{"bigint", "bigint", "text"}, rows)+`
			JOIN targets t ON t.endpoint_id = s.ep
			JOIN resolutions res ON res.target_id = t.id AND res.sha = s.sha AND res.assignment_id IS NOT NULL`, a,
			func(r Row) (placed, error) {
				var p placed
				err := r.Scan(&p.i, &p.target, &p.assignment)
				return p, err
			})
		if err != nil {
			return nil, nil, fmt.Errorf("find the assignments of deployments: %w", err)
		}
		for _, p := range ps {
			d := chunk[p.i]
			candidates = append(candidates, assignmentState{key: assignmentKey{d.ReconcilerID, p.target, p.assignment},
				status: d.Known.Status, since: d.Known.Since, last: d.Known.Last,
				firstSuccess: d.Known.FirstSuccess, firstFailure: d.Known.FirstFailure, live: true})
		}
	}
	for chunk := range slices.Chunk(unknown, 1000) {
		rows := make([][]any, len(chunk))
		for i, d := range chunk {
			rows[i] = []any{d.ReconcilerID, d.Commit}
		}
		var a Args
		cs, err := Collect(ctx, q, `SELECT DISTINCT r.id, t.id, res.assignment_id, d.status, d.status_since, d.last_changed, d.first_success_at, d.first_failure_at, r.retired_at IS NULL
			FROM `+ValuesTable(engine, &a, []string{"rid", "sha"}, []string{"bigint", "text"}, rows)+`
			JOIN reconcilers r ON r.id = s.rid
			JOIN targets t ON t.endpoint_id = r.endpoint_id
			JOIN resolutions res ON res.target_id = t.id AND res.sha = s.sha AND res.assignment_id IS NOT NULL
			JOIN deployments d ON d.reconciler_id = r.id AND d.commit_sha = s.sha`, a, scanAssignmentState)
		if err != nil {
			return nil, nil, fmt.Errorf("find the assignments of deployments: %w", err)
		}
		candidates = append(candidates, cs...)
	}
	for chunk := range slices.Chunk(scope.Resolutions, 1000) {
		rows := make([][]any, 0, 2*len(chunk))
		for _, c := range chunk {
			for _, aid := range []int64{c.Old, c.New} {
				if aid != 0 {
					rows = append(rows, []any{c.TargetID, c.Commit, aid})
				}
			}
		}
		if len(rows) == 0 {
			continue
		}
		var a Args
		ks, err := Collect(ctx, q, `SELECT DISTINCT d.reconciler_id, s.tid, s.aid FROM `+ValuesTable(engine, &a, []string{"tid", "sha", "aid"}, []string{"bigint", "text", "bigint"}, rows)+`
			JOIN targets t ON t.id = s.tid
			JOIN reconcilers r ON r.endpoint_id = t.endpoint_id
			JOIN deployments d ON d.reconciler_id = r.id AND d.commit_sha = s.sha`, a, scan)
		if err != nil {
			return nil, nil, fmt.Errorf("find the reconcilers of commits: %w", err)
		}
		for _, k := range ks {
			seen[k] = true
		}
	}
	return candidates, slices.SortedFunc(maps.Keys(seen), compareAssignmentKeys), nil
}

// triplesTable renders reconciler_assignments keys as a table s(rid, tid, aid).
func triplesTable(engine string, a *Args, ks []assignmentKey) string {
	rows := make([][]any, len(ks))
	for i, k := range ks {
		rows[i] = []any{k.reconciler, k.target, k.assignment}
	}
	return ValuesTable(engine, a, []string{"rid", "tid", "aid"}, []string{"bigint", "bigint", "bigint"}, rows)
}

func compareAssignmentKeys(a, b assignmentKey) int {
	return cmp.Or(cmp.Compare(a.reconciler, b.reconciler), cmp.Compare(a.target, b.target), cmp.Compare(a.assignment, b.assignment))
}

func sameAssignmentState(a, b assignmentState) bool {
	return a.status == b.status && a.since.Equal(b.since) && a.last.Equal(b.last) && a.live == b.live &&
		sameTime(a.firstSuccess, b.firstSuccess) && sameTime(a.firstFailure, b.firstFailure)
}

// sameTime reports whether two optional times are both absent or equal.
func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// sortedKeys is the keys of a and b, each once, sorted by cmp.
func sortedKeys[K comparable, V any](a, b map[K]V, cmp func(K, K) int) []K {
	keys := make([]K, 0, max(len(a), len(b)))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, cmp)
	return keys
}

// collectEach runs a query and calls fn with each row scanned.
func collectEach[T any](ctx context.Context, q Querier, sql string, args []any, scan func(Row) (T, error), fn func(T)) error {
	rows, err := Collect(ctx, q, sql, args, scan)
	for _, r := range rows {
		fn(r)
	}
	return err
}

// Drift kinds kept in the drift table.
const (
	DriftVersion     = "version"
	DriftFailed      = "failed"
	DriftUnknown     = "unknown"
	DriftNotReported = "not_reported"
	DriftUnplaced    = "unplaced"
)

// DriftRow is a row of the drift table: target 0 for a reconciler whose
// endpoint no target has.
type DriftRow struct {
	ReconcilerID, TargetID int64
	Kind                   string
	Since                  time.Time
}

func scanDrift(r Row) (DriftRow, error) {
	var d DriftRow
	err := r.Scan(&d.ReconcilerID, &d.TargetID, &d.Kind, &d.Since)
	d.Since = d.Since.UTC()
	return d, err
}

// driftSQL classifies the live reconcilers the condition (on r and t)
// selects, for each target on their endpoint (t NULL: none): where they
// differ from the target's desired state, and since when.
//
//   - unplaced: no target has the endpoint; since the first report;
//   - not_reported: registered, no report yet; since registered;
//   - unknown: its commit resolves to no assignment; since first seen;
//   - version: another version than scheduled; since the later of the
//     schedule and the first sighting of its commit;
//   - failed: the scheduled version, failing; since it failed.
func driftSQL(cond string) string {
	return `SELECT reconciler_id, target_id, kind, since FROM (
		SELECT r.id AS reconciler_id, COALESCE(t.id, 0) AS target_id,
			CASE WHEN t.id IS NULL THEN 'unplaced'
				WHEN r.status = '' THEN 'not_reported'
				WHEN res.assignment_id IS NULL THEN 'unknown'
				WHEN sa.id IS NOT NULL AND res.version_id <> sa.version_id THEN 'version'
				WHEN sa.id IS NOT NULL AND r.status = 'failure' THEN 'failed' END AS kind,
			CASE WHEN t.id IS NULL THEN COALESCE(d.first_seen, r.created_at)
				WHEN r.status = '' THEN r.created_at
				WHEN res.assignment_id IS NULL THEN d.first_seen
				WHEN sa.id IS NOT NULL AND res.version_id <> sa.version_id THEN
					CASE WHEN sa.assigned_at > d.first_seen THEN sa.assigned_at ELSE d.first_seen END
				ELSE r.status_since END AS since
		FROM reconcilers r
		LEFT JOIN targets t ON t.endpoint_id = r.endpoint_id
		LEFT JOIN deployments d ON d.id = r.current_deployment_id
		LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = r.commit_sha
		LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
		WHERE r.retired_at IS NULL AND (` + cond + `)) x
	WHERE kind IS NOT NULL`
}

// RefreshDrift recomputes the drift rows of reconcilers (with all their
// targets) and of targets (with all their reconcilers).
func RefreshDrift(ctx context.Context, q Querier, engine string, reconcilers, targets []int64) error {
	old := make(map[[2]int64]DriftRow, len(reconcilers))
	fresh := make(map[[2]int64]DriftRow, len(reconcilers))
	keep := func(m map[[2]int64]DriftRow) func(DriftRow) {
		return func(d DriftRow) { m[[2]int64{d.ReconcilerID, d.TargetID}] = d }
	}
	for _, w := range []struct {
		ids          []int64
		col, freshOn string
	}{{reconcilers, "reconciler_id", "r.id"}, {targets, "target_id", "t.id"}} {
		for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(w.ids))), 500) {
			var a, b Args
			if err := collectEach(ctx, q, `SELECT reconciler_id, target_id, kind, since FROM drift WHERE `+In(engine, &a, w.col, chunk), a, scanDrift, keep(old)); err != nil {
				return fmt.Errorf("read drift: %w", err)
			}
			if err := collectEach(ctx, q, driftSQL(In(engine, &b, w.freshOn, chunk)), b, scanDrift, keep(fresh)); err != nil {
				return fmt.Errorf("classify drift: %w", err)
			}
		}
	}
	keys := sortedKeys(old, fresh, func(a, b [2]int64) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	var gone [][2]int64
	var put []DriftRow
	for _, k := range keys {
		o, hadOld := old[k]
		n, hasNew := fresh[k]
		switch {
		case hadOld && !hasNew:
			gone = append(gone, k)
		case hasNew && (!hadOld || o.Kind != n.Kind || !o.Since.Equal(n.Since)):
			put = append(put, n)
		}
	}
	if engine != "postgres" {
		for _, k := range gone {
			if _, err := q.Exec(ctx, `DELETE FROM drift WHERE reconciler_id = $1 AND target_id = $2`, k[0], k[1]); err != nil {
				return fmt.Errorf("delete drift: %w", err)
			}
		}
		for _, n := range put {
			if _, err := q.Exec(ctx, `INSERT INTO drift (reconciler_id, target_id, kind, since) VALUES ($1, $2, $3, $4)
				ON CONFLICT (reconciler_id, target_id) DO UPDATE SET kind = excluded.kind, since = excluded.since`,
				n.ReconcilerID, n.TargetID, n.Kind, n.Since); err != nil {
				return fmt.Errorf("write drift: %w", err)
			}
		}
		return nil
	}
	if len(gone) > 0 {
		rids, tids := make([]int64, len(gone)), make([]int64, len(gone))
		for i, k := range gone {
			rids[i], tids[i] = k[0], k[1]
		}
		if _, err := q.Exec(ctx, `DELETE FROM drift d USING unnest($1::bigint[], $2::bigint[]) AS u(rid, tid)
			WHERE d.reconciler_id = u.rid AND d.target_id = u.tid`, rids, tids); err != nil {
			return fmt.Errorf("delete drift: %w", err)
		}
	}
	if len(put) > 0 {
		rids, tids, kinds, sinces := make([]int64, len(put)), make([]int64, len(put)), make([]string, len(put)), make([]time.Time, len(put))
		for i, n := range put {
			rids[i], tids[i], kinds[i], sinces[i] = n.ReconcilerID, n.TargetID, n.Kind, n.Since
		}
		if _, err := q.Exec(ctx, `INSERT INTO drift (reconciler_id, target_id, kind, since)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[])
			ON CONFLICT (reconciler_id, target_id) DO UPDATE SET kind = excluded.kind, since = excluded.since`,
			rids, tids, kinds, sinces); err != nil {
			return fmt.Errorf("write drift: %w", err)
		}
	}
	return nil
}

// hostEnvironmentsSQL recomputes the host_environments rows of the hosts
// (h) that pass cond: an environment for each target on the endpoint of a
// live reconciler of the host.
func hostEnvironmentsSQL(cond string) string {
	return `SELECT DISTINCT t.environment_id, h.id, substr(h.name, 1, 512)
		FROM hosts h
		JOIN reconcilers r ON r.host_id = h.id
		JOIN targets t ON t.endpoint_id = r.endpoint_id
		WHERE r.retired_at IS NULL AND (` + cond + `)`
}

// hostLock is the class of the advisory locks that LockHosts takes, one
// per host.
const hostLock = 7457

// ReconcilerHosts returns the host of each reconciler (by id).
func ReconcilerHosts(ctx context.Context, q Querier, engine string, reconcilers []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(reconcilers))
	for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(reconcilers))), 1000) {
		var a Args
		err := collectEach(ctx, q, `SELECT id, host_id FROM reconcilers WHERE `+In(engine, &a, "id", chunk), a,
			func(r Row) ([2]int64, error) {
				var x [2]int64
				err := r.Scan(&x[0], &x[1])
				return x, err
			}, func(x [2]int64) { out[x[0]] = x[1] })
		if err != nil {
			return nil, fmt.Errorf("read hosts of reconcilers: %w", err)
		}
	}
	return out, nil
}

// LockHosts locks hosts whose rows of host_counts and host_environments a
// writer recomputes (RefreshHostEnvironments, RefreshReportTimes).
//
// Two writers that change different reconcilers of one host take no lock in
// common, and each would recompute the host from what it sees, without the
// other's change. So on PostgreSQL each writer first takes a lock per host
// (in one order, held until commit): the second one's recomputation then
// sees what the first committed. Every write to those two tables comes
// after it, and the caller takes it after every other lock of its
// transaction, so that a writer holding it waits only for holders of the
// same lock.
func LockHosts(ctx context.Context, q Querier, engine string, hosts []int64) error {
	if err := advisoryLocks(ctx, q, engine, hostLock, hosts); err != nil {
		return fmt.Errorf("lock hosts: %w", err)
	}
	return nil
}

// advisoryLocks takes, on PostgreSQL, an advisory lock of the class for
// each id (by its value modulo 2³¹: ids that share a key share a lock),
// in key order, held until commit.
func advisoryLocks(ctx context.Context, q Querier, engine string, class int32, ids []int64) error {
	if engine != "postgres" || len(ids) == 0 {
		return nil
	}
	keys := make([]int32, len(ids))
	for i, id := range ids {
		keys[i] = int32(id % math.MaxInt32)
	}
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	_, err := q.Exec(ctx, `SELECT count(pg_advisory_xact_lock($1, k)) FROM unnest($2::int[]) AS k`, class, keys)
	return err
}

// RefreshHostEnvironments recomputes the host_environments rows of hosts
// (locked: LockHosts).
func RefreshHostEnvironments(ctx context.Context, q Querier, engine string, hosts []int64) error {
	for chunk := range slices.Chunk(hosts, 500) {
		var a, b Args
		if _, err := q.Exec(ctx, `DELETE FROM host_environments WHERE `+In(engine, &a, "host_id", chunk)+` AND NOT EXISTS (
				SELECT 1 FROM reconcilers r JOIN targets t ON t.endpoint_id = r.endpoint_id
				WHERE r.host_id = host_environments.host_id AND r.retired_at IS NULL AND t.environment_id = host_environments.environment_id)`, a...); err != nil {
			return fmt.Errorf("refresh host environments: %w", err)
		}
		if _, err := q.Exec(ctx, `INSERT INTO host_environments (environment_id, host_id, host_order) `+
			hostEnvironmentsSQL(In(engine, &b, "h.id", chunk))+` ORDER BY 1, 2 ON CONFLICT DO NOTHING`, b...); err != nil {
			return fmt.Errorf("refresh host environments: %w", err)
		}
	}
	return nil
}

// oldestReportSQL is the earliest last-report time of the live reconcilers
// that have reported of host (a column): the host is stale once it is
// older than the stale time.
func oldestReportSQL(host string) string {
	return `(SELECT min(r.last_report_at) FROM reconcilers r WHERE r.host_id = ` + host + ` AND r.retired_at IS NULL AND r.status <> '')`
}

// RefreshReportTimes recomputes host_counts.oldest_report_at of hosts
// (locked: LockHosts), after AdjustHostCounts: a time is a minimum over
// the host's reconcilers, which no delta keeps.
func RefreshReportTimes(ctx context.Context, q Querier, engine string, hosts []int64) error {
	for chunk := range slices.Chunk(hosts, 500) {
		var a Args
		cond := ""
		if engine == "postgres" {
			cond = " AND oldest_report_at IS DISTINCT FROM " + oldestReportSQL("host_counts.host_id") // no write when it stays
		}
		if _, err := q.Exec(ctx, `UPDATE host_counts SET oldest_report_at = `+oldestReportSQL("host_counts.host_id")+`
			WHERE `+In(engine, &a, "host_id", chunk)+cond, a...); err != nil {
			return fmt.Errorf("refresh report times: %w", err)
		}
	}
	return nil
}

// The maintained tables, each with the query that recomputes it from the
// primary tables.
var maintainedTables = []maintainedTable{
	{name: "endpoint_counts", cols: "endpoint_id, commit_sha, status, hosts, latest_since, earliest_since", fresh: endpointCountsSQL,
		exact: "endpoint_id, commit_sha, status, hosts"},
	{name: "reconciler_assignments", cols: assignmentStateCols, fresh: assignmentStatesSQL("", "TRUE")},
	{name: "drift", cols: "reconciler_id, target_id, kind, since", fresh: driftSQL("TRUE")},
	{name: "host_environments", cols: "environment_id, host_id, host_order", fresh: hostEnvironmentsSQL("TRUE")},
	{name: "host_counts", cols: "host_id, reporting, failing, oldest_report_at", fresh: hostCountsSQL},
}

// hostCountsSQL recomputes host_counts: per host with a reported live
// reconciler, how many it has, how many of them fail, and the earliest of
// their last-report times.
const hostCountsSQL = `SELECT host_id, sum(CASE WHEN status <> '' THEN 1 ELSE 0 END) AS reporting,
		sum(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) AS failing,
		min(CASE WHEN status <> '' THEN last_report_at END) AS oldest_report_at
	FROM reconcilers WHERE retired_at IS NULL
	GROUP BY host_id HAVING sum(CASE WHEN status <> '' THEN 1 ELSE 0 END) > 0`

// A maintainedTable is rebuilt by inserting fresh into its cols; Check
// compares its exact columns (all when empty) with fresh's.
type maintainedTable struct {
	name, cols, fresh, exact string
}

// boundsSQL lists the endpoint_counts groups whose latest_since is below
// the change time of one of their live reconcilers, or whose
// earliest_since is above the status time of one: ingest only ever
// widens the bounds, so they may be looser than a recomputation gives,
// never tighter.
const boundsSQL = `SELECT c.endpoint_id, c.commit_sha, c.status, c.latest_since, c.earliest_since
	FROM endpoint_counts c JOIN (` + endpointCountsSQL + `) f
	ON f.endpoint_id = c.endpoint_id AND f.commit_sha = c.commit_sha AND f.status = c.status
	WHERE c.latest_since < f.latest_since OR c.earliest_since > f.earliest_since`

// endpointCountsSQL recomputes endpoint_counts: live reconcilers by
// endpoint, commit and status, with their latest change time and earliest
// status time (see ReconcilerFacts).
const endpointCountsSQL = `SELECT r.endpoint_id AS endpoint_id, r.commit_sha AS commit_sha, r.status AS status, count(*) AS hosts,
		max(` + changeTime + `) AS latest_since, min(` + StatusTime + `) AS earliest_since
	FROM reconcilers r LEFT JOIN deployments d ON d.id = r.current_deployment_id
	WHERE r.retired_at IS NULL GROUP BY r.endpoint_id, r.commit_sha, r.status`

// everyOutcome lists, for outcomesSQL, every assignment that has rows.
const everyOutcome = `(SELECT DISTINCT assignment_id AS id FROM reconciler_assignments) u`

// resolutionVersionSQL is a resolution's (resolutions) assignment's
// version, of which it keeps a copy (version_id).
const resolutionVersionSQL = `(SELECT a.version_id FROM assignments a WHERE a.id = resolutions.assignment_id)`

// resolutionVersionsSQL lists the resolutions whose copy of their
// assignment's version is not that version.
const resolutionVersionsSQL = `SELECT target_id, sha, assignment_id, version_id FROM resolutions
	WHERE COALESCE(version_id, 0) <> COALESCE(` + resolutionVersionSQL + `, 0)`

// Rebuild recomputes every maintained table from the primary tables.
func Rebuild(ctx context.Context, q Querier) error {
	// First the resolutions' copies of their versions, which the drift
	// classification reads.
	if _, err := q.Exec(ctx, `UPDATE resolutions SET version_id = `+resolutionVersionSQL+`
		WHERE COALESCE(version_id, 0) <> COALESCE(`+resolutionVersionSQL+`, 0)`); err != nil {
		return fmt.Errorf("rebuild resolutions: %w", err)
	}
	for _, t := range maintainedTables {
		if _, err := q.Exec(ctx, `DELETE FROM `+t.name); err != nil {
			return fmt.Errorf("rebuild %s: %w", t.name, err)
		}
		if _, err := q.Exec(ctx, `INSERT INTO `+t.name+` (`+t.cols+`) `+t.fresh); err != nil {
			return fmt.Errorf("rebuild %s: %w", t.name, err)
		}
	}
	if _, err := q.Exec(ctx, `DELETE FROM assignment_outcomes`); err != nil {
		return fmt.Errorf("rebuild assignment_outcomes: %w", err)
	}
	if _, err := q.Exec(ctx, `INSERT INTO assignment_outcomes (assignment_id, `+outcomeCols+`) `+outcomesSQL(everyOutcome)); err != nil {
		return fmt.Errorf("rebuild assignment_outcomes: %w", err)
	}
	// The series are recomputed in the background (RebuildSeries).
	if err := MarkAllSeriesDirty(ctx, q); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `DELETE FROM maintained_state`); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `INSERT INTO maintained_state (built_version) VALUES ($1)`, maintainedVersion)
	return err
}

// Difference is a row of a maintained table that differs from its
// recomputation: stored but not recomputed ("-"), or the other way ("+");
// an endpoint_counts group whose time bounds do not bound its reconcilers
// ("<"); a resolution whose copy of its assignment's version differs
// ("≠").
type Difference struct {
	Table string
	Side  string
	Row   string
}

// CheckMaintained runs Check on one snapshot of the primary database, so
// that writes landing meanwhile cannot show as differences.
func (s *Store) CheckMaintained(ctx context.Context, limit int) ([]Difference, error) {
	var diffs []Difference
	err := s.Tx(ctx, func(q Querier) error {
		if s.Engine() == "postgres" {
			// The first statement of the transaction: every query of the
			// check sees the same snapshot; nothing is written.
			if _, err := q.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
				return err
			}
		}
		var err error
		diffs, err = Check(ctx, q, limit)
		return err
	})
	return diffs, err
}

// Check recomputes the maintained tables and lists where the stored rows
// differ, at most limit differences per table.
func Check(ctx context.Context, q Querier, limit int) ([]Difference, error) {
	tables := append(slices.Clone(maintainedTables), maintainedTable{
		name: "assignment_outcomes", cols: "assignment_id, " + outcomeCols, fresh: outcomesSQL(everyOutcome),
	})
	var out []Difference
	add := func(table, side, sql string, cols int) error {
		rows, err := q.Query(ctx, sql+` LIMIT `+fmt.Sprint(limit))
		if err != nil {
			return fmt.Errorf("check %s: %w", table, err)
		}
		diffs, err := textRows(rows, cols)
		if err != nil {
			return fmt.Errorf("check %s: %w", table, err)
		}
		for _, d := range diffs {
			out = append(out, Difference{Table: table, Side: side, Row: d})
		}
		return nil
	}
	for _, t := range tables {
		cols, fresh := t.cols, t.fresh
		if t.exact != "" {
			cols, fresh = t.exact, `SELECT `+t.exact+` FROM (`+t.fresh+`) f`
		}
		stored := `SELECT ` + cols + ` FROM ` + t.name
		for _, side := range []struct{ name, a, b string }{{"-", stored, fresh}, {"+", fresh, stored}} {
			if err := add(t.name, side.name, `SELECT * FROM (`+side.a+` EXCEPT `+side.b+`) x`, strings.Count(cols, ",")+1); err != nil {
				return out, err
			}
		}
	}
	// "<": a bound that does not bound.
	if err := add("endpoint_counts", "<", boundsSQL, 5); err != nil {
		return out, err
	}
	// "≠": a resolution whose copy of its assignment's version is not it.
	if err := add("resolutions", "≠", resolutionVersionsSQL, 4); err != nil {
		return out, err
	}
	series, err := checkSeries(ctx, q, limit)
	return append(out, series...), err
}

// textRows renders rows of n columns as text.
func textRows(rows Rows, n int) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out, rows.Err()
}

// LockReconcilerTargetsShared takes shared locks on the targets of the
// named reconcilers' endpoints (unknown reconcilers have none yet), in id
// order: writers of reports wait for a descriptor's transaction on one of
// them (which holds its target's row lock) before they read what the
// target is meant to run.
func LockReconcilerTargetsShared(ctx context.Context, q Querier, engine string, keys []model.ReconcilerKey) error {
	if engine != "postgres" || len(keys) == 0 {
		return nil
	}
	hosts, names := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		hosts[i], names[i] = k.Host, k.Name
	}
	_, err := q.Exec(ctx, `SELECT t.id FROM targets t WHERE t.endpoint_id IN (
			SELECT r.endpoint_id FROM unnest($1::text[], $2::text[]) AS k(host, name)
			JOIN hosts h ON h.name = k.host JOIN reconcilers r ON r.host_id = h.id AND r.name = k.name)
		ORDER BY t.id FOR SHARE`, hosts, names)
	return err
}

// LockTargetsOfReconcilersShared is LockReconcilerTargetsShared for
// reconcilers known by id.
func LockTargetsOfReconcilersShared(ctx context.Context, q Querier, engine string, ids []int64) error {
	if engine != "postgres" || len(ids) == 0 {
		return nil
	}
	_, err := q.Exec(ctx, `SELECT t.id FROM targets t WHERE t.endpoint_id IN (SELECT endpoint_id FROM reconcilers WHERE id = ANY($1::bigint[]))
		ORDER BY t.id FOR SHARE`, ids)
	return err
}

// LockReconcilersShared takes shared locks on the live reconcilers of
// endpoints, in id order: a descriptor's transaction reads their state
// after their writers commit.
func LockReconcilersShared(ctx context.Context, q Querier, engine string, endpointIDs []int64) error {
	if engine != "postgres" || len(endpointIDs) == 0 {
		return nil
	}
	_, err := q.Exec(ctx, `SELECT id FROM reconcilers WHERE endpoint_id = ANY($1::bigint[]) ORDER BY id FOR SHARE`, slices.Compact(slices.Sorted(slices.Values(endpointIDs))))
	return err
}

// TargetEndpoints returns the endpoints of targets.
func TargetEndpoints(ctx context.Context, q Querier, ids []int64) ([]int64, error) {
	var out []int64
	for chunk := range slices.Chunk(ids, 500) {
		var a Args
		eps, err := Collect(ctx, q, `SELECT DISTINCT endpoint_id FROM targets WHERE id IN (`+BindList(&a, chunk)+`)`, a, scanID)
		if err != nil {
			return nil, err
		}
		out = append(out, eps...)
	}
	return out, nil
}

// EndpointReconcilers lists the live reconcilers of an endpoint (at commit
// sha, when not empty).
func EndpointReconcilers(ctx context.Context, q Querier, endpointID int64, sha string) ([]int64, error) {
	return Collect(ctx, q, `SELECT id FROM reconcilers WHERE endpoint_id = $1 AND retired_at IS NULL AND ($2 = '' OR commit_sha = $2) ORDER BY id`,
		[]any{endpointID, sha}, scanID)
}

// TargetReconcilersAt lists the live reconcilers of a target's endpoint
// whose current commit is sha.
func TargetReconcilersAt(ctx context.Context, q Querier, targetID int64, sha string) ([]int64, error) {
	return Collect(ctx, q, `SELECT r.id FROM targets t JOIN reconcilers r ON r.endpoint_id = t.endpoint_id
		WHERE t.id = $1 AND r.commit_sha = $2 AND r.retired_at IS NULL ORDER BY r.id`, []any{targetID, sha}, scanID)
}

func scanID(r Row) (int64, error) {
	var id int64
	err := r.Scan(&id)
	return id, err
}
