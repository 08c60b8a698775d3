// Package agent is `tidemark agent`: it runs in a workload cluster with
// read-only access, watches the cluster's reconcilers (Flux
// Kustomizations and HelmReleases with their sources, Argo CD
// Applications) and pushes their state to the hub's HTTP API. It sends
// only changes, in batches, keeps them in an ordered buffer while the hub
// is unreachable, and registers and retires reconcilers as their objects
// come and go.
package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// Defaults of Options.
const (
	DefaultBufferSize     = 10000
	DefaultBatchSize      = 500
	DefaultFlushInterval  = 500 * time.Millisecond
	DefaultResyncInterval = 10 * time.Minute
	DefaultMaxBackoff     = time.Minute
)

// Options configure an Agent.
type Options struct {
	// Kube is the workload cluster. Required.
	Kube *rest.Config
	// Hub receives the reports. Required.
	Hub *Hub
	// Host is the host name the cluster reports as. Required (see HostName).
	Host string
	// HostLabels are set on the host.
	HostLabels map[string]string
	// Namespace restricts the watches to one namespace; empty watches all.
	Namespace string
	// BufferSize bounds the changes kept in order while the hub is
	// unreachable (DefaultBufferSize); past it, only the latest change of
	// each reconciler is kept.
	BufferSize int
	// BatchSize is the most reports in one request (DefaultBatchSize).
	BatchSize int
	// FlushInterval gathers changes into batches (DefaultFlushInterval).
	FlushInterval time.Duration
	// ResyncInterval is how often every reconciler is sent again, so that
	// the hub sees the cluster alive, and the reconcilers deleted while
	// the agent was away are retired (DefaultResyncInterval).
	ResyncInterval time.Duration
	// MaxBackoff bounds the wait between retries (DefaultMaxBackoff).
	MaxBackoff time.Duration
	// Registerer receives the agent's metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Source is the source name the agent of host pushes as.
func Source(host string) string { return "agent/" + host }

// Agent watches a cluster and reports to the hub.
type Agent struct {
	opts    Options
	log     *slog.Logger
	source  string
	metrics *metrics
	out     *outbox

	mu      sync.Mutex
	objects map[objectKey]*watched // reconciler objects
	sources map[objectKey]*unstructured.Unstructured
	deps    map[objectKey]map[objectKey]bool // source -> reconciler objects reading it
	sent    map[string]uint64                // reconciler -> fingerprint of the last state queued
	synced  atomic.Bool
	// hubOK is false after a failed push, until one succeeds.
	hubOK atomic.Bool
}

type watched struct {
	kind Kind
	obj  *unstructured.Unstructured
}

// New returns an agent.
func New(opts Options) (*Agent, error) {
	if opts.Kube == nil || opts.Hub == nil {
		return nil, errors.New("agent: Options.Kube and Options.Hub are required")
	}
	if opts.Host == "" {
		return nil, errors.New("agent: Options.Host is required")
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &Agent{
		opts: opts, log: opts.Logger, source: Source(opts.Host), out: newOutbox(opts.BufferSize),
		objects: map[objectKey]*watched{}, sources: map[objectKey]*unstructured.Unstructured{},
		deps: map[objectKey]map[objectKey]bool{}, sent: map[string]uint64{},
	}
	a.metrics = newMetrics(opts.Registerer, a)
	return a, nil
}

// HostName is the default host name of a cluster: the uid of its
// kube-system namespace, stable for the cluster's life.
func HostName(ctx context.Context, cfg *rest.Config) (string, error) {
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	ns, err := c.Resource(nsGVR).Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read the kube-system namespace's uid for the host name (or give --host-name): %w", err)
	}
	return string(ns.GetUID()), nil
}

// Run watches and reports until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	dc, err := discovery.NewDiscoveryClientForConfig(a.opts.Kube)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(a.opts.Kube)
	if err != nil {
		return err
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, a.opts.Namespace, nil)
	var syncs []cache.InformerSynced
	for _, k := range Kinds {
		version, ok := servedVersion(dc, k)
		if !ok {
			a.log.Info("not watching "+k.Name+": its CRD is not installed (restart the agent after installing it)", "group", k.Group)
			continue
		}
		inf := factory.ForResource(k.GVR(version)).Informer()
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { a.upsert(k, obj) },
			UpdateFunc: func(_, obj any) { a.upsert(k, obj) },
			DeleteFunc: func(obj any) { a.remove(k, obj) },
		})
		if err != nil {
			return err
		}
		syncs = append(syncs, inf.HasSynced)
		a.log.Info("watching "+k.Name, "version", version)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), syncs...) {
		return ctx.Err()
	}
	a.synced.Store(true)
	a.resync(false)
	a.log.Info("watches synced: full resync queued", "reconcilers", len(a.sentKeys()))

	done := make(chan struct{})
	go func() {
		defer close(done)
		a.send(ctx)
	}()
	t := time.NewTicker(a.opts.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return nil
		case <-t.C:
			a.resync(true)
		}
	}
}

