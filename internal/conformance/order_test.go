package conformance

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
)

// Arrival order never matters in the end: the same inputs, carrying their
// own times, applied in many random orders give the same stored state and
// the same reports. A reconciler's own reports keep their order (one
// reconciler reports through one channel); everything else races: hosts,
// descriptors, the hub's Flux Kustomization.
func testOrderIndependence(t *testing.T, e *env) {
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	checkOrders(t, e, orderScenario(t, base), base)
}

// Branches whose names hold slashes: a reconciler that reports the joined
// form "repo/release/v2/other" belongs to branch release/v2 once a target
// on that branch is known, and to branch release until then. Commits it
// reported stop counting as first seen on release when it moves.
func testOrderIndependenceBranches(t *testing.T, e *env) {
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	var evs []event
	desc := func(target, branch, version, sha string, m int) {
		d := descriptor(t, "ops", "prod", target, version, sha)
		ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", branch, "app")
		if err != nil {
			t.Fatal(err)
		}
		d.Manifests, d.AssignedAt = ep, at(m)
		evs = append(evs, event{name: target + "=" + version, apply: func(t *testing.T, e *env, _ *world) { e.descriptor(d) }})
	}
	desc("r1", "release", "1.0.0", commit(1), 0)
	desc("r1", "release", "2.0.0", commit(3), 20)
	desc("r2", "release/v2", "1.0.0", commit(2), 10)
	rep := func(host, endpoint, sha string, m int) {
		ep, err := model.ParseEndpoint("git", "https://github.com/acme/gitops/"+endpoint)
		if err != nil {
			t.Fatal(err)
		}
		r := model.Report{Host: host, Reconciler: "flux-system", ReconcilerType: "flux", Endpoint: ep, Commit: sha, Status: model.StatusSuccess, ObservedAt: at(m)}
		evs = append(evs, event{name: fmt.Sprintf("%s@%d", host, m), stream: host, apply: func(t *testing.T, e *env, _ *world) { e.report(r) }})
	}
	rep("x1", "release/v2/other", commit(4), 15) // on release/v2: says nothing of release
	rep("y1", "release/app", commit(4), 25)      // on release: 2.0.0 was assigned before it saw 4
	rep("z1", "release/v2/app", commit(4), 26)
	checkOrders(t, e, evs, base)
}

// checkOrders applies events in their own order and in random orders that
// keep each stream's order, and fails when the outcome differs.
func checkOrders(t *testing.T, e *env, events []event, base time.Time) {
	want := ""
	orders := 12
	if testing.Short() {
		orders = 3
	}
	for i := range orders {
		order := shuffleKeepingStreams(events, rand.New(rand.NewPCG(uint64(i), 7)))
		if i == 0 {
			order = events // the order in which things happen
		}
		x := e
		if i > 0 {
			x = &env{t: t, st: e.open(t), clock: &Clock{t: e.clock.Now()}}
			x.ing = ingest.New(x.st, ingest.WithClock(x.clock.Now))
		}
		w := &world{}
		var names []string
		for _, ev := range order {
			x.clock.Advance(time.Second)
			ev.apply(t, x, w)
			names = append(names, ev.name)
		}
		got := orderOutcome(t, x, base.Add(48*time.Hour))
		if i == 0 {
			want = got
			continue
		}
		if got != want {
			t.Fatalf("order %d gives another outcome.\norder: %s\n%s", i, strings.Join(names, ", "), diffLines(want, got))
		}
	}
}

// event is one input arriving at the hub. stream orders the events of one
// reconciler ("" for events that race freely).
type event struct {
	name   string
	stream string
	apply  func(t *testing.T, e *env, w *world)
}

// world is what the hub's Flux Kustomization has settled on so far: a
// descriptor the Kustomization applied takes the settled revision, as the
// controller does.
type world struct {
	fluxRevision string
	fluxAt       time.Time
}

