// Package ingest turns inputs from every source (Kubernetes resources, the
// HTTP API, pollers, agents) into stored state, applying the correlation
// rules of SPEC §1. Sources and controllers call ingest; ingest calls the
// store.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// DefaultHeartbeat is how stale a reconciler's last-report time may get
// before an unchanged report refreshes it. Unchanged reports within it cost
// no writes.
const DefaultHeartbeat = time.Minute

// Service ingests descriptors and reports.
type Service struct {
	store     *store.Store
	now       func() time.Time
	heartbeat time.Duration
	log       *slog.Logger
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the source of "now" (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithHeartbeat sets DefaultHeartbeat's replacement.
func WithHeartbeat(d time.Duration) Option { return func(s *Service) { s.heartbeat = d } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns a Service writing to st.
func New(st *store.Store, opts ...Option) *Service {
	s := &Service{store: st, now: time.Now, heartbeat: DefaultHeartbeat, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ConflictError is an input that contradicts what is stored, such as a
// version re-published with another build. Nothing of it is stored.
type ConflictError struct {
	Field   string
	Problem string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Problem }

// DescriptorResult says what a descriptor became.
type DescriptorResult struct {
	AssignmentID int64
	// Commit is the GitOps commit of the assignment; empty while pending.
	Commit string
	// Changed is false when the descriptor was already stored as it is.
	Changed bool
}

// ApplyDescriptor stores a validated descriptor in one transaction.
func (s *Service) ApplyDescriptor(ctx context.Context, d model.Descriptor) (DescriptorResult, error) {
	var res DescriptorResult
	err := s.store.Tx(ctx, func(q store.Querier) error {
		res = DescriptorResult{}
		now := s.now().UTC()
		ws, err := store.EnsureWorkspace(ctx, q, d.Workspace, now)
		if err != nil {
			return err
		}
		app, err := store.EnsureApplication(ctx, q, ws, d.Application, now)
		if err != nil {
			return err
		}
		wl, err := store.EnsureWorkload(ctx, q, app, d.Workload, d.Source, now)
		if err != nil {
			return err
		}
		env, err := store.EnsureEnvironment(ctx, q, d.Environment, now)
		if err != nil {
			return err
		}
		ep, err := store.EnsureEndpoint(ctx, q, d.Manifests, now)
		if err != nil {
			return err
		}
		target, moved, err := store.UpsertTarget(ctx, q, wl, env, d.Target, ep, d.Labels, now)
		if err != nil {
			return err
		}
		var buildTime *time.Time
		if !d.BuildTime.IsZero() {
			bt := d.BuildTime.UTC()
			buildTime = &bt
		}
		v, err := store.EnsureVersion(ctx, q, wl, d.Version, d.Build, d.BuildCommit, buildTime, now)
		if err != nil {
			return err
		}
		if err := versionConflict(d, v); err != nil {
			return err
		}
		assignedAt := now
		if !d.AssignedAt.IsZero() {
			assignedAt = d.AssignedAt.UTC()
		}
		id, commit, changed, err := s.assign(ctx, q, target, v.ID, d, assignedAt, now)
		if err != nil {
			return err
		}
		res = DescriptorResult{AssignmentID: id, Commit: commit, Changed: changed || moved}
		if !res.Changed {
			return nil
		}
		if err := store.RefreshScheduled(ctx, q, target.ID); err != nil {
			return err
		}
		return resolveTarget(ctx, q, target, "")
	})
	return res, err
}

func versionConflict(d model.Descriptor, v store.VersionRow) error {
	clash := func(field, stored, given string) error {
		if given != "" && stored != given {
			return &ConflictError{Field: "spec.workloadVersion." + field, Problem: fmt.Sprintf(
				"version %s of workload %s is recorded with %s %q, not %q; a published version cannot change: publish a new version",
				d.Version, d.Workload, field, stored, given)}
		}
		return nil
	}
	if err := clash("build", v.Build, d.Build); err != nil {
		return err
	}
	if err := clash("commit", v.BuildCommit, d.BuildCommit); err != nil {
		return err
	}
	if !d.BuildTime.IsZero() && v.BuildTime != nil && !v.BuildTime.Equal(d.BuildTime) {
		return clash("buildTime", v.BuildTime.UTC().Format(time.RFC3339), d.BuildTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// assign records the assignment of version to target. Replaying the same
// descriptor changes nothing:
//   - with a commit: the target's assignment at that commit is it, or the
//     target's latest assignment is this version pending and gets the commit,
//     or a new assignment is recorded;
//   - pending: the target's latest assignment is already this version, or a
//     new pending assignment is recorded.
func (s *Service) assign(ctx context.Context, q store.Querier, t store.TargetRow, versionID int64, d model.Descriptor, assignedAt, now time.Time) (id int64, commit string, changed bool, err error) {
	if err := store.LockTarget(ctx, q, t.ID); err != nil {
		return 0, "", false, err
	}
	all, err := store.TargetAssignments(ctx, q, t.ID)
	if err != nil {
		return 0, "", false, err
	}
	var latest *store.Assignment
	if len(all) > 0 {
		latest = &all[len(all)-1]
	}
	if d.Commit == "" {
		if latest != nil && latest.VersionID == versionID {
			return latest.ID, latest.Commit, false, nil
		}
		id, err := store.InsertAssignment(ctx, q, t.ID, versionID, "", d.FluxSource, assignedAt, now)
		return id, "", true, err
	}
	commit = d.Commit
	if model.IsAbbreviated(commit) {
		ep := store.EndpointRow{ID: t.EndpointID, BranchKey: t.BranchKey}
		if commit, err = store.ExpandCommit(ctx, q, ep, commit); err != nil {
			return 0, "", false, err
		}
	}
	for _, a := range all {
		if a.Commit != "" && model.CommitsMatch(a.Commit, commit) {
			if a.VersionID != versionID {
				return 0, "", false, &ConflictError{Field: "spec.gitOpsCommitId", Problem: fmt.Sprintf(
					"commit %s already assigns another version to target %s in %s; a commit assigns one version per target",
					commit, d.Target, d.Environment)}
			}
			return a.ID, a.Commit, false, nil
		}
	}
	if latest != nil && latest.Commit == "" && latest.VersionID == versionID {
		if err := store.SetAssignmentCommit(ctx, q, latest.ID, commit); err != nil {
			return 0, "", false, err
		}
		id = latest.ID
	} else if id, err = store.InsertAssignment(ctx, q, t.ID, versionID, commit, d.FluxSource, assignedAt, now); err != nil {
		return 0, "", false, err
	}
	_, err = store.RecordCommit(ctx, q, t.EndpointID, commit, assignedAt)
	return id, commit, true, err
}

// resolveTarget recomputes which assignment is in effect for the target at
// each commit seen on its endpoint (or only at sha), per SPEC §1:
//
//	the assignment at that commit if there is one, else the latest
//	assignment of the target recorded before the commit was first seen on
//	its branch; else unknown.
//
// Only resolutions that change are written.
func resolveTarget(ctx context.Context, q store.Querier, t store.TargetRow, sha string) error {
	assignments, err := store.TargetAssignments(ctx, q, t.ID)
	if err != nil {
		return err
	}
	commits, err := store.TargetCommits(ctx, q, t, sha)
	if err != nil {
		return err
	}
	stored, err := store.TargetResolutions(ctx, q, t.ID, sha)
	if err != nil {
		return err
	}
	for _, c := range commits {
		want := inEffect(assignments, c)
		if have, ok := stored[c.SHA]; ok && have == want {
			continue
		}
		if err := store.SetResolution(ctx, q, t.ID, c.SHA, want); err != nil {
			return err
		}
	}
	return nil
}

// inEffect picks the assignment in effect at commit c from a target's
// assignments (oldest first); 0 when none is.
func inEffect(assignments []store.Assignment, c store.CommitSeen) int64 {
	for i := len(assignments) - 1; i >= 0; i-- {
		if a := assignments[i]; a.Commit != "" && model.CommitsMatch(a.Commit, c.SHA) {
			return a.ID
		}
	}
	for i := len(assignments) - 1; i >= 0; i-- {
		if !assignments[i].AssignedAt.After(c.FirstSeen) {
			return assignments[i].ID
		}
	}
	return 0
}

// ReportResult says what a report changed.
type ReportResult struct {
	// Changed is false when the report repeated what was stored: nothing
	// was written.
	Changed bool
}

// ApplyReport stores a validated reconciler report.
//
// A report that repeats the stored state writes nothing, unless the
// reconciler's last-report time is older than the heartbeat; then only that
// time moves. A report for a commit the hub cannot place is stored all the
// same, and shows as an unknown version.
func (s *Service) ApplyReport(ctx context.Context, r model.Report) (ReportResult, error) {
	now := s.now().UTC()
	at := observedAt(r, now)
	cur, err := store.GetReconcilerState(ctx, s.store.Read(), r.Host, r.Reconciler)
	if err != nil && !errors.Is(err, store.ErrNoRows) {
		return ReportResult{}, err
	}
	if err == nil && s.unchanged(cur, r, now) {
		return ReportResult{}, nil
	}
	// A known reconciler whose host, type and endpoint are as stored only
	// needs its deployment written.
	known := err == nil && s.sameReconciler(cur, r)
	var res ReportResult
	err = s.store.Tx(ctx, func(q store.Querier) error {
		res = ReportResult{Changed: true}
		var ep store.EndpointRow
		var rec int64
		if known {
			ep, rec = cur.Endpoint, cur.ID
			if err := store.TouchReconciler(ctx, q, rec, now); err != nil {
				return err
			}
		} else {
			host, err := store.EnsureHost(ctx, q, r.Host, r.HostType, r.HostLabels, now)
			if err != nil {
				return err
			}
			if ep, err = store.EnsureEndpoint(ctx, q, r.Endpoint, now); err != nil {
				return err
			}
			if rec, err = store.UpsertReconciler(ctx, q, host, r.Reconciler, r.ReconcilerType, r.Source, ep.ID, now); err != nil {
				return err
			}
		}
		if r.Registered() {
			return nil // registered before its first report: no deployment yet
		}
		commit := r.Commit
		if model.IsAbbreviated(commit) {
			var err error
			if commit, err = store.ExpandCommit(ctx, q, ep, commit); err != nil {
				return err
			}
		}
		if _, err := store.UpsertDeployment(ctx, q, rec, commit, r.Status, r.Message, at); err != nil {
			return err
		}
		if known && commit == cur.Commit {
			return nil // the commit is recorded on this endpoint already
		}
		firstSeen, err := store.RecordCommit(ctx, q, ep.ID, commit, at)
		if err != nil || !firstSeen {
			return err
		}
		targets, err := store.TargetsToResolve(ctx, q, ep, commit, at)
		if err != nil {
			return err
		}
		for _, t := range targets {
			if err := resolveTarget(ctx, q, t, commit); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// observedAt is when the reconciler reached the reported state: the
// report's own time, else now.
func observedAt(r model.Report, now time.Time) time.Time {
	if r.ObservedAt.IsZero() {
		return now
	}
	return r.ObservedAt.UTC()
}

func (s *Service) unchanged(cur store.ReconcilerState, r model.Report, now time.Time) bool {
	if r.Registered() {
		return !cur.Retired && s.sameReconciler(cur, r)
	}
	if cur.Retired || now.Sub(cur.LastReportAt) >= s.heartbeat {
		return false
	}
	if cur.Commit != r.Commit || cur.Status != r.Status || cur.Message != r.Message {
		return false
	}
	return s.sameReconciler(cur, r)
}

// sameReconciler reports whether the report's host and reconciler facts
// (type, endpoint, host type and labels) are those stored.
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

// RetireReconciler stops counting a reconciler as a host of its target (its
// resource was deleted or it vanished from its source). Its history stays; a
// later report brings it back.
func (s *Service) RetireReconciler(ctx context.Context, host, name string) (bool, error) {
	var retired bool
	err := s.store.Tx(ctx, func(q store.Querier) error {
		var err error
		retired, err = store.RetireReconciler(ctx, q, host, name, s.now().UTC())
		return err
	})
	return retired, err
}

// RetireMissing retires the live reconcilers that source reported and
// that are not in present: they vanished from the source (an Azure
// Resource Graph poll, an agent's full resync). It returns the retired
// ones. Their history stays; a later report brings them back.
func (s *Service) RetireMissing(ctx context.Context, source string, present []model.ReconcilerKey) ([]model.ReconcilerKey, error) {
	if source == "" {
		return nil, fmt.Errorf("retire missing reconcilers: the source is empty")
	}
	keep := make(map[model.ReconcilerKey]bool, len(present))
	for _, k := range present {
		keep[k] = true
	}
	var retired []model.ReconcilerKey
	err := s.store.Tx(ctx, func(q store.Querier) error {
		retired = nil
		live, err := store.SourceReconcilers(ctx, q, source)
		if err != nil {
			return fmt.Errorf("list reconcilers of source %s: %w", source, err)
		}
		now := s.now().UTC()
		for _, l := range live {
			if keep[l.Key] {
				continue
			}
			ok, err := store.RetireReconcilerID(ctx, q, l.ID, now)
			if err != nil {
				return fmt.Errorf("retire reconciler %s on host %s: %w", l.Key.Name, l.Key.Host, err)
			}
			if ok {
				retired = append(retired, l.Key)
			}
		}
		return nil
	})
	return retired, err
}

// ResolveFluxRevision gives the assignments still pending on a Flux
// Kustomization ("namespace/name") the revision it applied at appliedAt.
// Assignments recorded after appliedAt wait for a later revision: they were
// not part of what that revision applied. It returns how many were
// resolved.
func (s *Service) ResolveFluxRevision(ctx context.Context, fluxSource, revision string, appliedAt time.Time) (int, error) {
	sha, err := model.NormalizeRevision(revision)
	if err != nil {
		return 0, fmt.Errorf("kustomization %s: status.lastAppliedRevision: %w", fluxSource, err)
	}
	var n int
	err = s.store.Tx(ctx, func(q store.Querier) error {
		n = 0
		pending, err := store.PendingAssignments(ctx, q, fluxSource)
		if err != nil {
			return err
		}
		for _, p := range pending {
			if !appliedAt.IsZero() && p.RecordedAt.After(appliedAt) {
				continue
			}
			t := p.Target
			all, err := store.TargetAssignments(ctx, q, t.ID)
			if err != nil {
				return err
			}
			if taken := atCommit(all, sha); taken != 0 && taken != p.ID {
				s.log.Warn("pending assignment left pending: its target already has an assignment at this commit",
					"kustomization", fluxSource, "commit", sha, "assignment", p.ID)
				continue
			}
			if err := store.SetAssignmentCommit(ctx, q, p.ID, sha); err != nil {
				return err
			}
			if _, err := store.RecordCommit(ctx, q, t.EndpointID, sha, p.RecordedAt); err != nil {
				return err
			}
			if err := resolveTarget(ctx, q, t, ""); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func atCommit(all []store.Assignment, sha string) int64 {
	for _, a := range all {
		if a.Commit != "" && model.CommitsMatch(a.Commit, sha) {
			return a.ID
		}
	}
	return 0
}

// ApplyAzureResourceGraph stores a poller configuration pushed through the
// API (validated by the caller: resource.ValidateAzureResourceGraph). It reports whether anything changed.
func (s *Service) ApplyAzureResourceGraph(ctx context.Context, r *v1alpha1.AzureResourceGraph) (bool, error) {
	spec, err := json.Marshal(r.Spec)
	if err != nil {
		return false, err
	}
	var changed bool
	err = s.store.Tx(ctx, func(q store.Querier) error {
		changed, err = store.UpsertAzureResourceGraph(ctx, q, r.Name, string(spec), s.now().UTC())
		return err
	})
	return changed, err
}

// ApplyReports stores many reports. Reports that repeat stored state write
// nothing; reports of known reconcilers whose host, type and endpoint are
// unchanged are written together, in one transaction of a few statements;
// the rest (new reconcilers, moved endpoints, abbreviated commits) go one by
// one through ApplyReport. Several reports of one reconciler apply in order.
func (s *Service) ApplyReports(ctx context.Context, rs []model.Report) ([]ReportResult, error) {
	results := make([]ReportResult, len(rs))
	keys := make([]store.ReconcilerKey, len(rs))
	for i, r := range rs {
		keys[i] = store.ReconcilerKey{Host: r.Host, Name: r.Reconciler}
	}
	states, err := s.store.GetReconcilerStates(ctx, keys)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	var rounds [][]store.KnownReport
	var slow []int
	endpoints := map[int64]store.EndpointRow{} // of the batched reconcilers
	round := map[store.ReconcilerKey]int{}     // the next round of each reconciler
	for i, r := range rs {
		cur, known := states[keys[i]]
		switch {
		case !known || !s.sameReconciler(cur, r) || model.IsAbbreviated(r.Commit) || round[keys[i]] < 0 || r.Registered() && !s.unchanged(cur, r, now):
			slow = append(slow, i)
			round[keys[i]] = -1 // keep its later reports in order, on the slow path too
			continue
		case s.unchanged(cur, r, now):
			continue
		}
		at := observedAt(r, now)
		n := round[keys[i]]
		round[keys[i]] = n + 1
		if n == len(rounds) {
			rounds = append(rounds, nil)
		}
		endpoints[cur.Endpoint.ID] = cur.Endpoint
		rounds[n] = append(rounds[n], store.KnownReport{ReconcilerID: cur.ID, EndpointID: cur.Endpoint.ID,
			Commit: r.Commit, Status: r.Status, Message: r.Message, At: at, ReportAt: now})
		results[i].Changed = true
		// Later reports of this reconciler compare with this one.
		cur.Commit, cur.Status, cur.Message, cur.LastReportAt = r.Commit, r.Status, r.Message, now
		states[keys[i]] = cur
	}
	if len(rounds) > 0 {
		err := s.store.Tx(ctx, func(q store.Querier) error {
			// A commit new on many endpoints of one branch touches the same
			// targets from each: resolve every (target, commit) once.
			type pair struct {
				target int64
				sha    string
			}
			resolved := map[pair]bool{}
			for _, rr := range rounds {
				fresh, err := store.WriteKnownReports(ctx, q, s.store.Engine(), rr)
				if err != nil {
					return err
				}
				for _, c := range fresh {
					targets, err := store.TargetsToResolve(ctx, q, endpoints[c.EndpointID], c.SHA, c.Seen)
					if err != nil {
						return err
					}
					for _, t := range targets {
						if resolved[pair{t.ID, c.SHA}] {
							continue
						}
						resolved[pair{t.ID, c.SHA}] = true
						if err := resolveTarget(ctx, q, t, c.SHA); err != nil {
							return err
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, i := range slow {
		res, err := s.ApplyReport(ctx, rs[i])
		if err != nil {
			return nil, fmt.Errorf("report %d (%s/%s): %w", i, rs[i].Host, rs[i].Reconciler, err)
		}
		results[i] = res
	}
	return results, nil
}
