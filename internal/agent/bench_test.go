package agent_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// BenchmarkAgentResources runs the real `tidemark agent` binary against a
// cluster (envtest) holding 1,000 Kustomizations and a hub over HTTP, and
// reports what the agent process uses: the time until the hub holds every
// reconciler, its resident memory then (and its peak), the CPU it spent
// to get there, its CPU while nothing changes, and the time to deliver
// 100 status changes.
//
//	CI=true go test -run '^$' -bench BenchmarkAgentResources -benchtime 1x ./internal/agent/
func BenchmarkAgentResources(b *testing.B) {
	const objects = 1000
	kube := testenv.SharedKube(b)
	bin := filepath.Join(b.TempDir(), "tidemark")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/tidemark")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	fast := rest.CopyConfig(kube.Config)
	fast.QPS, fast.Burst = 1000, 2000 // setting up 1,000 objects
	dyn, err := dynamic.NewForConfig(fast)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		c := &cluster{dyn: dyn, ns: newNamespace(b, kube.Config)}
		h := newHub(b, testenv.NewStore(b, "sqlite"))
		c.create(b, gvrGitRepository, "GitRepository", "fleet", map[string]any{"url": repo, "ref": map[string]any{"branch": "main"}})
		for k := range objects {
			name := fmt.Sprintf("app-%04d", k)
			c.create(b, gvrKustomization, "Kustomization", name, map[string]any{"path": "./apps/" + name, "sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"}})
			c.setStatus(b, gvrKustomization, name, fluxStatus("True", "main@sha1:"+sha("one"), "Applied", time.Now()))
		}
		reported := func(commit string) int {
			var n int
			_ = h.st.Read().QueryRow(context.Background(), `SELECT count(*) FROM reconcilers r JOIN hosts h ON h.id = r.host_id
				WHERE h.name = 'bench' AND r.commit_sha = $1`, commit).Scan(&n)
			return n
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		b.ResetTimer()
		start := time.Now()
		cmd := exec.Command(bin, "agent", "--kubeconfig", kube.KubeconfigFile(b), "--server", "http://"+h.addr, "--host-name", "bench",
			"--namespace", c.ns, "--addr", addr, "--log-level", "warn")
		cmd.Env = append(os.Environ(), "TIDEMARK_TOKEN="+writeToken)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		pid := cmd.Process.Pid
		waitFor(b, 5*time.Minute, func() bool { return reported(sha("one")) == objects })
		synced := time.Since(start)
		rss, peak := memory(b, pid)
		cpuSync := cpuTime(b, pid)

		time.Sleep(20 * time.Second)
		idle := (cpuTime(b, pid) - cpuSync).Seconds() / 20

		before := cpuTime(b, pid)
		churn := time.Now()
		for k := 0; k < 100; k++ {
			c.setStatus(b, gvrKustomization, fmt.Sprintf("app-%04d", k), fluxStatus("True", "main@sha1:"+sha("two"), "Applied", time.Now()))
		}
		waitFor(b, time.Minute, func() bool { return reported(sha("two")) == 100 })
		churnTook, churnCPU := time.Since(churn), cpuTime(b, pid)-before
		b.StopTimer()

		b.ReportMetric(synced.Seconds(), "sync_s")
		b.ReportMetric(float64(rss)/(1<<20), "rss_MiB")
		b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MiB")
		b.ReportMetric(cpuSync.Seconds(), "sync_cpu_s")
		b.ReportMetric(idle*100, "idle_cpu_%")
		b.ReportMetric(churnTook.Seconds(), "100_changes_s")
		b.ReportMetric(churnCPU.Seconds(), "100_changes_cpu_s")
	}
}

func waitFor(b *testing.B, timeout time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("not done after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memory reads a process's resident and peak resident memory in bytes.
func memory(b *testing.B, pid int) (rss, peak int64) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// cpuTime reads a process's user and system CPU time.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (in parentheses): utime and stime are
	// the 14th and 15th fields of the line.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ
	return time.Duration(utime+stime) * time.Second / ticks
}