func orderScenario(t *testing.T, base time.Time) []event {
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	var evs []event
	desc := func(workload, target, version, sha string, m int) {
		d := descriptor(t, workload, "dev", target, version, sha)
		d.AssignedAt = at(m)
		evs = append(evs, event{name: fmt.Sprintf("%s/%s=%s", workload, target, version), apply: func(t *testing.T, e *env, _ *world) {
			e.descriptor(d)
		}})
	}
	// Targets A and B share branch dev; C is on branch stage.
	desc("api", "a", "1.0.0", commit(1), 0)
	desc("web", "b", "5.0.0", commit(2), 10)
	desc("api", "a", "1.1.0", commit(3), 20) // a promotion on A
	desc("web", "b", "5.0.1", commit(7), 21) // after A's commit 3: B's hosts at 3 still run 5.0.0
	desc("web", "b", "5.1.0", commit(5), 40)
	desc("api", "c", "1.0.0", commit(9), 5)
	// A Flux-delivered descriptor on target F (branch dev): pending until
	// the hub's Kustomization settles on commit 4 at minute 30.
	flux := descriptor(t, "api", "dev", "f", "2.0.0", "")
	flux.FluxSource = "flux-system/apps"
	evs = append(evs, event{name: "api/f=2.0.0 (flux)", apply: func(t *testing.T, e *env, w *world) {
		d := flux
		if w.fluxRevision != "" {
			d.Commit, d.AssignedAt = w.fluxRevision, w.fluxAt
		}
		e.descriptor(d)
	}})
	evs = append(evs, event{name: "flux settles on 4", apply: func(t *testing.T, e *env, w *world) {
		w.fluxRevision, w.fluxAt = commit(4), at(30)
		if _, err := e.ing.ResolveFluxRevision(ctx, "flux-system/apps", "dev@sha1:"+commit(4), at(30)); err != nil {
			t.Fatal(err)
		}
	}})
	// Hosts report the branch head of their time: a commit for one target
	// is the head every target's reconcilers on the branch report.
	rep := func(host, target, branch, sha string, status model.Status, m int, joined bool) {
		r := report(t, host, target, branch, sha, status)
		r.ObservedAt = at(m)
		if joined {
			ep, err := model.ParseEndpoint("git", "https://github.com/acme/gitops/"+branch+"/"+target)
			if err != nil {
				t.Fatal(err)
			}
			r.Endpoint = ep
		}
		evs = append(evs, event{name: fmt.Sprintf("%s@%d:%s", host, m, sha[:4]), stream: host, apply: func(t *testing.T, e *env, _ *world) {
			e.report(r)
		}})
	}
	for i, h := range []string{"a1", "a2", "a3"} {
		rep(h, "a", "dev", commit(1), model.StatusInProgress, 1+i, false)
		rep(h, "a", "dev", commit(1), model.StatusSuccess, 2+i, false)
		rep(h, "a", "dev", commit(2), model.StatusSuccess, 12+i, i == 2) // B's commit: A's version is still 1.0.0
		rep(h, "a", "dev", commit(3)[:9], model.StatusSuccess, 22+i, false)
	}
	rep("a3", "a", "dev", commit(4), model.StatusFailure, 33, true)
	rep("b1", "b", "dev", commit(2), model.StatusSuccess, 11, true)
	rep("b1", "b", "dev", commit(3), model.StatusSuccess, 22, false)
	rep("b2", "b", "dev", commit(6), model.StatusInProgress, 50, false) // a commit no one assigns
	rep("f1", "f", "dev", commit(4), model.StatusSuccess, 31, false)
	rep("c1", "c", "stage", commit(9), model.StatusSuccess, 6, false)
	rep("c1", "c", "stage", commit(3), model.StatusSuccess, 25, false) // stage's branch never saw 3 assigned
	// A reconciler registered before its first report.
	reg := report(t, "r1", "b", "dev", "", "")
	evs = append(evs, event{name: "r1 registers", stream: "r1", apply: func(t *testing.T, e *env, _ *world) { e.report(reg) }})
	rep("r1", "b", "dev", commit(5), model.StatusSuccess, 45, false)
	reg2 := report(t, "r2", "a", "dev", "", "")
	evs = append(evs, event{name: "r2 registers", stream: "r2", apply: func(t *testing.T, e *env, _ *world) { e.report(reg2) }})
	return evs
}

