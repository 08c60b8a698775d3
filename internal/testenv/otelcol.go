package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	otelcolOnce sync.Once
	otelcolBin  string
	otelcolErr  error
)

// OtelCollector returns the path of an OpenTelemetry Collector binary with
// the OTLP receiver, the batch processor and the otlp and otlphttp
// exporters: TIDEMARK_OTELCOL, else what hack/otelcol.sh prints (it builds
// the Collector with the collector builder and caches it in .cache/:
// about a minute, once). When it cannot, the test skips (fails under
// CI=true); with -short it skips.
func OtelCollector(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no OpenTelemetry Collector")
	}
	otelcolOnce.Do(func() {
		if bin := os.Getenv("TIDEMARK_OTELCOL"); bin != "" {
			otelcolBin = bin
			return
		}
		script := filepath.Join(RepoRoot(), "hack", "otelcol.sh")
		cmd := exec.Command("bash", script)
		cmd.Dir = RepoRoot()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			otelcolErr = fmt.Errorf("%s: %v\n%s", script, err, lastLines(stderr.String(), 20))
			return
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		otelcolBin = strings.TrimSpace(lines[len(lines)-1])
	})
	if otelcolErr == nil {
		if _, err := os.Stat(otelcolBin); err != nil {
			otelcolErr = err
		}
	}
	if otelcolErr != nil {
		Unavailable(t, "the OpenTelemetry Collector (hack/otelcol.sh)", otelcolErr)
	}
	return otelcolBin
}

// StartOtelCollector runs the Collector with a configuration (YAML) and
// environment variables (NAME=value, for ${env:NAME} in the configuration)
// until the test ends, logging to a file in the test's temporary
// directory, and returns that file's path.
func StartOtelCollector(t testing.TB, config string, env ...string) string {
	t.Helper()
	bin := OtelCollector(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "otelcol.yaml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "otelcol.log")
	logf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgFile)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		Unavailable(t, "the OpenTelemetry Collector", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logFile)
			t.Logf("Collector log:\n%s", lastLines(string(log), 60))
		}
	})
	return logFile
}
