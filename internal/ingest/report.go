package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// reportIndex is what a batch's reports are looked up by, worked out once.
type reportIndex struct {
	keys      []model.ReconcilerKey // each report's reconciler
	endpoints []string              // each report's endpoint key
	ids       []int64               // the reconcilers' ids when this hub knows them all, else nil
}

func indexReports(rs []model.Report) reportIndex {
	x := reportIndex{keys: make([]model.ReconcilerKey, len(rs)), endpoints: make([]string, len(rs))}
	for i, r := range rs {
		x.keys[i] = model.ReconcilerKey{Host: r.Host, Name: r.Reconciler}
		x.endpoints[i] = r.Endpoint.Key()
	}
	return x
}

// allUnchanged reports whether every report repeats the stored state.
func (s *Service) allUnchanged(rs []model.Report, x reportIndex, states map[model.ReconcilerKey]store.ReconcilerState, now time.Time) bool {
	for i, r := range rs {
		cur, ok := states[x.keys[i]]
		if !ok || !s.unchanged(cur, r, x.endpoints[i], now) {
			return false
		}
	}
	return true
}

// applyReports stores checked reports (x: their index) inside transaction
// q, writing their results into res.
//
// Reports that repeat stored state write nothing but, once the heartbeat
// has passed, the reconciler's last-report time. The others are written in
// a few statements per batch whatever its size: hosts, endpoints and
// reconcilers that are new or changed, then deployments in rounds (one
// report per reconciler a round, so that several reports of one reconciler
// apply in order), then commits. Registrations only ensure their
// reconciler; a late report (older than what is stored) is added to
// history one by one.
//
// Locks are taken table by table, each table in one order whatever the
// batch: the reconcilers' targets (shared) and the reconcilers by id;
// then hosts, endpoints and reconcilers the batch creates or changes, by
// name; deployments; commits by (endpoint, sha); resolutions by target
// (resolver.run). So concurrent batches wait for each other instead of
// deadlocking.
func (s *Service) applyReports(ctx context.Context, q store.Querier, rs []model.Report, x reportIndex, res []ReportResult, now time.Time, rsv *resolver) error {
	if len(rs) == 0 {
		return nil
	}
	engine := s.store.Engine()
	keys, eks := x.keys, x.endpoints
	stored, err := s.readReconcilers(ctx, q, keys, x.ids, true)
	if err != nil {
		return fmt.Errorf("read reconcilers: %w", err)
	}

	// What each report changes, compared with the one before it (states
	// follows each reconciler through the batch).
	states := maps.Clone(stored)
	writes := make([]int, 0, len(rs)) // deployments, in order
	var late []int                    // reports older than what is stored: history only
	var touch []int64                 // known reconcilers only reporting again
	var sightings []sighting
	ensure := map[model.ReconcilerKey]int{}                // reconcilers to create or update: the last report giving them
	changed := make(map[model.ReconcilerKey]bool, len(rs)) // reconcilers whose state changes, not just their last-report time
	lateKeys := map[model.ReconcilerKey]bool{}
	for i, r := range rs {
		k := keys[i]
		cur, known := states[k]
		at := observedAt(r, now)
		if known && s.unchanged(cur, r, eks[i], now) {
			continue
		}
		res[i].Changed = true
		same := known && !cur.Retired() && s.sameReconciler(cur, r, eks[i])
		if same && !r.Registered() && cur.Commit == r.Commit && cur.Status == r.Status && cur.Message == r.Message && !at.Before(cur.FirstSeen) {
			if _, ok := stored[k]; ok {
				touch = append(touch, cur.ID) // the heartbeat: only the last-report time moves
				states[k] = after(cur, known, r, eks[i], at, now)
				continue
			}
		}
		changed[k] = true
		if !same {
			ensure[k] = i
		}
		if !r.Registered() {
			if !(known && cur.EndpointKey == eks[i] && cur.Commit == r.Commit && !at.Before(cur.FirstSeen)) {
				sightings = append(sightings, sighting{report: i, endpoint: eks[i], sha: r.Commit, at: at})
			}
			if lateKeys[k] || (known && at.Before(cur.LastChanged)) {
				late = append(late, i)
				lateKeys[k] = true
			} else {
				writes = append(writes, i)
			}
		}
		states[k] = after(cur, known, r, eks[i], at, now)
	}

	// Reconcilers that are new or changed, with the endpoints they name;
	// and the endpoints of commits a reconciler reported on its way
	// through the batch to another one (every sighting's endpoint is
	// looked up below).
	storedEndpoints := map[string]bool{}
	for _, st := range stored {
		storedEndpoints[st.EndpointKey] = true
	}
	var through []int
	for _, sg := range sightings {
		if !storedEndpoints[sg.endpoint] {
			through = append(through, sg.report)
		}
	}
	recs, endpoints, err := s.ensureReconcilers(ctx, q, rs, eks, ensure, through, now, rsv)
	if err != nil {
		return err
	}
	idOf := func(k model.ReconcilerKey) int64 {
		if e, ok := recs[k]; ok {
			return e.ID
		}
		return stored[k].ID
	}
	for i, k := range keys {
		res[i].reconciler = idOf(k)
	}
	// A reconciler's endpoint after the batch: its last report's.
	lastOf := make(map[model.ReconcilerKey]int, len(rs))
	for i, k := range keys {
		lastOf[k] = i
	}
	endpointOf := func(k model.ReconcilerKey) int64 {
		if e, ok := endpoints[eks[lastOf[k]]]; ok {
			return e.ID
		}
		return stored[k].Endpoint.ID
	}
	// What the maintained state must follow.
	for i, r := range rs {
		if !res[i].Changed {
			continue
		}
		k := keys[i]
		if !changed[k] {
			continue // only its last-report time moved
		}
		id := idOf(k)
		if st, ok := stored[k]; ok {
			facts := store.ReconcilerFacts{EndpointID: st.Endpoint.ID, Commit: st.Commit, Status: string(st.Status), Live: !st.Retired(),
				Since: st.LastChanged, RetiredAt: st.RetiredAt, LastReportAt: st.LastReportAt}
			if driftKept(st, states[k]) {
				rsv.m.status(id, facts)
			} else {
				rsv.m.reconciler(id, facts, true)
			}
			if st.Retired() || st.EndpointKey != eks[i] {
				rsv.m.allAssignments(id)
			}
		} else if before := recs[k].Before; before != nil {
			// Created meanwhile by a concurrent writer: not new after all.
			rsv.m.reconciler(id, *before, true)
			rsv.m.allAssignments(id)
		} else {
			rsv.m.reconciler(id, store.ReconcilerFacts{}, false)
		}
		if !r.Registered() {
			rsv.m.deployment(id, r.Commit)
		}
	}

	// Deployments.
	if err := store.TouchReconcilers(ctx, q, engine, touch, now); err != nil {
		return fmt.Errorf("record heartbeats: %w", err)
	}
	rsv.m.heartbeat(touch)
	known := make([]store.KnownReport, len(writes))
	for j, i := range writes {
		r := rs[i]
		reportAt := now // the last-report time, to the heartbeat's precision
		st, ok := stored[keys[i]]
		if ok && !st.Retired() && now.Sub(st.LastReportAt) < s.heartbeat {
			reportAt = st.LastReportAt
		}
		current := st.Commit
		if before := recs[keys[i]].Before; before != nil {
			current = before.Commit // as locked when ensured: it may have been created meanwhile
		}
		known[j] = store.KnownReport{ReconcilerID: idOf(keys[i]), Commit: r.Commit, Status: r.Status,
			Message: r.Message, MessageBytes: r.MessageBytes, At: observedAt(r, now), ReportAt: reportAt, Current: current}
	}
	lateWrites, written, changes, err := store.WriteKnownReports(ctx, q, engine, known)
	if err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	rsv.m.history(changes)
	for _, j := range lateWrites {
		late = append(late, writes[j])
	}
	slices.Sort(late)
	for _, i := range late {
		r := rs[i]
		if _, err := store.UpsertDeployment(ctx, q, idOf(keys[i]), r.Commit, r.Status, r.Message, r.MessageBytes, observedAt(r, now)); err != nil {
			return &InputError{Kind: "report", Index: i, Err: fmt.Errorf("record deployment of %s: %w", r.Commit, err)}
		}
		delete(written, store.DeploymentKey{ReconcilerID: idOf(keys[i]), Commit: r.Commit})
		rsv.m.drift(idOf(keys[i])) // it may move the first sighting of the commit
		rsv.m.lateReport(endpointOf(keys[i]), observedAt(r, now))
	}
	// The maintained state takes the deployments written in the batch as
	// they were left, on the endpoint their reconciler is on now.
	for _, i := range writes {
		k := store.DeploymentKey{ReconcilerID: idOf(keys[i]), Commit: rs[i].Commit}
		if d, ok := written[k]; ok {
			d.EndpointID = endpointOf(keys[i])
			rsv.m.known[k] = d
		}
	}

	// Commits, each on the endpoint its report named.
	for _, st := range stored {
		if _, ok := endpoints[st.EndpointKey]; !ok {
			endpoints[st.EndpointKey] = st.Endpoint
		}
	}
	byID := map[int64]store.EndpointRow{}
	seen := make([]store.NewCommit, len(sightings))
	for i, sg := range sightings {
		ep := endpoints[sg.endpoint]
		byID[ep.ID] = ep
		seen[i] = store.NewCommit{EndpointID: ep.ID, SHA: sg.sha, Seen: sg.at}
	}
	fresh, err := store.RecordCommits(ctx, q, engine, seen)
	if err != nil {
		return fmt.Errorf("record commits: %w", err)
	}
	for _, c := range fresh {
		rsv.commit(byID[c.EndpointID], c.SHA, c.Seen)
	}
	return nil
}

