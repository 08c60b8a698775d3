package reports_test

import (
	"context"
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

var ctx = context.Background()

// fleet feeds descriptors and reports through ingest on a settable clock.
type fleet struct {
	t   *testing.T
	st  *store.Store
	ing *ingest.Service
	rep *reports.Service

	mu  sync.Mutex
	now time.Time
}

func newFleet(t *testing.T, st *store.Store, start time.Time) *fleet {
	f := &fleet{t: t, st: st, now: start}
	clock := func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	f.ing = ingest.New(st, ingest.WithClock(clock))
	f.rep = reports.New(st, reports.WithClock(clock))
	return f
}

func (f *fleet) at(t time.Time) *fleet { f.mu.Lock(); f.now = t; f.mu.Unlock(); return f }

// sha makes a full commit id that starts with prefix.
func sha(prefix string) string { return prefix + strings.Repeat("0", 40-len(prefix)) }

type workload struct{ ws, app, name, repo string }

func (w workload) endpoint(env, target string) model.Endpoint {
	ep, err := model.NewEndpoint("git", w.repo, strings.ToLower(env), strings.ReplaceAll(strings.ToLower(target), " ", "-"))
	if err != nil {
		panic(err)
	}
	return ep
}

func (f *fleet) assign(w workload, env, target, version, commit string) {
	f.t.Helper()
	_, err := f.ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: w.ws, Application: w.app, Workload: w.name,
		Environment: env, Target: target, Manifests: w.endpoint(env, target), Version: version, Commit: commit})
	if err != nil {
		f.t.Fatalf("assign %s %s %s: %v", w.name, env, version, err)
	}
}

func (f *fleet) report(host string, w workload, env, target, commit string, status model.Status, msg string) {
	f.t.Helper()
	_, err := f.ing.ApplyReport(ctx, model.Report{Host: host, Reconciler: w.name, ReconcilerType: "flux",
		Endpoint: w.endpoint(env, target), Commit: commit, Status: status, Message: msg})
	if err != nil {
		f.t.Fatalf("report %s %s: %v", host, commit, err)
	}
}

// hosts names n clusters from first.
func hosts(prefix string, first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, first+i)
	}
	return out
}
