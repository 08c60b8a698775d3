package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestPKI writes a CA and a server certificate for 127.0.0.1 and
// localhost, signed by it: ca.pem, tls.crt, tls.key.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tidemark test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "tidemark"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("tls.crt", "CERTIFICATE", der), write("tls.key", "EC PRIVATE KEY", keyDER)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serve runs `tidemark serve` with args until the test ends; it returns
// once /healthz answers over TLS.
func startServe(t *testing.T, caFile string, args ...string) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		exited <- run(ctx, append([]string{"serve", "--addr", addr, "--database", filepath.Join(t.TempDir(), "tidemark.db"), "--log-level", "warn"}, args...),
			strings.NewReader(""), &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	pem, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := hc.Get("https://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return "https://" + addr
		}
		select {
		case code := <-exited:
			exited <- code
			t.Fatalf("serve exited %d before answering", code)
		default:
		}
	}
	t.Fatal("serve did not answer on " + addr)
	return ""
}

// The whole path: serve with TLS and tokens, apply and get with the CA
// file and tokens of each scope.
func TestServeTLSAndTokensEndToEnd(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir)
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("# test tokens\nreader-0123456789abcdef read dashboards\n"), 0o600)
	t.Setenv("TIDEMARK_WRITE_TOKEN", "writer-0123456789abcdef")
	url := startServe(t, caFile, "--tls-cert", certFile, "--tls-key", keyFile, "--tokens-file", tokens)

	descriptor := `apiVersion: hub.kalypso.io/v1alpha1
kind: DeploymentDescriptor
metadata: {name: api-dev}
spec:
  workload: {name: api, application: {name: shop, workspace: {name: acme}}}
  deploymentTarget: {name: drone, environment: dev, manifests: {repo: "https://github.com/acme/gitops", branch: dev, path: drone}}
  workloadVersion: {version: 4.2.0}
  gitOpsCommitId: "` + fleetSHA(7) + `"
`
	overTLS := []string{"--server", url, "--ca-file", caFile}
	code, out, errOut := runCLI(t, descriptor, append([]string{"apply", "-f", "-", "--token", "writer-0123456789abcdef"}, overTLS...)...)
	if code != 0 || !strings.Contains(out, "configured") {
		t.Fatalf("apply over TLS: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", append([]string{"get", "targets", "--token", "reader-0123456789abcdef"}, overTLS...)...)
	if code != 0 || tableRow(out, "dev", "acme", "shop", "api", "drone", "4.2.0") == nil {
		t.Fatalf("get over TLS: exit %d %s %s", code, out, errOut)
	}

	// The token from the environment, the CA from the environment.
	t.Setenv("TIDEMARK_TOKEN", "reader-0123456789abcdef")
	t.Setenv("TIDEMARK_CA_FILE", caFile)
	if code, _, errOut := runCLI(t, "", "get", "hosts", "--server", url); code != 0 {
		t.Errorf("TIDEMARK_TOKEN and TIDEMARK_CA_FILE: exit %d %s", code, errOut)
	}
	t.Setenv("TIDEMARK_TOKEN", "")
	t.Setenv("TIDEMARK_CA_FILE", "")

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no CA", []string{"get", "hosts", "--server", url, "--token", "reader-0123456789abcdef"}, "certificate"},
		{"no token", append([]string{"get", "hosts"}, overTLS...), "Unauthenticated"},
		{"write token on a report", append([]string{"get", "hosts", "--token", "writer-0123456789abcdef"}, overTLS...), "Forbidden"},
		{"read token on apply", append([]string{"apply", "-f", "-", "--token", "reader-0123456789abcdef"}, overTLS...), "Forbidden"},
		{"wait with a refused token", append([]string{"wait", "--target", "drone", "--version", "4.2.0", "--token", "nope"}, overTLS...), "Unauthenticated"},
	} {
		code, _, errOut := runCLI(t, descriptor, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want an error with %q: %s", c.name, code, c.want, errOut)
		}
	}
	code, _, errOut = runCLI(t, "", "get", "hosts", "--server", url, "--insecure-skip-tls-verify", "--token", "reader-0123456789abcdef")
	if code != 0 {
		t.Errorf("--insecure-skip-tls-verify: exit %d %s", code, errOut)
	}

	// TLS 1.1 is refused.
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

func TestServeSecurityFlags(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	t.Setenv("TIDEMARK_READ_TOKEN", "")
	t.Setenv("TIDEMARK_WRITE_TOKEN", "")

	// Nothing configured: open, with a warning.
	var s serveSecurity
	auth, err := s.authenticator(log)
	if err != nil || auth != nil || !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "the API is open") {
		t.Errorf("no tokens: %v %v\n%s", auth, err, logs.String())
	}

	// A read token from the environment.
	logs.Reset()
	t.Setenv("TIDEMARK_READ_TOKEN", "env-read-token-0123456789")
	auth, err = s.authenticator(log)
	if err != nil || auth == nil {
		t.Fatalf("TIDEMARK_READ_TOKEN: %v %v", auth, err)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer env-read-token-0123456789")
	if subject, err := auth.Authenticate(req, "read"); err != nil || subject != "read-token" {
		t.Errorf("read token: %q %v", subject, err)
	}
	if strings.Contains(logs.String(), "env-read-token") {
		t.Errorf("the token is logged:\n%s", logs.String())
	}

	for _, c := range []struct {
		s    serveSecurity
		want string
	}{
		{serveSecurity{writeToken: "short"}, "--write-token (or TIDEMARK_WRITE_TOKEN): token \"write-token\": shorter than 16"},
		{serveSecurity{reviewRead: []string{"ns/sa"}}, "need --token-review"},
		{serveSecurity{tokenReview: true}, "name the service accounts"},
		{serveSecurity{tokensFile: filepath.Join(t.TempDir(), "missing")}, "--tokens-file"},
	} {
		if _, err := c.s.authenticator(log); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.s, err, c.want)
		}
	}
	if _, err := (&serveSecurity{tlsCert: "a.crt"}).tls(); err == nil {
		t.Error("--tls-cert without --tls-key was accepted")
	}

	// --token-review with a kubeconfig.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	auth, err = (&serveSecurity{tokenReview: true, kubeconfig: kubeconfig, reviewRead: []string{"monitoring/grafana"}}).authenticator(log)
	if err != nil || auth == nil {
		t.Errorf("--token-review --kubeconfig: %v %v", auth, err)
	}
}