// servedVersion is the first of the kind's versions the API server serves.
func servedVersion(dc discovery.DiscoveryInterface, k Kind) (string, bool) {
	for _, v := range k.Versions {
		res, err := dc.ServerResourcesForGroupVersion(k.Group + "/" + v)
		if err != nil {
			continue
		}
		for _, r := range res.APIResources {
			if r.Name == k.Resource {
				return v, true
			}
		}
	}
	return "", false
}

// upsert records a created or changed object and queues what changed.
func (a *Agent) upsert(k Kind, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := objectKey{Kind: k.Name, Namespace: u.GetNamespace(), Name: u.GetName()}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !k.Reconciler {
		a.sources[key] = u
		for dep := range a.deps[key] {
			if w := a.objects[dep]; w != nil {
				a.update(dep, w)
			}
		}
		return
	}
	w := &watched{kind: k, obj: u}
	a.objects[key] = w
	a.update(key, w)
}

// remove forgets a deleted object; a deleted reconciler is retired.
func (a *Agent) remove(k Kind, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := objectKey{Kind: k.Name, Namespace: u.GetNamespace(), Name: u.GetName()}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !k.Reconciler {
		delete(a.sources, key)
		return
	}
	delete(a.objects, key)
	for _, d := range a.deps {
		delete(d, key)
	}
	name := reconcilerName(key)
	if _, ok := a.sent[name]; ok {
		delete(a.sent, name)
		a.metrics.changes.Inc()
		a.out.push(entry{op: opRetire, name: name})
	}
}

// update maps a reconciler object and queues its state when it changed;
// a.mu is held.
func (a *Agent) update(key objectKey, w *watched) {
	st, deps, skip := stateOf(w.kind, w.obj, a.lookup)
	for _, d := range deps {
		if a.deps[d] == nil {
			a.deps[d] = map[objectKey]bool{}
		}
		a.deps[d][key] = true
	}
	if skip != "" {
		a.metrics.skipped.WithLabelValues(w.kind.Name, string(skip)).Inc()
		a.log.Debug("object not reported", "object", key.String(), "reason", skip)
		return
	}
	fp := fingerprint(st)
	if old, ok := a.sent[st.Name]; ok && old == fp {
		return
	}
	a.sent[st.Name] = fp
	if a.synced.Load() || st.ObservedAt == "" {
		// A change seen live happened now; the initial listing keeps the
		// time the object's conditions give.
		st.ObservedAt = time.Now().UTC().Format(time.RFC3339Nano)
	}
	a.metrics.changes.Inc()
	a.out.push(entry{op: opReport, name: st.Name, doc: a.document(st)})
}

func (a *Agent) lookup(kind, ns, name string) *unstructured.Unstructured {
	return a.sources[objectKey{Kind: kind, Namespace: ns, Name: name}]
}

// resync queues every reconciler's state (again, when force) and then the
// retirement of the agent's reconcilers that are gone.
func (a *Agent) resync(force bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if force {
		a.sent = map[string]uint64{}
		for key, w := range a.objects {
			a.update(key, w)
		}
	}
	present := make([]model.ReconcilerKey, 0, len(a.sent))
	for name := range a.sent {
		present = append(present, model.ReconcilerKey{Host: a.opts.Host, Name: name})
	}
	a.out.push(entry{op: opResync, present: present})
}