// readReconcilers reads the stored state of reconcilers (keys; known: their
// ids, or nil), by id when all are known, else by name. An id that names
// another reconciler, or none, is found out here: the reconcilers are then
// read by name. forUpdate first locks the targets of the reconcilers'
// endpoints (shared), then the reconcilers (for update), each in id order:
// a descriptor's transaction on one of those targets commits first.
func (s *Service) readReconcilers(ctx context.Context, q store.Querier, keys []model.ReconcilerKey, known []int64, forUpdate bool) (map[model.ReconcilerKey]store.ReconcilerState, error) {
	engine := s.store.Engine()
	if known != nil {
		if forUpdate {
			if err := store.LockTargetsOfReconcilersShared(ctx, q, engine, known); err != nil {
				return nil, fmt.Errorf("lock targets: %w", err)
			}
		}
		states, err := store.GetReconcilerStatesByID(ctx, q, engine, known, forUpdate)
		if err != nil {
			return nil, err
		}
		found := true
		for i, k := range keys {
			if st, ok := states[k]; !ok || st.ID != known[i] {
				found = false
				break
			}
		}
		if found {
			return states, nil
		}
	}
	if forUpdate {
		if err := store.LockReconcilerTargetsShared(ctx, q, engine, keys); err != nil {
			return nil, fmt.Errorf("lock targets: %w", err)
		}
	}
	return store.GetReconcilerStates(ctx, q, engine, keys, forUpdate)
}

