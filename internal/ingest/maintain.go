package ingest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// maintenance collects, during a transaction, what changed that the
// maintained state (store/maintained.go) depends on, and brings it up to
// date at the end, in the same transaction.
type maintenance struct {
	// before holds each touched reconciler as it was (absent: created).
	before  map[int64]store.ReconcilerFacts
	touched map[int64]bool
	// reported holds reconcilers whose last-report time alone moved (the
	// heartbeat).
	reported []int64
	scope    store.AssignmentScope
	// known holds changed deployments as their writer left them (the
	// maintained state then reads neither them nor their reconcilers).
	known map[store.DeploymentKey]store.KnownDeployment
	// Drift: reconcilers, targets, and (target, commit) pairs whose
	// reconcilers at that commit classify again.
	driftReconcilers map[int64]bool
	driftTargets     map[int64]bool
	driftEndpoints   map[int64]bool
	driftCommits     []store.ResolutionChange
	// The endpoint series: the history rows written, and the endpoints
	// whose past a late report moved, from its time on.
	changes []store.HistoryChange
	late    store.SeriesMarks
}

func newMaintenance() *maintenance {
	return &maintenance{before: map[int64]store.ReconcilerFacts{}, touched: map[int64]bool{}, known: map[store.DeploymentKey]store.KnownDeployment{},
		driftReconcilers: map[int64]bool{}, driftTargets: map[int64]bool{}, driftEndpoints: map[int64]bool{}, late: store.SeriesMarks{}}
}

// reconciler notes a reconciler whose state changes; before is what it
// was, when it existed.
func (m *maintenance) reconciler(id int64, before store.ReconcilerFacts, existed bool) {
	if existed {
		m.status(id, before)
	} else {
		m.touched[id] = true
	}
	m.drift(id)
}

// status notes a stored reconciler whose state changes in a way that
// leaves its drift as it is (see driftKept); before is what it was.
func (m *maintenance) status(id int64, before store.ReconcilerFacts) {
	if !m.touched[id] {
		m.touched[id] = true
		m.before[id] = before
	}
}

// heartbeat notes reconcilers whose last-report time alone moved.
func (m *maintenance) heartbeat(ids []int64) { m.reported = append(m.reported, ids...) }

// history notes history rows written, each its reconciler's latest change.
func (m *maintenance) history(cs []store.HistoryChange) { m.changes = append(m.changes, cs...) }

// lateReport notes a history row older than its reconciler's latest change,
// on an endpoint at a time: that endpoint's series is recomputed from then.
func (m *maintenance) lateReport(endpoint int64, at time.Time) {
	m.late.Mark(endpoint, at.UTC().Truncate(time.Microsecond)) // as stored
}

// drift notes a reconciler whose drift may change.
func (m *maintenance) drift(id int64) { m.driftReconcilers[id] = true }

// allAssignments notes that every assignment row of a reconciler may change
// (retired, restored, moved to another endpoint).
func (m *maintenance) allAssignments(id int64) { m.scope.Reconcilers = append(m.scope.Reconcilers, id) }

// deployment notes a reconciler's deployment of a commit that changed.
func (m *maintenance) deployment(id int64, commit string) {
	m.scope.Deployments = append(m.scope.Deployments, store.DeploymentKey{ReconcilerID: id, Commit: commit})
}

// resolution notes a commit of a target that resolves to another
// assignment than before.
func (m *maintenance) resolution(c store.ResolutionChange) {
	m.scope.Resolutions = append(m.scope.Resolutions, c)
	m.driftCommits = append(m.driftCommits, c)
}

// target notes a target whose scheduled version changed (drift) or, with
// moved, whose endpoint changed (every row of it, and the reconcilers of
// the endpoint it left: they may no longer have a target).
func (m *maintenance) target(id int64, moved bool, fromEndpoint int64) {
	m.driftTargets[id] = true
	if moved {
		m.scope.Targets = append(m.scope.Targets, id)
		m.driftEndpoints[fromEndpoint] = true
	}
}

// endpoint notes an endpoint that gained a target: its reconcilers may no
// longer be unplaced.
func (m *maintenance) endpoint(id int64) { m.driftEndpoints[id] = true }

