package testenv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Prometheus is a real Prometheus server (Debian's prometheus package) on
// loopback, with its storage in a temporary directory, scraping the
// targets it was started with.
type Prometheus struct {
	// URL is the base URL of its HTTP API.
	URL string
}

// StartPrometheus starts Prometheus scraping each target (host:port,
// /metrics) every interval, and stops it when the test ends. The binary
// is TIDEMARK_PROMETHEUS, else prometheus on PATH; when it is missing the
// test skips (fails under CI=true); with -short it skips. The first scrape
// lands about one interval after the start: poll for the data.
func StartPrometheus(t testing.TB, interval time.Duration, targets ...string) *Prometheus {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no Prometheus")
	}
	bin := os.Getenv("TIDEMARK_PROMETHEUS")
	if bin == "" {
		p, err := exec.LookPath("prometheus")
		if err != nil {
			Unavailable(t, "Prometheus (apt-get install prometheus)", err)
		}
		bin = p
	}
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
  evaluation_interval: %s
scrape_configs:
  - job_name: flux
    static_configs:
      - targets: [%s]
`, interval, interval, interval, strings.Join(quoted, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig stops the server if the test binary dies without cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		Unavailable(t, "Prometheus", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
	})
	p := &Prometheus{URL: "http://" + addr}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logf.Name())
			Unavailable(t, "Prometheus", fmt.Errorf("exited at start:\n%s", log))
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			Unavailable(t, "Prometheus", fmt.Errorf("not ready on %s in 30s:\n%s", addr, log))
		}
	}
}