// driftKept reports whether a reconciler's drift stays as it is from state
// before to state after a batch. Drift follows the reconciler's endpoint,
// commit (with its first sighting, which only a late report moves: those
// mark drift themselves), whether it is live, and whether it is failing
// (the scheduled version failing drifts, since it failed): a move between
// other statuses of the same commit changes none of these.
func driftKept(before, after store.ReconcilerState) bool {
	return !before.Retired() && !after.Retired() && before.EndpointKey == after.EndpointKey && before.Commit == after.Commit &&
		before.Status != model.StatusFailure && after.Status != model.StatusFailure
}

// sighting is a report's commit, to record on the endpoint it named.
type sighting struct {
	report   int    // its report, in the batch
	endpoint string // the endpoint's key
	sha      string
	at       time.Time
}

// after is a reconciler's state after report r, naming endpoint (known: it
// had state cur).
func after(cur store.ReconcilerState, known bool, r model.Report, endpoint string, at, now time.Time) store.ReconcilerState {
	if !known {
		cur = store.ReconcilerState{}
	}
	cur.RetiredAt = time.Time{}
	cur.Type, cur.EndpointKey = r.ReconcilerType, endpoint
	if r.Source != "" {
		cur.Source = r.Source
	}
	if r.HostType != "" {
		cur.HostType = r.HostType
	}
	if r.HostLabels != nil {
		b, _ := json.Marshal(r.HostLabels)
		cur.HostLabels = string(b)
	}
	cur.LastReportAt = now
	switch {
	case r.Registered():
		return cur
	case at.Before(cur.LastChanged):
		return cur // a late report: history only
	case cur.Commit != r.Commit || at.Before(cur.FirstSeen):
		cur.FirstSeen = at
	}
	if cur.Commit != r.Commit || cur.Status != r.Status || cur.Message != r.Message {
		cur.LastChanged = at
	}
	cur.Commit, cur.Status, cur.Message = r.Commit, r.Status, r.Message
	return cur
}

