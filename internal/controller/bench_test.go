package controller_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// benchResources is how many descriptors, then reconcilers, one iteration
// creates; TIDEMARK_BENCH_RESOURCES overrides it.
func benchResources() int {
	if n, err := strconv.Atoi(os.Getenv("TIDEMARK_BENCH_RESOURCES")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// benchClientLimits are the controller's requests/s and burst to the API
// server: the production defaults (the flags' defaults), or
// TIDEMARK_BENCH_QPS (burst twice that) to find the controller's own limit.
func benchClientLimits() (float32, int) {
	if q, err := strconv.Atoi(os.Getenv("TIDEMARK_BENCH_QPS")); err == nil && q > 0 {
		return float32(q), 2 * q
	}
	return controller.DefaultKubeAPIQPS, controller.DefaultKubeAPIBurst
}

// BenchmarkReconcile creates 1,000 DeploymentDescriptors, waits until all
// are Ready, then 1,000 Reconcilers reporting on their targets, and waits
// until all are Ready, on the real API server, with the controller's
// production settings (the --concurrent, --kube-api-qps and
// --kube-api-burst defaults). It reports descriptors/s and reconcilers/s
// from the first create to the last Ready, so the API server's own create
// rate (logged) bounds them. TIDEMARK_BENCH_QPS and
// TIDEMARK_BENCH_CONCURRENCY override the client limit and the workers.
//
//	CI=true go test -run '^$' -bench Reconcile -benchtime 1x ./internal/controller/
func BenchmarkReconcile(b *testing.B) {
	n := benchResources()
	for _, engine := range testenv.Engines {
		b.Run(engine, func(b *testing.B) {
			st := testenv.NewStore(b, engine)
			qps, burst := benchClientLimits()
			h := startController(b, st, quiet, func(o *controller.Options, cfg *rest.Config) {
				cfg.QPS, cfg.Burst = qps, burst
				if c, err := strconv.Atoi(os.Getenv("TIDEMARK_BENCH_CONCURRENCY")); err == nil {
					o.MaxConcurrentReconciles = c
				}
			})
			ready := h.readyCounter(b)
			var dTotal, rTotal time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				iter := strconv.Itoa(i)
				start := time.Now()
				h.createParallel(b, n, func(j int) client.Object {
					target := fmt.Sprintf("b%s-t%04d", iter, j)
					dd := descriptor(h.ns, target, target, "1.0."+iter)
					dd.Labels = map[string]string{"bench": iter}
					dd.Spec.GitOpsCommitID = shaA
					return dd
				})
				created := time.Since(start)
				ready.wait(b, "descriptors", iter, n)
				d := time.Since(start)
				dTotal += d

				start = time.Now()
				h.createParallel(b, n, func(j int) client.Object {
					target := fmt.Sprintf("b%s-t%04d", iter, j)
					rec := reconciler(h.ns, target, "aks-"+target, target, shaA, "success")
					rec.Labels = map[string]string{"bench": iter}
					return rec
				})
				ready.wait(b, "reconcilers", iter, n)
				r := time.Since(start)
				rTotal += r
				b.Logf("%s (%d workers, API client %g requests/s, burst %d): %d descriptors created in %s, Ready in %s; %d reconcilers Ready in %s",
					engine, workers(h.opts), qps, burst, n, created.Round(time.Millisecond), d.Round(time.Millisecond), n, r.Round(time.Millisecond))
			}
			b.StopTimer()
			b.ReportMetric(float64(n*b.N)/dTotal.Seconds(), "descriptors/s")
			b.ReportMetric(float64(n*b.N)/rTotal.Seconds(), "reconcilers/s")
			if got, want := count(b, st, "assignments"), n*b.N; got != want {
				b.Errorf("%d assignments stored, want %d", got, want)
			}
			if got, want := len(hostTargets(b, st)), n*b.N; got != want {
				b.Errorf("HostTargets lists %d, want %d", got, want)
			}
		})
	}
}

func workers(o controller.Options) int {
	if o.MaxConcurrentReconciles > 0 {
		return o.MaxConcurrentReconciles
	}
	return controller.DefaultMaxConcurrentReconciles
}

// createParallel creates n objects with 8 clients at once.
func (h *harness) createParallel(b *testing.B, n int, obj func(int) client.Object) {
	b.Helper()
	jobs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := h.c.Create(context.Background(), obj(j)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for j := range n {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// readyCounter counts Ready resources from a watch (an informer cache of
// its own), so that waiting costs the API server nothing.
type readyCounter struct {
	c client.Reader
}

func (h *harness) readyCounter(b *testing.B) *readyCounter {
	b.Helper()
	c, err := cache.New(h.kube.Config, cache.Options{Scheme: controller.NewScheme(), DefaultNamespaces: map[string]cache.Config{h.ns: {}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	for _, o := range []client.Object{&v1alpha1.DeploymentDescriptor{}, &v1alpha1.Reconciler{}} {
		if _, err := c.GetInformer(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		b.Fatal("bench cache did not sync")
	}
	return &readyCounter{c: c}
}

// wait waits until n resources of the kind labelled bench=iter are Ready
// (reason Stored) for their current generation.
func (r *readyCounter) wait(b *testing.B, kind, iter string, n int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		got := 0
		switch kind {
		case "descriptors":
			var l v1alpha1.DeploymentDescriptorList
			if err := r.c.List(context.Background(), &l, client.MatchingLabels{"bench": iter}); err != nil {
				b.Fatal(err)
			}
			for _, o := range l.Items {
				if c := ready(o.Status.Conditions, o.Generation); c != nil && c.Reason == controller.ReasonStored {
					got++
				}
			}
		case "reconcilers":
			var l v1alpha1.ReconcilerList
			if err := r.c.List(context.Background(), &l, client.MatchingLabels{"bench": iter}); err != nil {
				b.Fatal(err)
			}
			for _, o := range l.Items {
				if c := ready(o.Status.Conditions, o.Generation); c != nil && c.Reason == controller.ReasonStored {
					got++
				}
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d %s Ready after 10 minutes", got, n, kind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
