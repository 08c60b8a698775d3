package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// opener returns a new, empty, migrated store for one test.
type opener func(t *testing.T) *store.Store

// TestConformance runs the suite on every engine.
func TestConformance(t *testing.T) {
	for _, engine := range testenv.Engines {
		t.Run(engine, func(t *testing.T) {
			run(t, func(t *testing.T) *store.Store { return testenv.NewStore(t, engine) })
		})
	}
}

// run runs the suite on one engine.
func run(t *testing.T, open opener) {
	tests := map[string]func(*testing.T, *env){
		"DescriptorCreatesModel":            testDescriptorCreatesModel,
		"DescriptorReplayChangesNothing":    testDescriptorReplay,
		"ReportHistoryAndReplay":            testReportHistoryAndReplay,
		"BranchWideCommit":                  testBranchWideCommit,
		"PromotionCountsHostOnce":           testPromotionCountsHostOnce,
		"ReportBeforeDescriptor":            testReportBeforeDescriptor,
		"UnknownCommitIsKept":               testUnknownCommit,
		"AbbreviatedCommit":                 testAbbreviatedCommit,
		"JoinedEndpointMatchesTarget":       testJoinedEndpoint,
		"InvalidInputWritesNothing":         testInvalidInputWritesNothing,
		"VersionConflictWritesNothing":      testVersionConflict,
		"PendingCommitResolvedByFlux":       testPendingCommit,
		"RetireAndRestore":                  testRetireAndRestore,
		"ConcurrentWritersConverge":         testConcurrentWriters,
		"LongNames":                         testLongNames,
		"RollbackToEarlierVersion":          testRollback,
		"HeartbeatMovesOnlyLastReport":      testHeartbeat,
		"BatchEqualsOneByOne":               testBatch,
		"OrderIndependence":                 testOrderIndependence,
		"OrderIndependenceBranches":         testOrderIndependenceBranches,
		"RegisteredReconciler":              testRegisteredReconciler,
		"TextRules":                         testTextRules,
		"AssignmentFollowsLatestDeployment": testAssignmentFollowsLatestDeployment,
		"OutcomesFollowRetirement":          testOutcomesFollowRetirement,
		"OutcomesKeepFirstSuccess":          testOutcomesKeepFirstSuccess,
		"ReconcilerMovesEndpoint":           testReconcilerMovesEndpoint,
		"DriftFollowsReports":               testDriftFollowsReports,
		"RandomTrafficKeepsMaintainedState": testRandomTrafficKeepsMaintainedState,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			clock := &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			e := &env{t: t, st: st, clock: clock, ing: ingest.New(st, ingest.WithClock(clock.Now)), open: open}
			fn(t, e)
			e.checkMaintained()
		})
	}
}

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	open  opener
	t     *testing.T
	st    *store.Store
	clock *Clock
	ing   *ingest.Service
}

// commit n is a full 40-hex SHA whose first two digits are n, so that
// abbreviations of different commits differ.
func commit(n int) string { return fmt.Sprintf("%02x", n) + strings.Repeat("c0ffee", 7)[:38] }

func endpoint(t testing.TB, path, branch string) model.Endpoint {
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", branch, path)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func descriptor(t testing.TB, workload, env, target, version, commitSHA string) model.Descriptor {
	return model.Descriptor{
		Workspace: "acme", Application: "shop", Workload: workload,
		Environment: env, Target: target, Manifests: endpoint(t, target, env),
		Version: version, Build: "build-" + version, Commit: commitSHA,
	}
}

func report(t testing.TB, host, target, env, commitSHA string, status model.Status) model.Report {
	return model.Report{
		Host: host, Reconciler: "flux-system", ReconcilerType: "flux",
		Endpoint: endpoint(t, target, env), Commit: commitSHA, Status: status,
	}
}

func (e *env) descriptor(d model.Descriptor) ingest.DescriptorResult {
	e.t.Helper()
	res, err := e.ing.ApplyDescriptor(context.Background(), d)
	if err != nil {
		e.t.Fatalf("ApplyDescriptor(%s %s %s): %v", d.Workload, d.Target, d.Version, err)
	}
	return res
}

func (e *env) report(r model.Report) ingest.ReportResult {
	e.t.Helper()
	res, err := e.ing.ApplyReport(context.Background(), r)
	if err != nil {
		e.t.Fatalf("ApplyReport(%s %s): %v", r.Host, r.Commit, err)
	}
	return res
}

