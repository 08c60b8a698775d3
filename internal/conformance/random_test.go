package conformance

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The maintained state stays equal to its recomputation from the primary
// tables through a random stream of everything ingest takes: descriptors
// (new versions on new branch commits), reports in order, late reports
// (minutes old, or older than the report before them in one batch),
// registrations, retirements, returns from retirement and moves to
// another endpoint, on endpoints that several targets share.
func testRandomTrafficKeepsMaintainedState(t *testing.T, e *env) {
	rng := rand.New(rand.NewPCG(21, 3))
	workloads := []string{"api", "web"}
	envs := []string{"dev", "prod"}
	regions := []string{"eu", "us"} // api and web share each env/region endpoint
	// Each branch's commits; a commit assigns one version per target, so
	// every assignment comes with a new commit, and hosts report any.
	branchCommits := map[string][]string{}
	commits := 0
	for _, env := range envs {
		for range 3 {
			commits++
			branchCommits[env] = append(branchCommits[env], commit(commits))
		}
	}
	version := map[string]int{}
	assign := func(workload, env, region string) {
		key := workload + "/" + env + "/" + region
		version[key]++
		commits++
		branchCommits[env] = append(branchCommits[env], commit(commits))
		d := descriptor(t, workload, env, region, fmt.Sprintf("1.%d.0", version[key]), commit(commits))
		d.AssignedAt = e.clock.Now().Add(-time.Duration(rng.IntN(3)) * time.Minute)
		e.descriptor(d)
	}
	for _, wl := range workloads {
		for _, env := range envs {
			for _, region := range regions {
				assign(wl, env, region)
			}
		}
	}
	statuses := []model.Status{model.StatusInProgress, model.StatusSuccess, model.StatusFailure}
	type place struct{ env, region string }
	home := map[string]place{}
	live := map[string]bool{}
	hostReport := func(host string, p place, ago time.Duration) model.Report {
		cs := branchCommits[p.env]
		r := report(t, host, p.region, p.env, cs[rng.IntN(len(cs))], statuses[rng.IntN(len(statuses))])
		r.ObservedAt = e.clock.Now().Add(-ago)
		return r
	}
	var late, retired, returned, moved int
	for step := range 240 {
		e.clock.Advance(time.Minute)
		host := fmt.Sprintf("h%d", rng.IntN(10))
		p, known := home[host]
		if !known {
			p = place{envs[rng.IntN(2)], regions[rng.IntN(2)]}
		}
		switch k := rng.IntN(20); {
		case k < 2:
			assign(workloads[rng.IntN(2)], envs[rng.IntN(2)], regions[rng.IntN(2)])
			continue
		case k < 3 && !known:
			e.report(report(t, host, p.region, p.env, "", "")) // registers before reporting
		case k < 4 && live[host]:
			e.retire(host)
			live[host] = false
			retired++
			continue
		case k < 5 && known:
			p = place{envs[rng.IntN(2)], regions[rng.IntN(2)]}
			if p != home[host] {
				moved++
			}
			e.report(hostReport(host, p, 0))
		case k < 8 && known:
			e.report(hostReport(host, p, time.Duration(1+rng.IntN(20))*time.Minute))
			late++
		case k < 10 && known:
			// Two of its reports in one batch, the second older.
			if _, err := e.ing.ApplyReports(ctx, []model.Report{hostReport(host, p, 10*time.Second), hostReport(host, p, 40*time.Second)}); err != nil {
				t.Fatal(err)
			}
			late++
		default:
			e.report(hostReport(host, p, 0))
		}
		if known && !live[host] {
			returned++
		}
		home[host], live[host] = p, true
		if step%20 == 19 {
			e.checkMaintained()
		}
	}
	if late == 0 || retired == 0 || returned == 0 || moved == 0 {
		t.Fatalf("the stream lacks a kind of traffic: %d late, %d retired, %d returned, %d moved", late, retired, returned, moved)
	}
}
