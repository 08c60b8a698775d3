package arg_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resourcegraph/armresourcegraph/fake"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tidemark-dev/tidemark/internal/sources/arg"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// TestPollersIndependent runs two configurations with different
// credentials and subscriptions in one Manager: each polls its own
// subscription with its own credential, and one failing does not stop the
// other.
func TestPollersIndependent(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		const subA, subB = "aaaaaaaa-0000-0000-0000-000000000000", "bbbbbbbb-0000-0000-0000-000000000000"
		c := sha("c")
		h := newHub(st)
		h.target(t, "apps", "1.0.0", c)
		f := newFleet()
		f.add(subA, config(subA, "east-1", c, "Compliant", "apps"))
		f.add(subA, config(subA, "east-2", c, "Compliant", "apps"))
		f.add(subB, config(subB, "west-1", c, "Non-Compliant", "apps"))
		w := &wire{next: fake.NewServerTransport(f.server())}
		creds := &credentials{}
		reg := prometheus.NewRegistry()
		var mu sync.Mutex
		results := map[string][]arg.Result{}
		polled := make(chan string, 100)
		m, err := arg.NewManager(arg.Options{
			Ingest: h.ingest, Credentials: creds, Logger: quietLog(), Metrics: arg.NewMetrics(reg),
			ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: w}},
			OnResult: func(key string, r arg.Result) {
				mu.Lock()
				results[key] = append(results[key], r)
				mu.Unlock()
				polled <- key
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		a := arg.Config{Namespace: "team-a", Name: "east", Tenant: "tenant-a", Subscriptions: []string{subA}, Interval: time.Hour, ManagedIdentity: "mi-a"}
		b := arg.Config{Namespace: "team-b", Name: "west", Tenant: "tenant-b", Subscriptions: []string{subB}, Interval: time.Hour, SecretRef: "sp-b"}
		creds.of(b.Key()).SetError(errors.New("AADSTS7000215: invalid client secret"))
		m.Set(arg.OriginKubernetes, a)
		m.Set(arg.OriginKubernetes, b)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Start(runCtx) }()
		defer func() { stop(); <-done }()

		waitPolls := func(keys ...string) {
			t.Helper()
			want := map[string]bool{}
			for _, k := range keys {
				want[k] = true
			}
			timeout := time.After(30 * time.Second)
			for len(want) > 0 {
				select {
				case k := <-polled:
					delete(want, k)
				case <-timeout:
					t.Fatalf("no poll of %v within 30s", want)
				}
			}
		}
		waitPolls(a.Key(), b.Key())
		ra, _ := m.Result(a.Key())
		rb, _ := m.Result(b.Key())
		if ra.Err != nil || ra.Reconcilers != 2 || ra.Changed != 2 {
			t.Errorf("east: %+v", ra)
		}
		if rb.Err == nil || rb.Changed != 0 {
			t.Errorf("west polled without its credential: %+v", rb)
		}
		if creds.of(a.Key()).tokens.Load() == 0 {
			t.Error("east's credential was never asked for a token")
		}
		for _, r := range w.requests() {
			if len(r.subscriptions) != 1 || r.subscriptions[0] != subA {
				t.Errorf("request for %v: only east (subscription %s) could poll", r.subscriptions, subA)
			}
		}
		if g := h.gate(t, "apps", c); g.Total != 2 || g.Succeeded != 2 {
			t.Errorf("gate after east's poll: %+v", g)
		}
		if v := testutil.ToFloat64(mustCounter(t, reg, "tidemark_arg_polls_total", "team-b/west", "error")); v != 1 {
			t.Errorf("west error polls metric = %v", v)
		}

		// West's credential is fixed: changing its configuration polls at
		// once, with its own subscription.
		creds.replace(b.Key())
		b.Interval = 2 * time.Hour
		m.Set(arg.OriginKubernetes, b)
		waitPolls(b.Key())
		if rb, _ := m.Result(b.Key()); rb.Err != nil || rb.Reconcilers != 1 {
			t.Errorf("west after the fix: %+v", rb)
		}
		if g := h.gate(t, "apps", c); g.Total != 3 || g.Failed != 1 {
			t.Errorf("gate after west's poll: %+v", g)
		}
		var sawB bool
		for _, r := range w.requests() {
			sawB = sawB || (len(r.subscriptions) == 1 && r.subscriptions[0] == subB)
		}
		if !sawB {
			t.Error("west never queried its subscription")
		}
		// Removing a configuration stops its poller and its metrics.
		if !m.Remove(a.Key()) || len(m.Keys()) != 1 {
			t.Errorf("remove east: keys %v", m.Keys())
		}
		if n := testutil.CollectAndCount(reg, "tidemark_arg_polls_total"); n != 1 {
			t.Errorf("%d polls_total series after removing east, want 1 (west)", n)
		}
	})
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			if len(vals) == len(labels) && equal(vals, labels) {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
