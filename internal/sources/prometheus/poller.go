// Package prometheus polls Prometheus-compatible query APIs (Prometheus,
// Thanos, Mimir, Azure Monitor managed Prometheus) for the info series
// Flux's objects are exported as, and turns each Flux Kustomization into a
// reconciler report: flux_resource_info (the Flux Operator) and
// gotk_resource_info (the kube-state-metrics configuration of Flux's
// monitoring guide). It writes only what changed, through ingest's batch
// path, and retires the reconcilers whose series have been gone for longer
// than a grace period.
package prometheus

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	prom "github.com/prometheus/client_golang/prometheus"
	pmodel "github.com/prometheus/common/model"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/sources"
)

// SourcePrefix starts the source name of the reports of a poller:
// "prometheus/<name>".
const SourcePrefix = "prometheus/"

// Options configure pollers.
type Options struct {
	Logger *slog.Logger
	// Registerer registers each poller's metrics; none when nil.
	Registerer prom.Registerer
	// Clock is the source of "now" (tests); time.Now when nil.
	Clock func() time.Time
	// Credential replaces the Microsoft Entra credential of sources with
	// auth.azure (tests).
	Credential azcore.TokenCredential
}

// Poller polls one source.
type Poller struct {
	cfg     SourceConfig
	source  string
	api     promv1.API
	ingest  *ingest.Service
	log     *slog.Logger
	now     func() time.Time
	metrics *sources.Metrics
	polls   *prom.CounterVec
	seconds prom.Histogram
	series  prom.Gauge
	retired prom.Counter

	started time.Time
	// sent is what was last stored for each reconciler, and when.
	sent map[model.ReconcilerKey]sentReport
	// seen is when each reconciler's series were last read.
	seen map[model.ReconcilerKey]time.Time
}

type sentReport struct {
	fingerprint string
	at          time.Time
}

// NewPoller returns a poller of one source, storing through ing.
func NewPoller(cfg SourceConfig, ing *ingest.Service, opts Options) (*Poller, error) {
	rt, err := transport(cfg, opts.Credential)
	if err != nil {
		return nil, fmt.Errorf("prometheus source %s: %w", cfg.Name, err)
	}
	client, err := api.NewClient(api.Config{Address: cfg.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus source %s: %w", cfg.Name, err)
	}
	p := &Poller{cfg: cfg, source: SourcePrefix + cfg.Name, api: promv1.NewAPI(client), ingest: ing,
		log: opts.Logger, now: opts.Clock,
		sent: map[model.ReconcilerKey]sentReport{}, seen: map[model.ReconcilerKey]time.Time{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("source", p.source)
	if p.now == nil {
		p.now = time.Now
	}
	if err := p.register(opts.Registerer); err != nil {
		return nil, fmt.Errorf("prometheus source %s metrics: %w", cfg.Name, err)
	}
	p.started = p.now()
	return p, nil
}

func (p *Poller) register(reg prom.Registerer) error {
	var err error
	if p.metrics, err = sources.NewMetrics(reg, p.source); err != nil {
		return err
	}
	labels := prom.Labels{"source": p.source}
	p.polls = prom.NewCounterVec(prom.CounterOpts{Name: "tidemark_source_polls_total",
		Help: "Polls of a Prometheus source, by result (ok, error).", ConstLabels: labels}, []string{"result"})
	p.seconds = prom.NewHistogram(prom.HistogramOpts{Name: "tidemark_source_poll_duration_seconds",
		Help: "Time one poll of a Prometheus source took (queries, mapping, ingest).", ConstLabels: labels,
		Buckets: prom.ExponentialBuckets(0.01, 2, 14)})
	p.series = prom.NewGauge(prom.GaugeOpts{Name: "tidemark_source_series",
		Help: "Series the last poll of a Prometheus source read.", ConstLabels: labels})
	p.retired = prom.NewCounter(prom.CounterOpts{Name: "tidemark_source_reconcilers_retired_total",
		Help: "Reconcilers a source retired because their series vanished.", ConstLabels: labels})
	if reg == nil {
		return nil
	}
	for _, c := range []prom.Collector{p.polls, p.seconds, p.series, p.retired} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// PollResult says what one poll did.
type PollResult struct {
	// Series is how many series the queries returned.
	Series int
	// Reconcilers is how many Kustomizations they describe.
	Reconcilers int
	// Sent is how many reports went to ingest (changed since the last
	// poll, or due for a resync); Applied how many changed the store.
	Sent, Applied int
	// Rejected counts the Kustomizations that made no report, by reason.
	Rejected map[string]int
	// Retired lists the reconcilers retired because their series vanished.
	Retired []model.ReconcilerKey
}

// Poll queries the source once, stores what changed and retires what
// vanished. On error nothing is retired.
func (p *Poller) Poll(ctx context.Context) (res PollResult, err error) {
	start := time.Now()
	defer func() {
		p.seconds.Observe(time.Since(start).Seconds())
		if err != nil {
			p.polls.WithLabelValues("error").Inc()
		} else {
			p.polls.WithLabelValues("ok").Inc()
		}
	}()
	now := p.now()
	res.Rejected = map[string]int{}
	snap, err := p.query(ctx, now, res.Rejected)
	if err != nil {
		return res, err
	}
	res.Series = snap.series
	p.series.Set(float64(snap.series))

	var reps []model.Report
	var fingerprints []string
	present := map[model.ReconcilerKey]bool{}
	for _, k := range snap.kustomizations() {
		res.Reconcilers++
		rep, reason, detail := snap.report(k, p.source)
		key := model.ReconcilerKey{Host: rep.Host, Name: rep.Reconciler}
		present[key] = true
		p.seen[key] = now
		if reason != "" {
			res.Rejected[reason]++
			p.log.Debug("Kustomization not reported", "reason", reason, "detail", detail)
			continue
		}
		fp := fingerprint(rep)
		if last, ok := p.sent[key]; ok && last.fingerprint == fp && now.Sub(last.at) < p.cfg.Resync.Duration {
			continue // unchanged: no write
		}
		rep.ObservedAt = now
		reps = append(reps, rep)
		fingerprints = append(fingerprints, fp)
	}
	p.metrics.Received.Add(float64(res.Reconcilers))
	for reason, n := range res.Rejected {
		p.metrics.Rejected.WithLabelValues(reason).Add(float64(n))
	}
	if len(reps) > 0 {
		out, err := p.ingest.ApplyReports(ctx, reps)
		if err != nil {
			return res, fmt.Errorf("store %d reports: %w", len(reps), err)
		}
		res.Sent = len(reps)
		for i, o := range out {
			key := model.ReconcilerKey{Host: reps[i].Host, Name: reps[i].Reconciler}
			p.sent[key] = sentReport{fingerprint: fingerprints[i], at: now}
			if o.Changed {
				res.Applied++
			}
		}
		p.metrics.Applied.Add(float64(res.Applied))
	}
	res.Retired, err = p.retire(ctx, now)
	return res, err
}

// query runs every configured metric's query at now.
func (p *Poller) query(ctx context.Context, now time.Time, rejected map[string]int) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout.Duration)
	defer cancel()
	snap := newSnapshot()
	for _, metric := range p.cfg.Metrics {
		q := metric
		if p.cfg.Selector != "" {
			q += "{" + p.cfg.Selector + "}"
		}
		v, warnings, err := p.api.Query(ctx, q, now)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q, err)
		}
		if len(warnings) > 0 {
			p.log.Warn("query warnings", "query", q, "warnings", strings.Join(warnings, "; "))
		}
		vec, ok := v.(pmodel.Vector)
		if !ok {
			return nil, fmt.Errorf("query %s: the answer is a %s, not an instant vector", q, v.Type())
		}
		snap.add(vec, p.cfg.ClusterLabel, rejected)
	}
	return snap, nil
}

