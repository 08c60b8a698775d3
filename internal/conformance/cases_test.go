package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

var ctx = context.Background()

func testDescriptorCreatesModel(t *testing.T, e *env) {
	res := e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	if !res.Changed || res.Commit != commit(1) || res.AssignmentID == 0 {
		t.Fatalf("result = %+v", res)
	}
	e.descriptor(descriptor(t, "api", "stage", "drone", "1.0.0", commit(2)))
	e.descriptor(descriptor(t, "web", "stage", "drone", "3.1.0", commit(2)))
	want := map[string]int{"workspaces": 1, "applications": 1, "workloads": 2, "workload_versions": 2,
		"environments": 2, "endpoints": 2, "targets": 3, "assignments": 3, "commits": 2}
	for tbl, n := range want {
		if got := e.count(tbl); got != n {
			t.Errorf("%s: %d rows, want %d", tbl, got, n)
		}
	}
}

func testDescriptorReplay(t *testing.T, e *env) {
	d := descriptor(t, "api", "dev", "drone", "1.0.0", commit(1))
	e.descriptor(d)
	pending := descriptor(t, "api", "dev", "other", "1.0.0", "")
	pending.FluxSource = "flux-system/apps"
	e.descriptor(pending)
	before := e.snapshot()
	e.clock.Advance(time.Hour)
	for _, x := range []model.Descriptor{d, pending, d} {
		if res := e.descriptor(x); res.Changed {
			t.Errorf("replay of %s changed the store: %+v", x.Target, res)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("replay changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func testReportHistoryAndReplay(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	r := report(t, "aks-dev-1", "drone", "dev", commit(1), model.StatusInProgress)
	if !e.report(r).Changed {
		t.Fatal("first report changed nothing")
	}
	e.wantVersions(map[string]string{"aks-dev-1/api/drone": "1.0.0 in_progress"})
	before := e.snapshot()
	e.clock.Advance(10 * time.Second)
	if e.report(r).Changed {
		t.Error("replayed report changed the store")
	}
	if after := e.snapshot(); after != before {
		t.Errorf("replay changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	r.Status = model.StatusSuccess
	r.Message = "Applied revision: dev@sha1:" + commit(1)
	e.report(r)
	e.clock.Advance(10 * time.Second)
	r.Status, r.Message = model.StatusFailure, "health check failed"
	e.report(r)
	e.wantVersions(map[string]string{"aks-dev-1/api/drone": "1.0.0 failure"})
	if n := e.count("deployment_history"); n != 3 {
		t.Errorf("deployment_history has %d rows, want 3 (in_progress, success, failure)", n)
	}
	if n := e.count("deployments"); n != 1 {
		t.Errorf("deployments has %d rows, want 1", n)
	}
	var firstSeen, since time.Time
	if err := e.st.Read().QueryRow(ctx, `SELECT first_seen, status_since FROM deployments`).Scan(&firstSeen, &since); err != nil {
		t.Fatal(err)
	}
	if !since.Equal(e.clock.Now()) || !firstSeen.Equal(e.clock.Now().Add(-20*time.Second)) {
		t.Errorf("first_seen %v status_since %v; want %v and %v", firstSeen, since, e.clock.Now().Add(-20*time.Second), e.clock.Now())
	}
}

// Two targets on one branch: a commit that changes only target a's
// manifests is also the head that target b's reconcilers report.
func testBranchWideCommit(t *testing.T, e *env) {
	a := descriptor(t, "api", "dev", "a", "1.0.0", commit(1))
	a.Manifests = endpoint(t, "a", "dev")
	b := descriptor(t, "web", "dev", "b", "2.0.0", commit(1))
	b.Manifests = endpoint(t, "b", "dev")
	e.descriptor(a)
	e.descriptor(b)
	e.report(report(t, "h1", "a", "dev", commit(1), model.StatusSuccess))
	e.report(report(t, "h2", "b", "dev", commit(1), model.StatusSuccess))
	e.wantVersions(map[string]string{"h1/api/a": "1.0.0 success", "h2/web/b": "2.0.0 success"})

	e.clock.Advance(time.Minute)
	a.Version, a.Build, a.Commit = "1.1.0", "build-1.1.0", commit(2)
	e.descriptor(a)
	e.clock.Advance(time.Minute)
	e.report(report(t, "h1", "a", "dev", commit(2), model.StatusSuccess))
	e.report(report(t, "h2", "b", "dev", commit(2), model.StatusSuccess))
	e.wantVersions(map[string]string{"h1/api/a": "1.1.0 success", "h2/web/b": "2.0.0 success"})

	// A commit that no descriptor mentions (an infrastructure change).
	e.clock.Advance(time.Minute)
	e.report(report(t, "h2", "b", "dev", commit(3), model.StatusInProgress))
	e.wantVersions(map[string]string{"h1/api/a": "1.1.0 success", "h2/web/b": "2.0.0 in_progress"})

	// Target b gets a new version; commit 3 (seen before it) stays 2.0.0.
	e.clock.Advance(time.Minute)
	b.Version, b.Build, b.Commit = "2.1.0", "build-2.1.0", commit(4)
	e.descriptor(b)
	e.wantVersions(map[string]string{"h1/api/a": "1.1.0 success", "h2/web/b": "2.0.0 in_progress"})
	e.report(report(t, "h2", "b", "dev", commit(4), model.StatusSuccess))
	e.wantVersions(map[string]string{"h1/api/a": "1.1.0 success", "h2/web/b": "2.1.0 success"})
}

// A promotion commit carries the assignments of several targets; a host
// counts only for the target whose endpoint its reconciler applies.
func testPromotionCountsHostOnce(t *testing.T, e *env) {
	for _, tgt := range []string{"east", "west", "north"} {
		d := descriptor(t, "api", "prod", tgt, "4.0.0", commit(7))
		e.descriptor(d)
	}
	e.report(report(t, "h-east", "east", "prod", commit(7), model.StatusSuccess))
	e.report(report(t, "h-west", "west", "prod", commit(7), model.StatusFailure))
	e.wantVersions(map[string]string{"h-east/api/east": "4.0.0 success", "h-west/api/west": "4.0.0 failure"})
}

func testReportBeforeDescriptor(t *testing.T, e *env) {
	e.report(report(t, "h1", "drone", "dev", commit(1), model.StatusSuccess))
	if got := e.versions(); len(got) != 0 {
		t.Fatalf("rows before any target: %v", got)
	}
	e.clock.Advance(time.Minute)
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	e.wantVersions(map[string]string{"h1/api/drone": "1.0.0 success"})
}

func testUnknownCommit(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", ""))
	e.clock.Advance(-time.Hour) // the report was observed before the assignment
	r := report(t, "h1", "drone", "dev", commit(9), model.StatusSuccess)
	r.ObservedAt = e.clock.Now()
	e.clock.Advance(2 * time.Hour)
	e.report(r)
	e.wantVersions(map[string]string{"h1/api/drone": "? success"})
	if n := e.count("deployments"); n != 1 {
		t.Errorf("the unknown commit's deployment was not kept: %d rows", n)
	}
}

func testAbbreviatedCommit(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	e.report(report(t, "h1", "drone", "dev", commit(1)[:7], model.StatusSuccess))
	var stored string
	if err := e.st.Read().QueryRow(ctx, `SELECT commit_sha FROM deployments`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	// Stored as reported (what the host said), matched to the full form
	// by the correlation rules, whatever arrives first.
	if stored != commit(1)[:7] {
		t.Errorf("abbreviated commit stored as %q, want it as reported %q", stored, commit(1)[:7])
	}
	// Abbreviated before the full form is known: matched when it arrives.
	e.clock.Advance(time.Minute)
	e.report(report(t, "h2", "other", "dev", commit(2)[:10], model.StatusSuccess))
	e.clock.Advance(time.Minute)
	e.descriptor(descriptor(t, "api", "dev", "other", "2.0.0", commit(2)))
	e.wantVersions(map[string]string{"h1/api/drone": "1.0.0 success", "h2/api/other": "2.0.0 success"})
}

func testJoinedEndpoint(t *testing.T, e *env) {
	d := descriptor(t, "api", "dev", "drone", "1.0.0", commit(1))
	ep, err := model.NewEndpoint("git", "https://github.com/Acme/gitops.git", "refs/heads/dev", "./drone/")
	if err != nil {
		t.Fatal(err)
	}
	d.Manifests = ep
	e.descriptor(d)
	r := report(t, "h1", "drone", "dev", "dev/"+commit(1), model.StatusSuccess)
	r.Endpoint, err = model.ParseEndpoint("git", "https://token@GITHUB.com/Acme/gitops/dev/drone/")
	if err != nil {
		t.Fatal(err)
	}
	r.Commit, _ = model.NormalizeRevision("dev/" + commit(1))
	e.report(r)
	e.wantVersions(map[string]string{"h1/api/drone": "1.0.0 success"})
	// A joined endpoint on another path of the same branch learns its branch.
	r2 := r
	r2.Host = "h2"
	r2.Endpoint, _ = model.ParseEndpoint("git", "https://github.com/Acme/gitops/dev/infra")
	e.report(r2)
	var bk string
	if err := e.st.Read().QueryRow(ctx, `SELECT branch_key FROM endpoints WHERE key = $1`, r2.Endpoint.Key()).Scan(&bk); err != nil {
		t.Fatal(err)
	}
	if bk != d.Manifests.BranchKey() {
		t.Errorf("joined endpoint branch %q, want %q", bk, d.Manifests.BranchKey())
	}
}

func testInvalidInputWritesNothing(t *testing.T, e *env) {
	bad := &v1alpha1.DeploymentDescriptor{Spec: v1alpha1.DeploymentDescriptorSpec{
		Workload:         v1alpha1.Workload{Name: "api"},
		DeploymentTarget: v1alpha1.DeploymentTarget{Name: "t", Environment: "dev", Manifests: v1alpha1.Manifests{Repo: "https://x/y"}},
		WorkloadVersion:  v1alpha1.WorkloadVersion{Version: "1", BuildTime: "yesterday"},
		GitOpsCommitID:   "main@sha1:nothex",
	}}
	_, err := resource.Descriptor(bad, resource.FluxApplied{})
	var ve *model.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a ValidationError", err)
	}
	for _, field := range []string{"spec.workload.application.name", "spec.workload.application.workspace.name", "spec.workloadVersion.buildTime", "spec.gitOpsCommitId"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}
	badRec := &v1alpha1.Reconciler{Spec: v1alpha1.ReconcilerSpec{HostName: "h", Type: "flux", ManifestsEndpoint: "https://github.com/a/b/dev",
		Deployment: &v1alpha1.ReconcilerDeployment{GitOpsCommitID: commit(1), Status: "done"}}}
	badRec.Name = "r"
	if _, err := resource.Report(badRec); err == nil || !strings.Contains(err.Error(), "spec.deployment.status") {
		t.Errorf("bad status: %v", err)
	}
	for _, tbl := range tables {
		if n := e.count(tbl); n != 0 {
			t.Errorf("%s has %d rows after invalid input", tbl, n)
		}
	}
}

func testVersionConflict(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	before := e.snapshot()
	d := descriptor(t, "api", "prod", "drone", "1.0.0", commit(2))
	d.Build = "rebuilt"
	_, err := e.ing.ApplyDescriptor(ctx, d)
	var ce *ingest.ConflictError
	if !errors.As(err, &ce) || ce.Field != "spec.workloadVersion.build" {
		t.Fatalf("error = %v, want a conflict on spec.workloadVersion.build", err)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a rejected descriptor was partly written:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// One commit cannot assign two versions to one target.
	d2 := descriptor(t, "api", "dev", "drone", "1.1.0", commit(1))
	if _, err := e.ing.ApplyDescriptor(ctx, d2); !errors.As(err, &ce) || ce.Field != "spec.gitOpsCommitId" {
		t.Fatalf("error = %v, want a conflict on spec.gitOpsCommitId", err)
	}
}

func testPendingCommit(t *testing.T, e *env) {
	d := descriptor(t, "api", "dev", "drone", "1.0.0", "")
	d.FluxSource = "flux-system/apps"
	if res := e.descriptor(d); res.Commit != "" {
		t.Fatalf("commit %q, want pending", res.Commit)
	}
	e.clock.Advance(time.Minute)
	other := descriptor(t, "api", "dev", "other", "1.0.0", "")
	other.FluxSource = "flux-system/apps"
	e.descriptor(other)
	e.report(report(t, "h1", "drone", "dev", commit(5), model.StatusSuccess))
	e.wantVersions(map[string]string{"h1/api/drone": "1.0.0 success"})
	// The Kustomization settled on commit 5, applied an hour before the
	// hub heard of it: both descriptors take the commit and that time.
	applied := e.clock.Now().Add(-time.Hour)
	n, err := e.ing.ResolveFluxRevision(ctx, "flux-system/apps", "dev@sha1:"+commit(5), applied)
	if err != nil || n != 2 {
		t.Fatalf("ResolveFluxRevision = %d, %v; want 2", n, err)
	}
	var c string
	var at time.Time
	if err := e.st.Read().QueryRow(ctx, `SELECT COALESCE(commit_sha, ''), assigned_at FROM assignments a JOIN targets t ON t.id = a.target_id WHERE t.name = 'drone'`).Scan(&c, &at); err != nil {
		t.Fatal(err)
	}
	if c != commit(5) || !at.Equal(applied) {
		t.Errorf("assignment at commit %q, %v; want %q, %v", c, at, commit(5), applied)
	}
	if res := e.descriptor(d); res.Changed || res.Commit != commit(5) {
		t.Errorf("replay after resolution: %+v", res)
	}
	if n, err := e.ing.ResolveFluxRevision(ctx, "flux-system/apps", "dev@sha1:"+commit(6), e.clock.Now()); err != nil || n != 0 {
		t.Errorf("nothing left pending: resolved %d, %v; want 0", n, err)
	}
	if _, err := e.ing.ResolveFluxRevision(ctx, "flux-system/apps", "garbage", e.clock.Now()); err == nil {
		t.Error("a garbage revision was accepted")
	}
}

func testRetireAndRestore(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	e.report(report(t, "h1", "drone", "dev", commit(1), model.StatusSuccess))
	e.report(report(t, "h2", "drone", "dev", commit(1), model.StatusSuccess))
	e.retire("h1")
	e.wantVersions(map[string]string{"h2/api/drone": "1.0.0 success"})
	if n := e.count("deployment_history"); n != 2 {
		t.Errorf("history lost on retire: %d rows", n)
	}
	if ok, _ := e.ing.RetireReconciler(ctx, "h1", "flux-system"); ok {
		t.Error("retired twice")
	}
	e.report(report(t, "h1", "drone", "dev", commit(1), model.StatusSuccess))
	e.wantVersions(map[string]string{"h1/api/drone": "1.0.0 success", "h2/api/drone": "1.0.0 success"})
	// Behind the next version, retired, then back on the same commit and
	// status: it drifts again.
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.1.0", commit(2)))
	e.retire("h1")
	e.checkMaintained()
	e.report(report(t, "h1", "drone", "dev", commit(1), model.StatusSuccess))
	if n := e.count("drift"); n != 2 {
		t.Errorf("drift rows after h1 came back behind: %d, want 2 (h1 and h2)", n)
	}
}

func testConcurrentWriters(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				host := fmt.Sprintf("h%d", i%3) // writers collide on hosts
				r := report(t, host, "drone", "dev", commit(1), model.StatusSuccess)
				if w%2 == 1 {
					d := descriptor(t, "api", "dev", "drone", "1.0.0", commit(1))
					if _, err := e.ing.ApplyDescriptor(ctx, d); err != nil {
						errs <- err
					}
				}
				if _, err := e.ing.ApplyReport(ctx, r); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	for tbl, n := range map[string]int{"hosts": 3, "reconcilers": 3, "deployments": 3, "deployment_history": 3, "commits": 1, "assignments": 1, "endpoints": 1} {
		if got := e.count(tbl); got != n {
			t.Errorf("%s: %d rows, want %d", tbl, got, n)
		}
	}
	e.wantVersions(map[string]string{"h0/api/drone": "1.0.0 success", "h1/api/drone": "1.0.0 success", "h2/api/drone": "1.0.0 success"})
}

// Names have no length limit, on every engine: 100,000 characters of
// text that does not compress (a B-tree index entry holds ~2,700 bytes).
func testLongNames(t *testing.T, e *env) {
	long := incompressible(100_000)
	d := descriptor(t, long, long, long, long, commit(1))
	d.Workspace, d.Application = long, long
	e.descriptor(d)
	host := "aks-" + incompressible(10_000)
	r := report(t, host, long, long, commit(1), model.StatusSuccess)
	r.Reconciler = long
	e.report(r)
	e.wantVersions(map[string]string{host + "/" + long + "/" + long: long + " success"})
	if e.report(r).Changed {
		t.Error("a replay with long names changed the store")
	}
	// A name that differs only in its last character is another name.
	other := host[:len(host)-1] + "!"
	e.report(report(t, other, long, long, commit(1), model.StatusSuccess))
	if n := e.count("hosts"); n != 2 {
		t.Errorf("%d hosts, want 2", n)
	}
}

// incompressible is n characters of pseudo-random letters, digits and
// non-ASCII letters.
func incompressible(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-éßøλжは"
	runes := []rune(alphabet)
	var b strings.Builder
	x := uint64(88172645463325252)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b.WriteRune(runes[x%uint64(len(runes))])
	}
	return b.String()
}

// Names are stored in Unicode normalization form C: "café" typed with a
// combining accent is the same host. Invalid UTF-8 and NUL are refused
// with the field named, and nothing is stored; a status message keeps at
// most model.MaxStatusMessage bytes and the length it had.
func testTextRules(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	e.report(report(t, "caf\u00e9", "drone", "dev", commit(1), model.StatusSuccess))
	if e.report(report(t, "cafe\u0301", "drone", "dev", commit(1), model.StatusSuccess)).Changed {
		t.Error("the NFD spelling of a host name is another host")
	}
	if n := e.count("hosts"); n != 1 {
		t.Errorf("%d hosts, want 1", n)
	}
	before := e.snapshot()
	for _, bad := range []struct{ field, host, msg string }{
		{"host", "h\xff1", ""},
		{"host", "h\x001", ""},
		{"message", "h1", "crash\x00loop"},
		{"message", "h1", "bad \xc3\x28 bytes"},
	} {
		r := report(t, bad.host, "drone", "dev", commit(1), model.StatusFailure)
		r.Message = bad.msg
		_, err := e.ing.ApplyReports(ctx, []model.Report{report(t, "h9", "drone", "dev", commit(1), model.StatusSuccess), r})
		var ve *model.ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Field != bad.field {
			t.Errorf("host %q message %q: error %v, want one naming %s", bad.host, bad.msg, err, bad.field)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a refused batch stored something:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	huge := strings.Repeat("é", 3*model.MaxStatusMessage)
	r := report(t, "h2", "drone", "dev", commit(1), model.StatusFailure)
	r.Message = huge
	e.report(r)
	hs, _, err := reports.New(e.st).HostState(ctx, reports.Filter{Host: "h2"}, reports.Page{})
	if err != nil || len(hs) != 1 {
		t.Fatalf("host state: %v %v", hs, err)
	}
	if m := hs[0].Message; len(m) > model.MaxStatusMessage || !utf8.ValidString(m) || !strings.HasSuffix(m, fmt.Sprintf("[truncated: %d bytes]", len(huge))) || hs[0].MessageBytes != len(huge) {
		t.Errorf("message of %d bytes kept as %d bytes ending %q, messageBytes %d", len(huge), len(m), m[len(m)-40:], hs[0].MessageBytes)
	}
}

// Latest means latest by time: versions are never compared as text.
func testRollback(t *testing.T, e *env) {
	for i, v := range []string{"1.50.0", "1.9.0", "1.50.0"} {
		d := descriptor(t, "api", "prod", "eu", v, commit(10+i))
		e.descriptor(d)
		e.clock.Advance(time.Minute)
	}
	if n := e.count("assignments"); n != 3 {
		t.Errorf("assignments: %d, want 3 (a rollback is a new assignment)", n)
	}
	e.report(report(t, "h1", "eu", "prod", commit(11), model.StatusSuccess))
	e.report(report(t, "h2", "eu", "prod", commit(12), model.StatusSuccess))
	e.wantVersions(map[string]string{"h1/api/eu": "1.9.0 success", "h2/api/eu": "1.50.0 success"})
}

func testHeartbeat(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	r := report(t, "h1", "drone", "dev", commit(1), model.StatusSuccess)
	e.report(r)
	e.clock.Advance(2 * ingest.DefaultHeartbeat)
	if !e.report(r).Changed {
		t.Fatal("a report after the heartbeat did not refresh the reconciler")
	}
	e.checkMaintained() // the host's earliest last-report time moves with it
	var last time.Time
	if err := e.st.Read().QueryRow(ctx, `SELECT last_report_at FROM reconcilers`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if !last.Equal(e.clock.Now()) {
		t.Errorf("last_report_at = %v, want %v", last, e.clock.Now())
	}
	if n := e.count("deployment_history"); n != 1 {
		t.Errorf("a heartbeat added history: %d rows", n)
	}
	// A changed report within the heartbeat keeps the last-report time
	// (its precision is the heartbeat); the next one after it moves it.
	refreshed := e.clock.Now()
	lastReport := func() time.Time {
		var at time.Time
		if err := e.st.Read().QueryRow(ctx, `SELECT last_report_at FROM reconcilers`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	e.clock.Advance(ingest.DefaultHeartbeat / 2)
	e.report(report(t, "h1", "drone", "dev", commit(2), model.StatusInProgress))
	if got := lastReport(); !got.Equal(refreshed) {
		t.Errorf("a changed report within the heartbeat: last_report_at = %v, want %v", got, refreshed)
	}
	e.clock.Advance(ingest.DefaultHeartbeat)
	e.report(report(t, "h1", "drone", "dev", commit(2), model.StatusSuccess))
	if got := lastReport(); !got.Equal(e.clock.Now()) {
		t.Errorf("a changed report after the heartbeat: last_report_at = %v, want %v", got, e.clock.Now())
	}
}

// testAssignmentFollowsLatestDeployment: a host's state for an assignment
// is its latest deployment among the commits resolving to it (several, on
// a GitOps branch), with the earliest failure among them; a late report of
// an older commit changes neither. The suite's check compares the
// maintained rows with their recomputation after each step.
func testAssignmentFollowsLatestDeployment(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	e.clock.Advance(time.Minute)
	failedAt := e.clock.Now()
	for _, h := range []string{"h1", "h2"} {
		e.report(report(t, h, "drone", "dev", commit(1), model.StatusFailure))
	}
	e.checkMaintained()
	// A configuration commit on the branch: still 1.0.0, now succeeding
	// (h1 shows the commit first, h2 once it is known).
	for _, h := range []string{"h1", "h2"} {
		e.clock.Advance(time.Minute)
		e.report(report(t, h, "drone", "dev", commit(2), model.StatusSuccess))
		e.checkMaintained()
	}
	e.wantVersions(map[string]string{"h1/api/drone": "1.0.0 success", "h2/api/drone": "1.0.0 success"})
	// A late report of the first commit, from before its failure.
	for _, h := range []string{"h1", "h2"} {
		late := report(t, h, "drone", "dev", commit(1), model.StatusInProgress)
		late.ObservedAt = failedAt.Add(-30 * time.Second)
		e.report(late)
	}
	e.checkMaintained()
	rows, err := e.st.Read().Query(ctx, `SELECT status, first_failure_at FROM reconciler_assignments`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var status string
		var firstFailure time.Time
		if err := rows.Scan(&status, &firstFailure); err != nil {
			t.Fatal(err)
		}
		if n++; status != "success" || !firstFailure.Equal(failedAt) {
			t.Errorf("assignment row: %s, first failure %v; want success, first failure %v", status, firstFailure, failedAt)
		}
	}
	if n != 2 {
		t.Errorf("%d assignment rows, want 2", n)
	}
}

// testOutcomesFollowRetirement: an assignment's outcome counts live hosts
// only. Retiring a failed host takes its failure out of the outcome (the
// earliest failure, kept in place as hosts report, is computed again), and
// a commit assigned after its only host retired still has an outcome, of
// no hosts. The suite's check compares the maintained rows with their
// recomputation after each step.
func testOutcomesFollowRetirement(t *testing.T, e *env) {
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	e.clock.Advance(time.Minute)
	e.report(report(t, "h1", "drone", "dev", commit(1), model.StatusFailure))
	e.report(report(t, "h2", "drone", "dev", commit(1), model.StatusSuccess))
	e.checkMaintained()
	e.retire("h1")
	e.checkMaintained()
	var failures int
	var firstFailure *time.Time
	if err := e.st.Read().QueryRow(ctx, `SELECT failure, first_failure_at FROM assignment_outcomes`).Scan(&failures, &firstFailure); err != nil {
		t.Fatal(err)
	}
	if failures != 0 || firstFailure != nil {
		t.Errorf("after retiring the failed host: %d failures, first failure %v; want none", failures, firstFailure)
	}

	e.report(report(t, "h3", "drone", "dev", commit(2), model.StatusSuccess))
	e.retire("h3")
	e.clock.Advance(time.Minute)
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.1.0", commit(2)))
	e.checkMaintained()
}

// testReconcilerMovesEndpoint: a reconciler that moves to another path of
// the branch counts for the target there only, with its state on that
// endpoint, whether the move comes alone or in a batch with other reports
// of it. The commit is branch-wide (it resolves on both targets), so a
// deployment placed on the endpoint the reconciler left would show.
func testReconcilerMovesEndpoint(t *testing.T, e *env) {
	for _, target := range []string{"drone", "tank"} {
		e.descriptor(descriptor(t, "api", "dev", target, "1.0.0", commit(1)))
	}
	e.clock.Advance(time.Minute)
	e.report(report(t, "h1", "drone", "dev", commit(1), model.StatusSuccess))
	e.report(report(t, "h2", "drone", "dev", commit(1), model.StatusSuccess))
	e.clock.Advance(time.Minute)
	e.report(report(t, "h1", "tank", "dev", commit(1), model.StatusFailure))
	e.checkMaintained()
	moved := report(t, "h2", "tank", "dev", commit(1), model.StatusInProgress)
	failed := moved
	failed.Status = model.StatusFailure
	if _, err := e.ing.ApplyReports(ctx, []model.Report{report(t, "h2", "drone", "dev", commit(1), model.StatusSuccess), moved, failed}); err != nil {
		t.Fatal(err)
	}
	e.checkMaintained()
	e.wantVersions(map[string]string{"h1/api/tank": "1.0.0 failure", "h2/api/tank": "1.0.0 failure"})
}

// testDriftFollowsReports: drift is kept as it is through status changes
// that cannot move it, and follows those that can: a failure of the
// scheduled version and its end, a late report that moves the first
// sighting of a commit behind, a move to a target scheduled elsewhere.
// The suite's check compares the maintained rows with their recomputation
// after each step.
func testDriftFollowsReports(t *testing.T, e *env) {
	start := e.clock.Now()
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
	e.descriptor(descriptor(t, "api", "dev", "drone", "1.1.0", commit(2)))
	e.descriptor(descriptor(t, "api", "dev", "tank", "1.0.0", commit(1)))
	e.clock.Advance(10 * time.Minute)
	behind := report(t, "h1", "drone", "dev", commit(1), model.StatusInProgress)
	e.report(behind)
	e.clock.Advance(time.Minute)
	behind.Status = model.StatusSuccess
	e.report(behind) // status only: its drift stays
	e.checkMaintained()
	late := report(t, "h1", "drone", "dev", commit(1), model.StatusInProgress)
	late.ObservedAt = start.Add(5 * time.Minute)
	e.report(late) // behind since earlier
	e.checkMaintained()

	scheduled := report(t, "h2", "drone", "dev", commit(2), model.StatusInProgress)
	e.report(scheduled)
	e.clock.Advance(time.Minute)
	scheduled.Status = model.StatusFailure
	e.report(scheduled) // the scheduled version failing
	e.checkMaintained()
	e.clock.Advance(time.Minute)
	scheduled.Status = model.StatusInProgress
	e.report(scheduled) // no longer failing
	e.checkMaintained()
	e.clock.Advance(time.Minute)
	scheduled.Status = model.StatusSuccess
	e.report(scheduled)

	onTank := report(t, "h3", "tank", "dev", commit(1), model.StatusSuccess)
	e.report(onTank) // tank runs 1.0.0: no drift
	e.clock.Advance(time.Minute)
	e.report(report(t, "h3", "drone", "dev", commit(1), model.StatusSuccess)) // drone is at 1.1.0: behind
	e.checkMaintained()
	if n := e.count("drift"); n != 2 {
		t.Errorf("drift rows: %d, want 2 (h1 and h3 behind on drone)", n)
	}
}