// retire retires a host's reconciler, which must be live.
func (e *env) retire(host string) {
	e.t.Helper()
	if ok, err := e.ing.RetireReconciler(context.Background(), host, "flux-system"); err != nil || !ok {
		e.t.Fatalf("retire %s: %v %v", host, ok, err)
	}
}

// versions maps "host/target" to the deployed version ("?" when unknown)
// and status.
func (e *env) versions() map[string]string {
	e.t.Helper()
	hts, _, err := reports.New(e.st).HostState(context.Background(), reports.Filter{}, reports.Page{Limit: reports.MaxLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, h := range hts {
		v := h.Version
		if v == "" {
			v = "?"
		}
		out[h.Host+"/"+h.Workload+"/"+h.Target] = v + " " + h.Status
	}
	return out
}

func (e *env) wantVersions(want map[string]string) {
	e.t.Helper()
	got := e.versions()
	if len(got) != len(want) {
		e.t.Errorf("got %d host/target rows %v, want %d %v", len(got), got, len(want), want)
	}
	for k, w := range want {
		if got[k] != w {
			e.t.Errorf("%s: deployed %q, want %q", k, got[k], w)
		}
	}
}

var tables = []string{"workspaces", "applications", "workloads", "workload_versions", "environments", "endpoints",
	"targets", "assignments", "commits", "resolutions", "hosts", "reconcilers", "deployments", "deployment_history"}

// snapshot is every row of every table, as text, to compare before and after
// an operation that must change nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, tbl := range tables {
		fmt.Fprintf(&b, "%s=%d\n", tbl, e.count(tbl))
	}
	for _, q := range []string{
		`SELECT max(last_report_at) FROM reconcilers`,
		`SELECT max(last_changed) FROM deployments`,
		`SELECT max(status_since) FROM deployments`,
		`SELECT max(first_seen) FROM commits`,
		`SELECT max(assigned_at) FROM assignments`,
	} {
		var ts *time.Time
		if err := e.st.Read().QueryRow(ctx, q).Scan(&ts); err != nil && !errors.Is(err, store.ErrNoRows) {
			e.t.Fatalf("%s: %v", q, err)
		}
		if ts != nil {
			fmt.Fprintf(&b, "%s\n", ts.UTC().Format(time.RFC3339Nano))
		}
	}
	for _, q := range []string{
		`SELECT COALESCE(string_agg(r.sha || ':' || COALESCE(CAST(r.assignment_id AS TEXT), '-'), ','), '') FROM (SELECT * FROM resolutions ORDER BY target_id, sha) r`,
		`SELECT COALESCE(string_agg(d.status || ':' || d.message, ','), '') FROM (SELECT * FROM deployments ORDER BY id) d`,
		`SELECT COALESCE(string_agg(COALESCE(a.commit_sha, 'pending') || ':' || CAST(a.version_id AS TEXT), ','), '') FROM (SELECT * FROM assignments ORDER BY id) a`,
	} {
		var s string
		if err := e.st.Read().QueryRow(ctx, q).Scan(&s); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
		b.WriteString(s + "\n")
	}
	return b.String()
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.st.Read().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// checkMaintained fails the test when the maintained state (what the
// reports read) differs from its recomputation from the primary tables.
func (e *env) checkMaintained() {
	e.t.Helper()
	diffs, err := store.Check(context.Background(), e.st.Read(), 10)
	if err != nil {
		e.t.Fatalf("check maintained state: %v", err)
	}
	for _, d := range diffs {
		e.t.Errorf("maintained %s %s %s", d.Table, d.Side, d.Row)
	}
	// The endpoint series marked dirty, rebuilt from the history: none
	// is left dirty, and they compare equal too.
	if _, err := e.st.RebuildSeries(context.Background(), 1<<20); err != nil {
		e.t.Fatalf("rebuild endpoint series: %v", err)
	}
	if n, err := e.st.DirtySeries(context.Background()); err != nil || n != 0 {
		e.t.Errorf("%d endpoint series dirty after the rebuild (%v)", n, err)
	}
	if diffs, err = store.Check(context.Background(), e.st.Read(), 10); err != nil {
		e.t.Fatalf("check maintained state: %v", err)
	}
	for _, d := range diffs {
		e.t.Errorf("maintained after rebuilding the series: %s %s %s", d.Table, d.Side, d.Row)
	}
}
