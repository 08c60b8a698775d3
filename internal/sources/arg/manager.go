package arg

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
)

// Origins of configurations: which way a configuration reached the hub.
// Manager.Replace replaces the configurations of one origin.
const (
	OriginKubernetes = "kubernetes"
	OriginFile       = "file"
	OriginAPI        = "api"
)

// Manager runs one poller per configuration, each at its own interval,
// whichever way the configuration arrived: every path is handled the same
// way. It is safe for concurrent use.
type Manager struct {
	opts Options

	mu      sync.Mutex
	ctx     context.Context // set by Start
	running map[string]*running
	results map[string]Result
	wg      sync.WaitGroup
}

type running struct {
	cfg    Config
	origin string
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager returns a manager; pollers start with Start.
func NewManager(opts Options) (*Manager, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	return &Manager{opts: opts, running: map[string]*running{}, results: map[string]Result{}}, nil
}

// Start runs the pollers until ctx ends, then stops them and waits for
// them. Configurations set before Start begin polling now.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	for _, r := range m.running {
		m.launch(r)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	for _, r := range m.running {
		if r.cancel != nil {
			r.cancel()
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// Set polls cfg, which came from origin. A configuration that changed
// restarts its poller (polling at once); an unchanged one keeps its
// schedule.
func (m *Manager) Set(origin string, cfg Config) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := cfg.Key()
	if r, ok := m.running[key]; ok {
		if r.cfg.equal(cfg) {
			r.origin = origin
			return
		}
		m.stop(key)
	}
	r := &running{cfg: cfg, origin: origin}
	m.running[key] = r
	if m.ctx != nil {
		m.launch(r)
	}
}

// Remove stops polling the configuration with key; it reports whether one
// was polled. The reconcilers it reported stay until the caller retires
// them (ingest.Service.RetireMissing with its Source and none present).
func (m *Manager) Remove(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.running[key]
	m.stop(key)
	return ok
}

// Replace makes cfgs the configurations of origin: others of that origin
// stop. It returns the keys it stopped.
func (m *Manager) Replace(origin string, cfgs []Config) []string {
	want := map[string]bool{}
	for _, c := range cfgs {
		want[c.Key()] = true
		m.Set(origin, c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var stopped []string
	for key, r := range m.running {
		if r.origin == origin && !want[key] {
			m.stop(key)
			stopped = append(stopped, key)
		}
	}
	return stopped
}

// Result returns the latest poll result of a configuration.
func (m *Manager) Result(key string) (Result, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[key]
	return r, ok
}

// Keys lists the configurations polled.
func (m *Manager) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.running))
	for k := range m.running {
		keys = append(keys, k)
	}
	return keys
}

// stop stops a poller; m.mu is held.
func (m *Manager) stop(key string) {
	r, ok := m.running[key]
	if !ok {
		return
	}
	if r.cancel != nil {
		r.cancel()
	}
	delete(m.running, key)
	delete(m.results, key)
	m.opts.Metrics.forget(key)
	if f, ok := m.opts.Credentials.(interface{ Forget(string) }); ok {
		f.Forget(key)
	}
}

// launch starts r's goroutine; m.mu is held.
func (m *Manager) launch(r *running) {
	ctx, cancel := context.WithCancel(m.ctx)
	r.cancel, r.done = cancel, make(chan struct{})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(r.done)
		m.run(ctx, r.cfg)
	}()
}

// run polls cfg at its interval until ctx ends, backing off after
// failures.
func (m *Manager) run(ctx context.Context, cfg Config) {
	p, err := NewPoller(cfg, m.opts)
	if err != nil {
		m.opts.Logger.Error("cannot start Azure Resource Graph poller", "azureResourceGraph", cfg.Key(), "err", err)
		return
	}
	failures := 0
	for {
		res := p.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		if cur, ok := m.running[cfg.Key()]; ok && cur.cfg.equal(cfg) {
			m.results[cfg.Key()] = res
		}
		m.mu.Unlock()
		if m.opts.OnResult != nil {
			m.opts.OnResult(cfg.Key(), res)
		}
		wait := cfg.Interval
		if res.Err != nil {
			failures++
			wait = max(wait, min(30*time.Second<<min(failures-1, 10), m.opts.MaxBackoff))
		} else {
			failures = 0
		}
		// Up to 10% jitter spreads configurations started together.
		wait += time.Duration(rand.Int64N(int64(wait)/10 + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Notify sets a function called after every poll, in addition to
// Options.OnResult. Call it before Start.
func (m *Manager) Notify(fn func(key string, r Result)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.opts.OnResult
	m.opts.OnResult = func(key string, r Result) {
		if prev != nil {
			prev(key, r)
		}
		fn(key, r)
	}
}

// SyncStored polls the AzureResourceGraphs pushed through the HTTP API: it
// reads them every interval (and at once) until ctx ends, polls the valid
// ones and stops, retiring their reconcilers, those that were removed.
func SyncStored(ctx context.Context, m *Manager, ing *ingest.Service, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		stored, err := ing.StoredAzureResourceGraphs(ctx)
		if err != nil {
			m.opts.Logger.Warn("cannot read the AzureResourceGraphs pushed through the API; retrying", "err", err)
		} else {
			var cfgs []Config
			for i := range stored {
				c, err := ConfigFrom(&stored[i])
				if err != nil {
					m.opts.Logger.Warn("stored AzureResourceGraph is invalid: not polled", "name", stored[i].Name, "err", err)
					continue
				}
				cfgs = append(cfgs, c)
			}
			for _, key := range m.Replace(OriginAPI, cfgs) {
				if _, err := ing.RetireMissing(ctx, Config{Name: key}.Source(), nil); err != nil {
					m.opts.Logger.Warn("cannot retire the reconcilers of a removed AzureResourceGraph", "name", key, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