func (a *Agent) sentKeys() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]string, 0, len(a.sent))
	for k := range a.sent {
		keys = append(keys, k)
	}
	return keys
}

// document is the Reconciler the hub receives for a state: without
// spec.deployment while the reconciler has applied nothing.
func (a *Agent) document(st State) *v1alpha1.Reconciler {
	r := &v1alpha1.Reconciler{Spec: v1alpha1.ReconcilerSpec{
		HostName: a.opts.Host, HostType: model.HostCluster, HostLabels: a.opts.HostLabels,
		ReconcilerName: st.Name, Type: st.Type, ManifestsEndpoint: st.Endpoint, ManifestsStorageType: st.Storage,
	}}
	r.APIVersion, r.Kind = v1alpha1.GroupVersion.String(), "Reconciler"
	if st.Commit != "" {
		r.Spec.Deployment = &v1alpha1.ReconcilerDeployment{GitOpsCommitID: st.Commit, Status: string(st.Status),
			StatusMessage: st.Message, ObservedAt: st.ObservedAt}
	}
	return r
}

// fingerprint hashes what a state says, but not when it was observed.
func fingerprint(st State) uint64 {
	h := fnv.New64a()
	for _, s := range []string{st.Name, st.Type, st.Endpoint, st.Storage, st.Commit, string(st.Status), st.Message} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// send pushes the outbox to the hub, in order, until ctx ends.
func (a *Agent) send(ctx context.Context) {
	backoff := time.Duration(0)
	single := false // after a rejected batch, send one at a time to find the bad one
	for {
		if a.out.len() == 0 {
			select {
			case <-ctx.Done():
				return
			case <-a.out.notify:
			}
			// Gather the changes that come together into one batch.
			select {
			case <-ctx.Done():
				return
			case <-time.After(a.opts.FlushInterval):
			}
			continue
		}
		batch := a.out.peek(a.opts.BatchSize)
		n := 1
		if batch[0].op == opReport && !single {
			for n < len(batch) && batch[n].op == opReport {
				n++
			}
		}
		batch = batch[:n]
		err := a.deliver(ctx, batch)
		if ctx.Err() != nil {
			return
		}
		if err == nil || !retryable(err) {
			if err != nil {
				if len(batch) > 1 {
					single = true // find the document the hub refuses
					continue
				}
				a.metrics.rejected.Inc()
				a.log.Error("the hub refused a change; dropped", "reconciler", batch[0].name, "err", err)
			} else {
				a.metrics.sent.Add(float64(len(batch)))
			}
			if !a.hubOK.Swap(true) {
				a.log.Info("hub reachable", "url", a.opts.Hub.URL, "buffered", a.out.len())
			}
			a.out.ack(batch[len(batch)-1].seq)
			backoff = 0
			if single && batch[0].op == opReport && err == nil {
				single = false
			}
			continue
		}
		a.metrics.pushErrors.Inc()
		if a.hubOK.Swap(false) {
			a.log.Warn("hub unreachable: buffering changes, retrying with backoff", "url", a.opts.Hub.URL, "err", err)
		}
		backoff = min(max(2*backoff, 250*time.Millisecond), a.opts.MaxBackoff)
		wait := backoff/2 + rand.N(backoff/2+1)
		var he *HubError
		if errors.As(err, &he) && he.RetryAfter > 0 {
			wait = min(he.RetryAfter, a.opts.MaxBackoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// deliver sends one batch: reports together, a retirement or a resync
// alone.
func (a *Agent) deliver(ctx context.Context, batch []entry) error {
	switch batch[0].op {
	case opRetire:
		return a.opts.Hub.Retire(ctx, a.opts.Host, batch[0].name)
	case opResync:
		return a.opts.Hub.RetireMissing(ctx, a.source, batch[0].present)
	}
	docs := make([]v1alpha1.Reconciler, len(batch))
	for i, e := range batch {
		docs[i] = *e.doc
	}
	return a.opts.Hub.Push(ctx, a.source, docs)
}

// Handler serves /healthz, /readyz (the watches have synced) and /metrics.
func (a *Agent) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.synced.Load() {
			http.Error(w, "watches not synced yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}

// NewRegistry returns a registry with the Go and process collectors, for
// an agent's metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
