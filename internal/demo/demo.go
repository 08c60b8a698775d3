// Package demo generates a realistic sample fleet and plays its last 30
// days of history through ingest, so that a newcomer sees real data at once:
// three teams, four environments, ten workloads on fifty-odd hosts, with
// rollouts in flight, failures, drift, a stale host, a cluster that has
// just joined (registered, not reported yet), a commit nobody assigned and
// a target no host reconciles.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// Stats counts what Load stored.
type Stats struct {
	Skipped      bool // the store already held data
	Workspaces   int
	Environments int
	Workloads    int
	Hosts        int
	Descriptors  int
	Reports      int
}

// Environments in promotion order.
var Environments = []string{"dev", "qa", "staging", "prod"}

type workload struct{ workspace, application, name, major string }

var workloads = []workload{
	{"payments", "checkout", "checkout-api", "2"},
	{"payments", "checkout", "payment-gateway", "1"},
	{"payments", "risk", "fraud-scorer", "0"},
	{"catalog", "storefront", "storefront-web", "3"},
	{"catalog", "storefront", "search-api", "1"},
	{"catalog", "storefront", "recommendations", "0"},
	{"catalog", "inventory", "inventory-svc", "4"},
	{"platform", "identity", "auth-service", "5"},
	{"platform", "identity", "user-profile", "1"},
	{"platform", "observability", "otel-gateway", "0"},
}

// regions per environment, and clusters per region.
var regions = map[string][]string{
	"dev":     {"eastus"},
	"qa":      {"eastus"},
	"staging": {"eastus", "westeurope"},
	"prod":    {"eastus", "westeurope", "southeastasia"},
}

var clustersPerRegion = map[string]int{"dev": 3, "qa": 3, "staging": 4, "prod": 12}

// Named hosts with a story.
const (
	staleHost   = "aks-prod-southeastasia-11" // stopped reporting three days ago
	driftedHost = "aks-prod-westeurope-07"    // stuck on an older checkout-api
	failingLike = "aks-prod-eastus-0"         // prefix: hosts 01-02 fail payment-gateway
	vmHost      = "vm-batch-02"               // an agent on a VM, with a hotfix nobody assigned
	joiningHost = "aks-prod-southeastasia-13" // joined the fleet 40 minutes ago: registered, no report yet
)

type event struct {
	at time.Time
	d  *model.Descriptor
	r  *model.Report
}

// Load generates the fleet as of now and ingests it into st, unless st
// already holds data.
func Load(ctx context.Context, st *store.Store, now time.Time) (Stats, error) {
	var n int
	if err := st.Read().QueryRow(ctx, `SELECT count(*) FROM workspaces`).Scan(&n); err != nil {
		return Stats{}, err
	}
	if n > 0 {
		return Stats{Skipped: true}, nil
	}
	events, stats := generate(now)
	var mu sync.Mutex
	var clock time.Time
	ing := ingest.New(st, ingest.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }))
	for _, e := range events {
		mu.Lock()
		clock = e.at
		mu.Unlock()
		var err error
		if e.d != nil {
			_, err = ing.ApplyDescriptor(ctx, *e.d)
		} else {
			_, err = ing.ApplyReport(ctx, *e.r)
		}
		if err != nil {
			return stats, err
		}
	}
	return stats, nil
}

