package ingest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// byTarget orders descriptors by their target's natural key, keeping the
// order of descriptors of one target, so that concurrent batches lock
// targets in one order.
func byTarget(ds []model.Descriptor) []int {
	idx := make([]int, len(ds))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		x, y := ds[a], ds[b]
		return cmp.Or(cmp.Compare(x.Workspace, y.Workspace), cmp.Compare(x.Application, y.Application),
			cmp.Compare(x.Workload, y.Workload), cmp.Compare(x.Environment, y.Environment), cmp.Compare(x.Target, y.Target))
	})
	return idx
}

// applyDescriptor stores a checked descriptor: the workload, target and
// version it names, and the assignment of the version to the target.
func (s *Service) applyDescriptor(ctx context.Context, q store.Querier, d model.Descriptor, now time.Time, rs *resolver) (DescriptorResult, error) {
	ws, err := store.EnsureWorkspace(ctx, q, d.Workspace, now)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("ensure workspace %s: %w", model.Quote(d.Workspace), err)
	}
	app, err := store.EnsureApplication(ctx, q, ws, d.Application, now)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("ensure application %s: %w", model.Quote(d.Application), err)
	}
	wl, err := store.EnsureWorkload(ctx, q, app, d.Workload, d.Source, now)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("ensure workload %s: %w", model.Quote(d.Workload), err)
	}
	env, err := store.EnsureEnvironment(ctx, q, d.Environment, now)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("ensure environment %s: %w", model.Quote(d.Environment), err)
	}
	ep, moved, err := store.EnsureEndpoint(ctx, q, d.Manifests, now)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("ensure manifests endpoint %s: %w", model.Quote(d.Manifests.Key()), err)
	}
	rs.branch(moved)
	target, retargeted, err := store.UpsertTarget(ctx, q, wl, env, d.Target, ep, d.Labels, now)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("ensure target %s: %w", model.Quote(d.Target), err)
	}
	var buildTime *time.Time
	if !d.BuildTime.IsZero() {
		bt := d.BuildTime.UTC()
		buildTime = &bt
	}
	v, err := store.EnsureVersion(ctx, q, wl, d.Version, d.Build, d.BuildCommit, buildTime, now)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("ensure version %s: %w", model.Quote(d.Version), err)
	}
	if err := versionConflict(d, v); err != nil {
		return DescriptorResult{}, err
	}
	res, err := s.assign(ctx, q, target, v.ID, d, now, rs)
	if err != nil {
		return DescriptorResult{}, err
	}
	if retargeted {
		// Other reconcilers count for the target now: every commit of its
		// new endpoint.
		rs.target(target, true, time.Time{}, "")
		res.Changed = true
	}
	return res, nil
}