// run brings the maintained state up to date.
func (m *maintenance) run(ctx context.Context, q store.Querier, engine string) error {
	// Who holds the rows read below commits first: a writer of reports
	// holds its targets (shared) and then its reconcilers; this one holds
	// its targets already.
	if len(m.driftTargets) > 0 || len(m.driftEndpoints) > 0 {
		eps, err := store.TargetEndpoints(ctx, q, slices.Collect(maps.Keys(m.driftTargets)))
		if err != nil {
			return fmt.Errorf("read target endpoints: %w", err)
		}
		eps = append(eps, slices.Collect(maps.Keys(m.driftEndpoints))...)
		if err := store.LockReconcilersShared(ctx, q, engine, eps); err != nil {
			return fmt.Errorf("lock reconcilers: %w", err)
		}
	}
	for i, d := range m.scope.Deployments {
		if k, ok := m.known[d]; ok {
			m.scope.Deployments[i].Known = &k
		}
	}
	// The reconcilers whose hosts may gain or lose an environment: those
	// created, retired, restored or moved, and those of endpoints that a
	// target joined or left.
	hostsOf := slices.Clone(m.scope.Reconcilers)
	for id := range m.touched {
		if _, existed := m.before[id]; !existed {
			hostsOf = append(hostsOf, id)
		}
	}
	outcomes, err := store.RefreshAssignments(ctx, q, engine, m.scope)
	if err != nil {
		return err
	}
	for ep := range m.driftEndpoints {
		ids, err := store.EndpointReconcilers(ctx, q, ep, "")
		if err != nil {
			return fmt.Errorf("read reconcilers of an endpoint: %w", err)
		}
		for _, id := range ids {
			m.driftReconcilers[id] = true
		}
		hostsOf = append(hostsOf, ids...)
	}
	for _, c := range m.driftCommits {
		ids, err := store.TargetReconcilersAt(ctx, q, c.TargetID, c.Commit)
		if err != nil {
			return fmt.Errorf("read reconcilers at a commit: %w", err)
		}
		for _, id := range ids {
			m.driftReconcilers[id] = true
		}
	}
	if len(m.driftReconcilers) > 0 || len(m.driftTargets) > 0 {
		if err := store.RefreshDrift(ctx, q, engine, slices.Sorted(maps.Keys(m.driftReconcilers)), slices.Sorted(maps.Keys(m.driftTargets))); err != nil {
			return err
		}
	}
	// Last, the rows that concurrent writers share: each assignment's
	// outcome, then the endpoint counts, then the hosts' rows (each in
	// key order). Their locks are held until commit, so taking them last
	// keeps other writers waiting the least.
	if err := store.WriteOutcomes(ctx, q, engine, outcomes); err != nil {
		return err
	}
	var after map[int64]store.ReconcilerFacts
	if len(m.touched) > 0 {
		after, err = store.ReadReconcilerFacts(ctx, q, engine, slices.Sorted(maps.Keys(m.touched)))
		if err != nil {
			return fmt.Errorf("read reconcilers: %w", err)
		}
		if err := store.AdjustEndpointCounts(ctx, q, engine, store.CountDeltas(m.before, after)); err != nil {
			return err
		}
	}
	if err := store.AdvanceSeries(ctx, q, engine, store.SeriesChanges(m.before, after, m.changes, m.late)); err != nil {
		return err
	}
	// Then the hosts' rows, under a lock per host taken after every
	// other (see LockHosts): the counts of the hosts whose reconcilers
	// changed or reported, and the environments of those that may have
	// gained or lost one.
	hostOf := map[int64]int64{}
	var reportHosts []int64 // whose earliest last-report time may move
	for id, f := range after {
		hostOf[id] = f.HostID
		if b, existed := m.before[id]; !existed || store.ReportTimeMoved(b, f) {
			reportHosts = append(reportHosts, f.HostID)
		}
	}
	var lookup []int64
	for _, id := range slices.Concat(m.reported, hostsOf) {
		if _, ok := hostOf[id]; !ok {
			lookup = append(lookup, id)
		}
	}
	if len(lookup) > 0 {
		more, err := store.ReconcilerHosts(ctx, q, engine, lookup)
		if err != nil {
			return err
		}
		maps.Copy(hostOf, more)
	}
	hosts := slices.Compact(slices.Sorted(maps.Values(hostOf)))
	if len(hosts) == 0 {
		return nil
	}
	if err := store.LockHosts(ctx, q, engine, hosts); err != nil {
		return err
	}
	if len(after) > 0 {
		if err := store.AdjustHostCounts(ctx, q, engine, store.HostDeltas(m.before, after)); err != nil {
			return err
		}
	}
	for _, id := range m.reported {
		reportHosts = append(reportHosts, hostOf[id])
	}
	if err := store.RefreshReportTimes(ctx, q, engine, slices.Compact(slices.Sorted(slices.Values(reportHosts)))); err != nil {
		return err
	}
	var envHosts []int64
	for _, id := range hostsOf {
		envHosts = append(envHosts, hostOf[id])
	}
	return store.RefreshHostEnvironments(ctx, q, engine, slices.Compact(slices.Sorted(slices.Values(envHosts))))
}