// shuffleKeepingStreams returns a random order of events in which the
// events of each stream keep their relative order.
func shuffleKeepingStreams(evs []event, r *rand.Rand) []event {
	out := slices.Clone(evs)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	queues := map[string][]event{}
	for _, ev := range evs {
		if ev.stream != "" {
			queues[ev.stream] = append(queues[ev.stream], ev)
		}
	}
	for i, ev := range out {
		if ev.stream != "" {
			out[i] = queues[ev.stream][0]
			queues[ev.stream] = queues[ev.stream][1:]
		}
	}
	return out
}

// orderOutcome is everything that must not depend on arrival order, as
// text: every report (without the hub's own clock: last-report times,
// staleness) and the stored resolutions by name.
func orderOutcome(t *testing.T, e *env, now time.Time) string {
	t.Helper()
	rs := reports.New(e.st, reports.WithClock(func() time.Time { return now }), reports.WithStaleAfter(1000*time.Hour))
	page := reports.Page{Limit: reports.MaxLimit}
	var b strings.Builder
	dump := func(name string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		j, _ := json.MarshalIndent(v, "", " ")
		fmt.Fprintf(&b, "== %s\n%s\n", name, j)
	}
	es, _, err := rs.EnvironmentState(ctx, reports.Filter{}, page)
	dump("environment state", es, err)
	hs, _, err := rs.HostState(ctx, reports.Filter{}, page)
	for i := range hs {
		hs[i].LastReportAt = time.Time{}
		if hs[i].Status == reports.StatusNotReported {
			hs[i].StatusSince = time.Time{} // when the hub registered it
		}
	}
	dump("host state", hs, err)
	hist, _, err := rs.History(ctx, reports.Filter{}, page)
	dump("history", hist, err)
	drift, _, err := rs.Drift(ctx, reports.Filter{}, 0, page)
	for i := range drift {
		if drift[i].Kind == reports.DriftNotReported || drift[i].Kind == reports.DriftNoHosts {
			drift[i].Since, drift[i].For = time.Time{}, 0 // the hub's own time
		}
	}
	slices.SortStableFunc(drift, func(a, b reports.DriftRow) int {
		return strings.Compare(a.Kind+a.Target+a.Host, b.Kind+b.Target+b.Host)
	})
	dump("drift", drift, err)
	dora, _, err := rs.DORA(ctx, reports.Filter{Since: now.Add(-72 * time.Hour), Until: now}, page)
	dump("dora", dora, err)
	rows, err := e.st.Read().Query(ctx, `SELECT wl.name, t.name, res.sha, COALESCE(v.version, '?')
		FROM resolutions res JOIN targets t ON t.id = res.target_id JOIN workloads wl ON wl.id = t.workload_id
		LEFT JOIN assignments a ON a.id = res.assignment_id LEFT JOIN workload_versions v ON v.id = a.version_id
		ORDER BY wl.name, t.name, res.sha`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	b.WriteString("== resolutions\n")
	for rows.Next() {
		var wl, tg, sha, v string
		if err := rows.Scan(&wl, &tg, &sha, &v); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s/%s %s -> %s\n", wl, tg, sha, v)
	}
	return b.String()
}

// diffLines shows the lines that differ between two outcomes.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var x, y string
		if i < len(w) {
			x = w[i]
		}
		if i < len(g) {
			y = g[i]
		}
		if x != y {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, x, y)
		}
	}
	return b.String()
}