// retire retires the reconcilers this source reported whose series have
// not been read for RetireAfter. Until the poller has run that long, it
// cannot tell how long a reconciler stored before it started has been
// gone, so nothing is retired.
func (p *Poller) retire(ctx context.Context, now time.Time) ([]model.ReconcilerKey, error) {
	grace := p.cfg.RetireAfter.Duration
	if now.Sub(p.started) < grace {
		return nil, nil
	}
	var present []model.ReconcilerKey
	for k, at := range p.seen {
		if now.Sub(at) < grace {
			present = append(present, k)
		} else {
			delete(p.seen, k)
		}
	}
	retired, err := p.ingest.RetireMissing(ctx, p.source, present)
	if err != nil {
		return nil, fmt.Errorf("retire vanished reconcilers: %w", err)
	}
	for _, k := range retired {
		delete(p.sent, k) // if it comes back, it is reported again
		p.log.Info("reconciler retired: its series vanished", "host", k.Host, "reconciler", k.Name, "after", grace)
	}
	p.retired.Add(float64(len(retired)))
	return retired, nil
}

// fingerprint is what a report says, to tell whether it changed.
func fingerprint(r model.Report) string {
	return strings.Join([]string{r.ReconcilerType, r.Endpoint.Key(), r.Commit, string(r.Status), r.Message}, "\x00")
}

// Run polls every Interval until ctx ends. A failed poll is retried after
// a delay that doubles with each failure, from the interval up to 16
// intervals, with jitter.
func (p *Poller) Run(ctx context.Context) {
	failures := 0
	for {
		res, err := p.Poll(ctx)
		delay := p.cfg.Interval.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			delay = backoff(p.cfg.Interval.Duration, failures)
			p.log.Warn("poll failed", "err", err, "failures", failures, "retryIn", delay.Round(time.Millisecond))
		default:
			failures = 0
			p.log.Debug("polled", "series", res.Series, "reconcilers", res.Reconcilers, "sent", res.Sent,
				"applied", res.Applied, "rejected", res.Rejected, "retired", len(res.Retired))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// backoff is the delay after the n-th failure in a row: the interval
// doubled n-1 times, at most 16 intervals, plus up to 10% jitter.
func backoff(interval time.Duration, n int) time.Duration {
	d := interval << min(n-1, 4)
	return d + rand.N(d/10+1)
}

// NewPollers returns a poller per source of cfg.
func NewPollers(cfg Config, ing *ingest.Service, opts Options) ([]*Poller, error) {
	pollers := make([]*Poller, 0, len(cfg.Sources))
	for _, s := range cfg.Sources {
		p, err := NewPoller(s, ing, opts)
		if err != nil {
			return nil, err
		}
		pollers = append(pollers, p)
	}
	return pollers, nil
}

// RunPollers runs the pollers until ctx ends and they have all stopped.
func RunPollers(ctx context.Context, pollers []*Poller) {
	var wg sync.WaitGroup
	for _, p := range pollers {
		wg.Go(func() { p.Run(ctx) })
	}
	wg.Wait()
}
