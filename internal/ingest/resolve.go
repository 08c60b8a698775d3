package ingest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// The correlation rule, in one place: a reconciler that reports commit C
// runs, for each target on the endpoint it applies, the version assigned
// to that target in effect at C:
//
//   - the target's assignment at C (C or an abbreviation of it, either
//     way, when exactly one assignment matches);
//   - else the target's latest assignment (by the time it took effect) no
//     later than when C was first seen on the target's branch, by any
//     report or assignment on any of the branch's endpoints (a GitOps
//     commit is branch-wide: a commit for target A becomes the head that
//     target B's reconcilers report);
//   - else none: an unknown version, kept and shown as such.
//
// The result is kept in the resolutions table, (target, commit) →
// assignment, and recomputed whenever one of its inputs changes: an
// assignment of the target (new, given its commit, moved in time), the
// time a commit was first seen on the branch, or the branch an endpoint
// belongs to. So the stored result depends on the inputs, not on the order
// they arrived in.

// inEffect picks the assignment in effect at commit c from a target's
// assignments (oldest first); 0 when none is.
func inEffect(assignments []store.Assignment, c store.CommitSeen) int64 {
	var exact int64
	for _, a := range assignments {
		if a.Commit == "" || !model.CommitsMatch(a.Commit, c.SHA) {
			continue
		}
		if exact != 0 {
			exact = -1 // ambiguous: several assignments match an abbreviation
			break
		}
		exact = a.ID
	}
	if exact > 0 {
		return exact
	}
	for i := len(assignments) - 1; i >= 0; i-- {
		if !assignments[i].AssignedAt.After(c.FirstSeen) {
			return assignments[i].ID
		}
	}
	return 0
}

// resolver collects, during a transaction, what has to be resolved again,
// and does it once at the end, target by target in id order (so that
// concurrent writers lock resolutions in one order).
type resolver struct {
	targets  map[int64]*targetWork
	commits  []store.NewCommit
	commitEP map[int64]store.EndpointRow
	branches map[string]bool
}

// targetWork is what to resolve again for one target.
type targetWork struct {
	t         store.TargetRow
	all       bool      // every commit of its endpoint
	since     time.Time // commits first seen on its branch from then on
	shas      []string  // and these commits
	scheduled bool      // its latest assignment may have changed
}

func newResolver() *resolver {
	return &resolver{targets: map[int64]*targetWork{}, commitEP: map[int64]store.EndpointRow{}, branches: map[string]bool{}}
}

func (r *resolver) work(t store.TargetRow) *targetWork {
	w := r.targets[t.ID]
	if w == nil {
		w = &targetWork{t: t}
		r.targets[t.ID] = w
	}
	return w
}

// target asks to resolve again a target's commits: all of them, those
// first seen since (when not zero), and sha (when not empty).
func (r *resolver) target(t store.TargetRow, all bool, since time.Time, sha string) {
	w := r.work(t)
	w.all = w.all || all
	if !since.IsZero() && (w.since.IsZero() || since.Before(w.since)) {
		w.since = since
	}
	if sha != "" && !slices.Contains(w.shas, sha) {
		w.shas = append(w.shas, sha)
	}
}

// scheduled asks to point a target at its latest assignment again.
func (r *resolver) scheduled(t store.TargetRow) { r.work(t).scheduled = true }

// commit notes that sha was first seen on an endpoint at seen (or earlier
// than recorded).
func (r *resolver) commit(ep store.EndpointRow, sha string, seen time.Time) {
	r.commits = append(r.commits, store.NewCommit{EndpointID: ep.ID, SHA: sha, Seen: seen})
	r.commitEP[ep.ID] = ep
}

// branches notes that branches gained or lost endpoints: every target on
// them resolves all its commits again.
func (r *resolver) branch(keys []string) {
	for _, k := range keys {
		r.branches[k] = true
	}
}

// run resolves what was collected.
func (r *resolver) run(ctx context.Context, q store.Querier) error {
	slices.SortFunc(r.commits, func(a, b store.NewCommit) int {
		return cmp.Or(cmp.Compare(a.EndpointID, b.EndpointID), cmp.Compare(a.SHA, b.SHA), a.Seen.Compare(b.Seen))
	})
	for i, c := range r.commits {
		if i > 0 && r.commits[i-1].EndpointID == c.EndpointID && r.commits[i-1].SHA == c.SHA {
			continue // the earliest sighting covers the later ones
		}
		pairs, err := store.CommitTargets(ctx, q, r.commitEP[c.EndpointID], c.SHA, c.Seen)
		if err != nil {
			return fmt.Errorf("find targets of commit %s: %w", c.SHA, err)
		}
		for _, p := range pairs {
			r.target(p.Target, false, time.Time{}, p.SHA)
		}
	}
	for _, b := range slices.Sorted(maps.Keys(r.branches)) {
		ts, err := store.BranchTargets(ctx, q, b)
		if err != nil {
			return fmt.Errorf("find targets of a branch: %w", err)
		}
		for _, t := range ts {
			r.target(t, true, time.Time{}, "")
		}
	}
	for _, id := range slices.Sorted(maps.Keys(r.targets)) {
		w := r.targets[id]
		if w.scheduled {
			if err := store.RefreshScheduled(ctx, q, id); err != nil {
				return fmt.Errorf("refresh scheduled version: %w", err)
			}
		}
		if err := resolveTarget(ctx, q, w); err != nil {
			return fmt.Errorf("resolve target: %w", err)
		}
	}
	return nil
}

// resolveTarget recomputes the assignment in effect at each commit a
// target's work names, writing only the resolutions that change.
func resolveTarget(ctx context.Context, q store.Querier, w *targetWork) error {
	if !w.all && w.since.IsZero() && len(w.shas) == 0 {
		return nil
	}
	commits, err := store.TargetCommits(ctx, q, w.t, w.all, w.since, w.shas)
	if err != nil || len(commits) == 0 {
		return err
	}
	assignments, err := store.TargetAssignments(ctx, q, w.t.ID)
	if err != nil {
		return err
	}
	shas := make([]string, len(commits))
	for i, c := range commits {
		shas[i] = c.SHA
	}
	if w.all {
		shas = nil // every resolution of the target
	}
	stored, err := store.TargetResolutions(ctx, q, w.t.ID, shas)
	if err != nil {
		return err
	}
	for _, c := range commits {
		want := inEffect(assignments, c)
		if have, ok := stored[c.SHA]; ok && have == want {
			continue
		}
		if err := store.SetResolution(ctx, q, w.t.ID, c.SHA, want); err != nil {
			return err
		}
	}
	return nil
}