// ensureReconcilers creates or updates reconcilers (ensure: the last report
// giving each; eks: the reports' endpoint keys), with their hosts and
// endpoints, and the endpoints of the reports in through, table by table
// in name order. It returns them, and the endpoints by key.
func (s *Service) ensureReconcilers(ctx context.Context, q store.Querier, rs []model.Report, eks []string, ensure map[model.ReconcilerKey]int, through []int, now time.Time, rsv *resolver) (map[model.ReconcilerKey]store.Upserted, map[string]store.EndpointRow, error) {
	engine := s.store.Engine()
	endpoints := map[string]store.EndpointRow{}
	if len(ensure) == 0 && len(through) == 0 {
		return nil, endpoints, nil
	}
	order := slices.SortedFunc(maps.Keys(ensure), func(a, b model.ReconcilerKey) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Name, b.Name))
	})
	// Hosts, with the facts of the last report that gives them.
	hosts := map[string]*store.HostFacts{}
	eps := map[string]model.Endpoint{}
	for _, i := range slices.Sorted(maps.Values(ensure)) {
		r := rs[i]
		h := hosts[r.Host]
		if h == nil {
			h = &store.HostFacts{Name: r.Host}
			hosts[r.Host] = h
		}
		if r.HostType != "" {
			h.Type = r.HostType
		}
		if r.HostLabels != nil {
			h.Labels = r.HostLabels
		}
		if prev, ok := eps[eks[i]]; !ok || prev.Joined {
			eps[eks[i]] = r.Endpoint // the split form tells more
		}
	}
	for _, i := range through {
		if prev, ok := eps[eks[i]]; !ok || prev.Joined {
			eps[eks[i]] = rs[i].Endpoint
		}
	}
	facts := make([]store.HostFacts, 0, len(hosts))
	for _, h := range hosts {
		facts = append(facts, *h)
	}
	hostIDs, err := store.EnsureHosts(ctx, q, engine, facts, now)
	if err != nil {
		return nil, nil, fmt.Errorf("ensure hosts: %w", err)
	}
	endpoints, moved, err := store.EnsureEndpoints(ctx, q, engine, eps, now)
	if err != nil {
		return nil, nil, err
	}
	rsv.branch(moved)
	ups := make([]store.ReconcilerUpsert, 0, len(order))
	for _, k := range order {
		r := rs[ensure[k]]
		ups = append(ups, store.ReconcilerUpsert{HostID: hostIDs[k.Host], Name: k.Name, Type: r.ReconcilerType, Source: r.Source,
			EndpointID: endpoints[eks[ensure[k]]].ID, ReportAt: now})
	}
	byHost, err := store.UpsertReconcilers(ctx, q, engine, ups)
	if err != nil {
		return nil, nil, fmt.Errorf("ensure reconcilers: %w", err)
	}
	recs := make(map[model.ReconcilerKey]store.Upserted, len(order))
	for _, k := range order {
		recs[k] = byHost[store.ReconcilerOf{HostID: hostIDs[k.Host], Name: k.Name}]
	}
	return recs, endpoints, nil
}

// observedAt is when the reconciler reached the reported state: the
// report's own time, else now.
func observedAt(r model.Report, now time.Time) time.Time {
	if r.ObservedAt.IsZero() {
		return now
	}
	return r.ObservedAt.UTC()
}

// unchanged reports whether a report repeats what is stored, so that
// storing it would change nothing but the reconciler's last-report time,
// and that time is younger than the heartbeat.
func (s *Service) unchanged(cur store.ReconcilerState, r model.Report, endpoint string, now time.Time) bool {
	if cur.Retired() || !s.sameReconciler(cur, r, endpoint) {
		return false
	}
	if r.Registered() {
		return true // registering a known reconciler keeps its deployment
	}
	if now.Sub(cur.LastReportAt) >= s.heartbeat {
		return false
	}
	// An earlier sighting of the same state moves when it was first seen.
	return cur.Commit == r.Commit && cur.Status == r.Status && cur.Message == r.Message && !observedAt(r, now).Before(cur.FirstSeen)
}

// sameReconciler reports whether the report's host and reconciler facts
// (type, endpoint, source, host type and labels) are those stored.
func (s *Service) sameReconciler(cur store.ReconcilerState, r model.Report, endpoint string) bool {
	if cur.Type != r.ReconcilerType || cur.EndpointKey != endpoint {
		return false
	}
	if r.Source != "" && cur.Source != r.Source {
		return false
	}
	if r.HostType != "" && cur.HostType != r.HostType {
		return false
	}
	if r.HostLabels != nil {
		var stored map[string]string
		if json.Unmarshal([]byte(cur.HostLabels), &stored) != nil || !maps.Equal(stored, r.HostLabels) {
			return false
		}
	}
	return true
}
