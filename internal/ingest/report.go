package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
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
// reports) go one by one, in (host, reconciler) order. Several reports of
// one reconciler apply in order.
func (s *Service) applyReports(ctx context.Context, q store.Querier, rs []model.Report, res []ReportResult, now time.Time, rsv *resolver) error {
	if len(rs) == 0 {
		return nil
	}
	keys := reportKeys(rs)
	states, err := store.GetReconcilerStates(ctx, q, s.store.Engine(), keys)
	if err != nil {
		return fmt.Errorf("read reconcilers: %w", err)
	}
	var rounds [][]store.KnownReport
	var slow []int
	endpoints := map[int64]store.EndpointRow{} // of the batched reconcilers
	round := map[model.ReconcilerKey]int{}     // the next round of each reconciler
	for i, r := range rs {
		cur, known := states[keys[i]]
		at := observedAt(r, now)
		switch {
		case round[keys[i]] < 0:
			slow = append(slow, i) // keep its later reports in order, on the slow path too
			continue
		case known && s.unchanged(cur, r, now):
			continue
		case !known || r.Registered() || !s.sameReconciler(cur, r) || cur.Commit == "" || at.Before(cur.LastChanged) || at.Before(cur.FirstSeen):
			slow = append(slow, i)
			round[keys[i]] = -1
			continue
		}
		n := round[keys[i]]
		round[keys[i]] = n + 1
		if n == len(rounds) {
			rounds = append(rounds, nil)
		}
		endpoints[cur.Endpoint.ID] = cur.Endpoint
		rounds[n] = append(rounds[n], store.KnownReport{ReconcilerID: cur.ID, EndpointID: cur.Endpoint.ID,
			Commit: r.Commit, Status: r.Status, Message: r.Message, MessageBytes: r.MessageBytes, At: at, ReportAt: now})
		res[i].Changed = true
		// Later reports of this reconciler compare with this one.
		if cur.Commit != r.Commit {
			cur.FirstSeen = at
		}
		if cur.Commit != r.Commit || cur.Status != r.Status || cur.Message != r.Message {
			cur.LastChanged = at
		}
		cur.Commit, cur.Status, cur.Message, cur.LastReportAt = r.Commit, r.Status, r.Message, now
		states[keys[i]] = cur
	}
	for _, rr := range rounds {
		fresh, err := store.WriteKnownReports(ctx, q, s.store.Engine(), rr)
		if err != nil {
			return fmt.Errorf("write reports: %w", err)
		}
		for _, c := range fresh {
			rsv.commit(endpoints[c.EndpointID], c.SHA, c.Seen)
		}
	}
	// The slow path in one order, so that concurrent batches lock alike.
	slices.SortStableFunc(slow, func(a, b int) int {
		return cmp.Or(cmp.Compare(keys[a].Host, keys[b].Host), cmp.Compare(keys[a].Name, keys[b].Name))
	})
	for _, i := range slow {
		changed, err := s.applyReport(ctx, q, rs[i], now, rsv)
		if err != nil {
			return &InputError{Kind: "report", Index: i, Err: err}
		}
		res[i].Changed = changed
	}
	return nil
}

// applyReport stores one checked report inside transaction q.
func (s *Service) applyReport(ctx context.Context, q store.Querier, r model.Report, now time.Time, rsv *resolver) (bool, error) {
	at := observedAt(r, now)
	cur, err := store.GetReconcilerState(ctx, q, r.Host, r.Reconciler)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNoRows) {
		return false, fmt.Errorf("read reconciler: %w", err)
	}
	if known && s.unchanged(cur, r, now) {
		return false, nil
	}
	var ep store.EndpointRow
	var rec int64
	if known && s.sameReconciler(cur, r) {
		// Its host, endpoint and type are as stored: only the report.
		ep, rec = cur.Endpoint, cur.ID
		if err := store.TouchReconciler(ctx, q, rec, now); err != nil {
			return false, fmt.Errorf("update reconciler: %w", err)
		}
	} else {
		host, err := store.EnsureHost(ctx, q, r.Host, r.HostType, r.HostLabels, now)
		if err != nil {
			return false, fmt.Errorf("ensure host %s: %w", model.Quote(r.Host), err)
		}
		var moved []string
		if ep, moved, err = store.EnsureEndpoint(ctx, q, r.Endpoint, now); err != nil {
			return false, fmt.Errorf("ensure manifests endpoint %s: %w", model.Quote(r.Endpoint.Key()), err)
		}
		rsv.branch(moved)
		if rec, err = store.UpsertReconciler(ctx, q, host, r.Reconciler, r.ReconcilerType, r.Source, ep.ID, now); err != nil {
			return false, fmt.Errorf("ensure reconciler %s: %w", model.Quote(r.Reconciler), err)
		}
	}
	if r.Registered() {
		return true, nil // registered before its first report: no deployment yet
	}
	if _, err := store.UpsertDeployment(ctx, q, rec, r.Commit, r.Status, r.Message, r.MessageBytes, at); err != nil {
		return false, fmt.Errorf("record deployment of %s: %w", r.Commit, err)
	}
	if known && cur.Endpoint.ID == ep.ID && r.Commit == cur.Commit && !at.Before(cur.FirstSeen) {
		return true, nil // the commit is recorded on this endpoint, no later than now
	}
	changed, err := store.RecordCommit(ctx, q, ep.ID, r.Commit, at)
	if err != nil {
		return false, fmt.Errorf("record commit %s: %w", r.Commit, err)
	}
	if changed {
		rsv.commit(ep, r.Commit, at)
	}
	return true, nil
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