// generate builds the fleet's history, oldest event first.
func generate(now time.Time) ([]event, Stats) {
	rng := rand.New(rand.NewPCG(2026, 11))
	start := now.Add(-30 * 24 * time.Hour).Truncate(time.Hour)
	sha := func() string { return fmt.Sprintf("%016x%016x%08x", rng.Uint64(), rng.Uint64(), rng.Uint32()) }
	jitter := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max))) }

	type host struct {
		name, env, region string
		typ               string
	}
	var hosts []host
	for _, env := range Environments {
		for _, region := range regions[env] {
			for i := 1; i <= clustersPerRegion[env]; i++ {
				hosts = append(hosts, host{fmt.Sprintf("aks-%s-%s-%02d", env, region, i), env, region, model.HostCluster})
			}
		}
	}
	hosts = append(hosts, host{"vm-batch-01", "prod", "eastus", model.HostVM}, host{vmHost, "prod", "eastus", model.HostVM})

	var events []event
	stats := Stats{Workspaces: 3, Environments: len(Environments), Workloads: len(workloads), Hosts: len(hosts) + 1} // and the joining one
	lastReport := func(h host) time.Time {
		if h.name == staleHost {
			return now.Add(-72 * time.Hour)
		}
		return now
	}

	for wi, w := range workloads {
		repo := "https://github.com/" + w.workspace + "/" + w.name + "-gitops"
		ep := func(env, region string) model.Endpoint {
			e, _ := model.NewEndpoint("git", repo, env, region)
			return e
		}
		// Hosts of the batch VMs run only the payments workloads.
		runs := func(h host) bool { return h.typ == model.HostCluster || w.workspace == "payments" }
		// Five or six versions, a build every five days or so.
		nVersions := 5 + wi%2
		minor := 8 + wi%3
		// Build and promotion times first, so that each environment knows
		// which version is the last to reach it.
		lags := map[string]time.Duration{"dev": time.Hour, "qa": 26 * time.Hour, "staging": 3 * 24 * time.Hour, "prod": 6 * 24 * time.Hour}
		builds := make([]time.Time, nVersions)
		promoted := make([]map[string]time.Time, nVersions)
		lastIn := map[string]int{}
		for v := range nVersions {
			builds[v] = start.Add(time.Duration(v)*5*24*time.Hour + jitter(24*time.Hour))
			promoted[v] = map[string]time.Time{}
			for _, env := range Environments {
				if at := builds[v].Add(lags[env] + jitter(3*time.Hour)); !at.After(now.Add(-20 * time.Minute)) {
					promoted[v][env] = at
					lastIn[env] = v
				}
			}
		}
		for v := range nVersions {
			version := fmt.Sprintf("%s.%d.%d", w.major, minor+v, rng.IntN(4))
			build := builds[v]
			buildCommit := sha()
			for _, env := range Environments {
				at, ok := promoted[v][env]
				if !ok {
					continue // not promoted this far yet
				}
				latestVersion := v == lastIn[env]
				// Prod rolls out as a canary in eastus first, then the rest in a
				// second commit: the canary commit is also the head that the
				// other regions' reconcilers report.
				waves := [][]string{regions[env]}
				if env == "prod" {
					waves = [][]string{{"eastus"}, regions[env][1:]}
				}
				for wave, regs := range waves {
					commit := sha()
					waveAt := at.Add(time.Duration(wave) * 20 * time.Hour)
					if waveAt.After(now.Add(-10 * time.Minute)) {
						continue
					}
					for _, region := range regs {
						d := &model.Descriptor{
							Workspace: w.workspace, Application: w.application, Workload: w.name,
							Source:      model.WorkloadSource{Repo: "https://github.com/" + w.workspace + "/" + w.name, Branch: "main"},
							Environment: env, Target: region, Manifests: ep(env, region),
							Version: version, Build: fmt.Sprintf("build-%d", 100+wi*10+v), BuildCommit: buildCommit, BuildTime: build,
							Commit: commit, AssignedAt: waveAt,
						}
						events = append(events, event{at: waveAt, d: d})
						stats.Descriptors++
					}
					// Every reconciler on the branch sees the new head.
					for _, h := range hosts {
						if h.env != env || !runs(h) || waveAt.After(lastReport(h)) {
							continue
						}
						if h.name == driftedHost && w.name == "checkout-api" && latestVersion {
							continue // its reconciler is stuck on the previous commit
						}
						r := model.Report{
							Host: h.name, HostType: h.typ, Reconciler: w.name, ReconcilerType: "flux",
							Endpoint: ep(env, h.region), Commit: commit,
						}
						if h.typ == model.HostVM {
							r.ReconcilerType = "agent"
						}
						began := waveAt.Add(time.Minute + jitter(4*time.Minute))
						r1 := r
						r1.Status, r1.Message, r1.ObservedAt = model.StatusInProgress, "Reconciliation in progress", began
						events = append(events, event{at: began, r: &r1})
						stats.Reports++
						done := began.Add(2*time.Minute + jitter(10*time.Minute))
						if done.After(now) || (w.name == "search-api" && env == "staging" && latestVersion && rng.IntN(2) == 0) {
							continue // still in progress
						}
						r2 := r
						r2.Status, r2.Message, r2.ObservedAt = model.StatusSuccess, "Applied revision: "+env+"@sha1:"+commit, done
						if w.name == "payment-gateway" && env == "prod" && latestVersion && h.region == "eastus" &&
							(h.name == failingLike+"1" || h.name == failingLike+"2") {
							r2.Status, r2.Message = model.StatusFailure, "health check failed after 5m0s: Deployment/payments/payment-gateway: 0/3 replicas available (ImagePullBackOff)"
						}
						events = append(events, event{at: done, r: &r2})
						stats.Reports++
					}
				}
			}
		}
		// A cluster that joined prod: its reconcilers are registered and
		// have not synced yet.
		{
			at := now.Add(-40 * time.Minute)
			r := &model.Report{Host: joiningHost, Reconciler: w.name, ReconcilerType: "flux", Endpoint: ep("prod", "southeastasia")}
			events = append(events, event{at: at, r: r})
			stats.Reports++
		}
		// A target that no host reconciles yet.
		if w.name == "recommendations" {
			d := &model.Descriptor{Workspace: w.workspace, Application: w.application, Workload: w.name,
				Environment: "prod", Target: "centralus", Manifests: ep("prod", "centralus"),
				Version: fmt.Sprintf("%s.%d.0", w.major, minor), Commit: sha()}
			events = append(events, event{at: start.Add(10 * 24 * time.Hour), d: d})
			stats.Descriptors++
		}
		// A hotfix applied by hand on a VM, from a path no descriptor names:
		// a commit the hub cannot place.
		if w.name == "fraud-scorer" {
			at := now.Add(-5 * time.Hour)
			r := &model.Report{Host: vmHost, HostType: model.HostVM, Reconciler: w.name + "-hotfix", ReconcilerType: "agent",
				Endpoint: ep("prod", "hotfix"), Commit: sha(), Status: model.StatusSuccess,
				Message: "applied local hotfix", ObservedAt: at}
			events = append(events, event{at: at, r: r})
			stats.Reports++
		}
	}
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
	// Reconcilers report on an interval even when nothing changes: end with
	// each one's latest report repeated in the last ten minutes, except the
	// stale host's.
	latest := map[string]*model.Report{}
	var order []string
	for _, e := range events {
		if e.r == nil {
			continue
		}
		k := e.r.Host + "/" + e.r.Reconciler
		if latest[k] == nil {
			order = append(order, k)
		}
		latest[k] = e.r
	}
	for _, k := range order {
		if r := latest[k]; r.Host != staleHost && r.Host != joiningHost {
			events = append(events, event{at: now.Add(-jitter(10 * time.Minute)), r: r})
		}
	}
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
	return events, stats
}