func versionConflict(d model.Descriptor, v store.VersionRow) error {
	clash := func(field, stored, given string) error {
		if given != "" && stored != given {
			return &ConflictError{Field: "spec.workloadVersion." + field, Problem: fmt.Sprintf(
				"version %s of workload %s is recorded with %s %s, not %s; a published version cannot change: publish a new version",
				model.Quote(d.Version), model.Quote(d.Workload), field, model.Quote(stored), model.Quote(given))}
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

// assign records the assignment of a version to a target. Replaying the
// same descriptor changes nothing:
//   - with a commit: the target's assignment at that commit is it (a time
//     given earlier than the stored one moves it earlier, so that the
//     earliest time wins whatever the order), or the target's latest
//     assignment is this version pending and gets the commit, or a new
//     assignment is recorded;
//   - pending: the target's latest assignment is already this version, or
//     a new pending assignment is recorded.
func (s *Service) assign(ctx context.Context, q store.Querier, t store.TargetRow, versionID int64, d model.Descriptor, now time.Time, rs *resolver) (DescriptorResult, error) {
	if err := store.LockTarget(ctx, q, t.ID); err != nil {
		return DescriptorResult{}, fmt.Errorf("lock target: %w", err)
	}
	all, err := store.TargetAssignments(ctx, q, t.ID)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("read assignments: %w", err)
	}
	at, timed := d.AssignedAt.UTC(), !d.AssignedAt.IsZero()
	if !timed {
		at = now
	}
	var latest *store.Assignment
	if len(all) > 0 {
		latest = &all[len(all)-1]
	}
	if d.Commit == "" {
		if latest != nil && latest.VersionID == versionID {
			return DescriptorResult{AssignmentID: latest.ID, Commit: latest.Commit}, nil
		}
		id, err := store.InsertAssignment(ctx, q, t.ID, versionID, "", d.FluxSource, at, now)
		if err != nil {
			return DescriptorResult{}, fmt.Errorf("record assignment: %w", err)
		}
		rs.target(t, false, at, "")
		rs.scheduled(t)
		return DescriptorResult{AssignmentID: id, Changed: true}, nil
	}
	if a, ok := atCommit(all, d.Commit); ok {
		if a.VersionID != versionID {
			return DescriptorResult{}, &ConflictError{Field: "spec.gitOpsCommitId", Problem: fmt.Sprintf(
				"commit %s already assigns another version to target %s in %s; a commit assigns one version per target",
				d.Commit, model.Quote(d.Target), model.Quote(d.Environment))}
		}
		if !timed || !at.Before(a.AssignedAt) {
			return DescriptorResult{AssignmentID: a.ID, Commit: a.Commit}, nil
		}
		return s.setAssignment(ctx, q, t, a, a.Commit, at, rs)
	}
	if latest != nil && latest.Commit == "" && latest.VersionID == versionID {
		if !timed {
			at = latest.AssignedAt
		}
		return s.setAssignment(ctx, q, t, *latest, d.Commit, at, rs)
	}
	id, err := store.InsertAssignment(ctx, q, t.ID, versionID, d.Commit, d.FluxSource, at, now)
	if err != nil {
		return DescriptorResult{}, fmt.Errorf("record assignment: %w", err)
	}
	if err := s.recordAssignedCommit(ctx, q, t, d.Commit, at, rs); err != nil {
		return DescriptorResult{}, err
	}
	rs.target(t, false, at, d.Commit)
	rs.scheduled(t)
	return DescriptorResult{AssignmentID: id, Commit: d.Commit, Changed: true}, nil
}

// setAssignment gives a stored assignment its commit and time.
func (s *Service) setAssignment(ctx context.Context, q store.Querier, t store.TargetRow, a store.Assignment, commit string, at time.Time, rs *resolver) (DescriptorResult, error) {
	if err := store.SetAssignment(ctx, q, a.ID, commit, at); err != nil {
		return DescriptorResult{}, fmt.Errorf("update assignment: %w", err)
	}
	if err := s.recordAssignedCommit(ctx, q, t, commit, at, rs); err != nil {
		return DescriptorResult{}, err
	}
	rs.target(t, false, earliest(a.AssignedAt, at), commit)
	rs.scheduled(t)
	return DescriptorResult{AssignmentID: a.ID, Commit: commit, Changed: true}, nil
}

// recordAssignedCommit notes that the commit of an assignment existed on
// the target's endpoint when the assignment took effect: its branch's
// other targets that have seen it may resolve it differently now.
func (s *Service) recordAssignedCommit(ctx context.Context, q store.Querier, t store.TargetRow, commit string, at time.Time, rs *resolver) error {
	changed, err := store.RecordCommit(ctx, q, t.EndpointID, commit, at)
	if err != nil {
		return fmt.Errorf("record commit %s: %w", commit, err)
	}
	if changed {
		rs.commit(store.EndpointRow{ID: t.EndpointID, BranchKey: t.BranchKey}, commit, at)
	}
	return nil
}

// atCommit finds the assignment at commit among a target's assignments
// (either may be abbreviated).
func atCommit(all []store.Assignment, commit string) (store.Assignment, bool) {
	for _, a := range all {
		if a.Commit != "" && model.CommitsMatch(a.Commit, commit) {
			return a, true
		}
	}
	return store.Assignment{}, false
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ResolveFluxRevision gives the assignments still pending on a Flux
// Kustomization ("namespace/name") the revision it settled on, and, when
// appliedAt is not zero, that time (the Kustomization's) as when they took
// effect. The caller passes only a settled revision (the Kustomization
// applied every object of it, so the descriptors pending on it are part of
// it). It returns how many were resolved.
func (s *Service) ResolveFluxRevision(ctx context.Context, fluxSource, revision string, appliedAt time.Time) (int, error) {
	sha, err := model.NormalizeRevision(revision)
	if err != nil {
		return 0, fmt.Errorf("kustomization %s: status.lastAppliedRevision: %w", model.Quote(fluxSource), err)
	}
	appliedAt = appliedAt.UTC()
	var n int
	err = s.store.Tx(ctx, func(q store.Querier) error {
		n = 0
		rs := newResolver()
		pending, err := store.PendingAssignments(ctx, q, fluxSource)
		if err != nil {
			return fmt.Errorf("read pending assignments: %w", err)
		}
		for _, p := range pending {
			if err := store.LockTarget(ctx, q, p.Target.ID); err != nil {
				return fmt.Errorf("lock target: %w", err)
			}
			all, err := store.TargetAssignments(ctx, q, p.Target.ID)
			if err != nil {
				return fmt.Errorf("read assignments: %w", err)
			}
			if a, ok := atCommit(all, sha); ok && a.ID != p.ID {
				s.log.Warn("pending assignment left pending: its target already has an assignment at this commit",
					"kustomization", fluxSource, "commit", sha, "assignment", p.ID)
				continue
			}
			at := p.AssignedAt
			if !appliedAt.IsZero() {
				at = appliedAt
			}
			if _, err := s.setAssignment(ctx, q, p.Target, store.Assignment{ID: p.ID, AssignedAt: p.AssignedAt}, sha, at, rs); err != nil {
				return err
			}
			n++
		}
		return rs.run(ctx, q)
	})
	return n, err
}
