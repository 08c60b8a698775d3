package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Kube is a real kube-apiserver and etcd (controller-runtime's envtest)
// with the hub.kalypso.io CRDs from config/crd and a minimal Flux
// Kustomization CRD (testdata/crds) installed.
type Kube struct {
	env *envtest.Environment
	// Config talks to the API server as a cluster administrator.
	Config *rest.Config
	// Assets is the folder holding kube-apiserver, etcd and kubectl.
	Assets string
	// Startup is how long starting the control plane and installing the
	// CRDs took.
	Startup time.Duration
}

var (
	kubeOnce   sync.Once
	sharedKube *Kube
	kubeErr    error
)

// StartSharedKube starts, once per test binary, the envtest control plane
// that SharedKube returns. Call it from TestMain to start it before the
// tests (and to measure its start-up); StopSharedKube stops it.
func StartSharedKube() (*Kube, error) {
	kubeOnce.Do(func() { sharedKube, kubeErr = StartKube() })
	return sharedKube, kubeErr
}

// SharedKube returns the test binary's envtest control plane, starting it
// on first use. When it cannot start, the test skips (fails under CI=true);
// with -short it skips.
func SharedKube(t testing.TB) *Kube {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no kube-apiserver and etcd")
	}
	k, err := StartSharedKube()
	if err != nil {
		Unavailable(t, "kube-apiserver and etcd (envtest)", err)
	}
	return k
}

// StopSharedKube stops the control plane SharedKube started, if any.
func StopSharedKube() {
	if sharedKube != nil {
		_ = sharedKube.Stop()
	}
}

// CRDPaths are the CRDs installed in every envtest control plane.
func CRDPaths() []string {
	return []string{
		filepath.Join(RepoRoot(), "config", "crd"),
		Testdata("crds"),
	}
}

// EnvtestAssets returns the folder with the envtest binaries: the
// KUBEBUILDER_ASSETS environment variable, else what hack/envtest-assets.sh
// prints (it builds and caches the binaries on first use: minutes, once).
func EnvtestAssets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	script := filepath.Join(RepoRoot(), "hack", "envtest-assets.sh")
	cmd := exec.Command("bash", script)
	cmd.Dir = RepoRoot()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", script, err, lastLines(stderr.String(), 20))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no folder", script)
	}
	return dir, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartKube starts a new envtest control plane with the CRDs of CRDPaths.
func StartKube() (*Kube, error) {
	assets, err := EnvtestAssets()
	if err != nil {
		return nil, err
	}
	for _, bin := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("envtest binary missing (run hack/envtest-assets.sh): %w", err)
		}
	}
	start := time.Now()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     CRDPaths(),
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("start envtest (assets %s): %w", assets, err)
	}
	return &Kube{env: env, Config: cfg, Assets: assets, Startup: time.Since(start)}, nil
}

// Stop stops the API server and etcd and removes their data.
func (k *Kube) Stop() error { return k.env.Stop() }

// KubeconfigFile writes a kubeconfig for a cluster administrator of this
// control plane (a user of its own, in system:masters) into the test's
// temporary directory and returns its path.
func (k *Kube) KubeconfigFile(t testing.TB) string {
	t.Helper()
	u, err := k.env.AddUser(envtest.User{Name: "tidemark-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("add envtest user: %v", err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Kubectl runs the real kubectl from the assets folder with the kubeconfig
// and returns its combined output.
func (k *Kube) Kubectl(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(k.Assets, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), fmt.Errorf("kubectl %s: exit %d: %s", strings.Join(args, " "), ee.ExitCode(), out)
		}
		return string(out), fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}
