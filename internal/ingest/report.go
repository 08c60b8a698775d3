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

func reportKeys(rs []model.Report) []model.ReconcilerKey {
	keys := make([]model.ReconcilerKey, len(rs))
	for i, r := range rs {
		keys[i] = model.ReconcilerKey{Host: r.Host, Name: r.Reconciler}
	}
	return keys
}

// allUnchanged reports whether every report repeats the stored state.
func (s *Service) allUnchanged(rs []model.Report, states map[model.ReconcilerKey]store.ReconcilerState, now time.Time) bool {
	for _, r := range rs {
		cur, ok := states[model.ReconcilerKey{Host: r.Host, Name: r.Reconciler}]
		if !ok || !s.unchanged(cur, r, now) {
			return false
		}
	}
	return true
}

// applyReports stores checked reports inside transaction q, writing their
// results into res.
//
// Reports that repeat stored state write nothing. Reports of known
// reconcilers whose host, type and endpoint are unchanged, no older than
// what is stored, are written together in a few statements (the batch
// path); the rest (new reconcilers, moved endpoints, registrations, late
// reports) are written one by one. Several reports of one reconciler apply
// in order.
//
// Locks are taken table by table, each table in one order whatever the
// batch: known reconcilers by id; then hosts, endpoints and reconcilers
// that the batch creates or changes, by name; deployments; commits by
// (endpoint, sha); resolutions by target (resolver.run). So concurrent
// batches wait for each other instead of deadlocking.
func (s *Service) applyReports(ctx context.Context, q store.Querier, rs []model.Report, res []ReportResult, now time.Time, rsv *resolver) error {
	if len(rs) == 0 {
		return nil
	}
	engine := s.store.Engine()
	keys := reportKeys(rs)
	stored, err := store.GetReconcilerStates(ctx, q, engine, keys)
	if err != nil {
		return fmt.Errorf("read reconcilers: %w", err)
	}

	// Which reports change anything, and by which path. states follows
	// each reconciler through the batch, so that a report is compared
	// with the one before it.
	states := maps.Clone(stored)
	var rounds [][]store.KnownReport
	var slow []int
	var sightings []sighting
	slowKeys := map[model.ReconcilerKey]bool{}
	round := map[model.ReconcilerKey]int{} // the next batch round of each reconciler
	for i, r := range rs {
		k := keys[i]
		cur, known := states[k]
		at := observedAt(r, now)
		if known && s.unchanged(cur, r, now) {
			continue
		}
		res[i].Changed = true
		if !r.Registered() && !(known && cur.EndpointKey == r.Endpoint.Key() && cur.Commit == r.Commit && !at.Before(cur.FirstSeen)) {
			sightings = append(sightings, sighting{endpoint: r.Endpoint.Key(), sha: r.Commit, at: at})
		}
		_, wasStored := stored[k]
		if wasStored && !slowKeys[k] && !r.Registered() && s.sameReconciler(cur, r) && cur.Commit != "" &&
			!at.Before(cur.LastChanged) && !at.Before(cur.FirstSeen) {
			n := round[k]
			round[k] = n + 1
			if n == len(rounds) {
				rounds = append(rounds, nil)
			}
			rounds[n] = append(rounds[n], store.KnownReport{ReconcilerID: cur.ID, EndpointID: cur.Endpoint.ID,
				Commit: r.Commit, Status: r.Status, Message: r.Message, MessageBytes: r.MessageBytes, At: at, ReportAt: now})
		} else {
			slow = append(slow, i)
			slowKeys[k] = true
		}
		states[k] = after(cur, known, r, at, now)
	}

	// Known reconcilers first, by id; then what the slow reports create or
	// change.
	lock := make([]int64, 0, len(stored))
	for _, st := range stored {
		lock = append(lock, st.ID)
	}
	if err := store.LockReconcilers(ctx, q, engine, lock); err != nil {
		return fmt.Errorf("lock reconcilers: %w", err)
	}
	recs, endpoints, err := s.ensureReconcilers(ctx, q, rs, slow, now, rsv)
	if err != nil {
		return err
	}

	// Deployments.
	for _, rr := range rounds {
		if err := store.WriteKnownReports(ctx, q, engine, rr); err != nil {
			return fmt.Errorf("write reports: %w", err)
		}
	}
	for _, i := range slow {
		r := rs[i]
		if r.Registered() {
			continue
		}
		if _, err := store.UpsertDeployment(ctx, q, recs[keys[i]], r.Commit, r.Status, r.Message, r.MessageBytes, observedAt(r, now)); err != nil {
			return &InputError{Kind: "report", Index: i, Err: fmt.Errorf("record deployment of %s: %w", r.Commit, err)}
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

// sighting is a report's commit, to record on the endpoint it named.
type sighting struct {
	endpoint string // the endpoint's key
	sha      string
	at       time.Time
}

// after is a reconciler's state after report r (known: it had state cur).
func after(cur store.ReconcilerState, known bool, r model.Report, at, now time.Time) store.ReconcilerState {
	if !known {
		cur = store.ReconcilerState{}
	}
	cur.Retired = false
	cur.Type, cur.EndpointKey = r.ReconcilerType, r.Endpoint.Key()
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

// ensureReconcilers creates or updates, for the slow reports, their hosts
// (by name), endpoints (by key) and reconcilers (by host and name), each
// with the facts of the last report that gives them. It returns the
// reconcilers' ids and the endpoints by key.
func (s *Service) ensureReconcilers(ctx context.Context, q store.Querier, rs []model.Report, slow []int, now time.Time, rsv *resolver) (map[model.ReconcilerKey]int64, map[string]store.EndpointRow, error) {
	type hostFacts struct {
		typ    string
		labels map[string]string
	}
	hosts := map[string]*hostFacts{}
	eps := map[string]model.Endpoint{}
	last := map[model.ReconcilerKey]int{} // the last slow report of each reconciler
	for _, i := range slow {
		r := rs[i]
		h := hosts[r.Host]
		if h == nil {
			h = &hostFacts{}
			hosts[r.Host] = h
		}
		if r.HostType != "" {
			h.typ = r.HostType
		}
		if r.HostLabels != nil {
			h.labels = r.HostLabels
		}
		if prev, ok := eps[r.Endpoint.Key()]; !ok || prev.Joined {
			eps[r.Endpoint.Key()] = r.Endpoint // the split form tells more
		}
		last[model.ReconcilerKey{Host: r.Host, Name: r.Reconciler}] = i
	}
	hostIDs := map[string]int64{}
	for _, name := range slices.Sorted(maps.Keys(hosts)) {
		id, err := store.EnsureHost(ctx, q, name, hosts[name].typ, hosts[name].labels, now)
		if err != nil {
			return nil, nil, fmt.Errorf("ensure host %s: %w", model.Quote(name), err)
		}
		hostIDs[name] = id
	}
	endpoints := map[string]store.EndpointRow{}
	for _, key := range slices.Sorted(maps.Keys(eps)) {
		ep, moved, err := store.EnsureEndpoint(ctx, q, eps[key], now)
		if err != nil {
			return nil, nil, fmt.Errorf("ensure manifests endpoint %s: %w", model.Quote(key), err)
		}
		rsv.branch(moved)
		endpoints[key] = ep
	}
	recs := map[model.ReconcilerKey]int64{}
	for _, k := range slices.SortedFunc(maps.Keys(last), func(a, b model.ReconcilerKey) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Name, b.Name))
	}) {
		r := rs[last[k]]
		id, err := store.UpsertReconciler(ctx, q, hostIDs[k.Host], k.Name, r.ReconcilerType, r.Source, endpoints[r.Endpoint.Key()].ID, now)
		if err != nil {
			return nil, nil, &InputError{Kind: "report", Index: last[k], Err: fmt.Errorf("ensure reconciler %s: %w", model.Quote(k.Name), err)}
		}
		recs[k] = id
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
func (s *Service) unchanged(cur store.ReconcilerState, r model.Report, now time.Time) bool {
	if cur.Retired || !s.sameReconciler(cur, r) {
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
func (s *Service) sameReconciler(cur store.ReconcilerState, r model.Report) bool {
	if cur.Type != r.ReconcilerType || cur.EndpointKey != r.Endpoint.Key() {
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
