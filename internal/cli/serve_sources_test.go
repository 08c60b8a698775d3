package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

const (
	otlpWriteToken = "collector-write-0123456789"
	otlpReadToken  = "dashboard-read-0123456789"
)

// deploymentLogJSON is one deployment log record in OTLP/JSON, as an
// application or a filelog pipeline hands it to a Collector.
func deploymentLogJSON(host, revision, status, message string) string {
	return fmt.Sprintf(`{"resourceLogs":[{"resource":{"attributes":[
  {"key":"host.name","value":{"stringValue":%q}},
  {"key":"deployment.environment.name","value":{"stringValue":"dev"}}]},
 "scopeLogs":[{"logRecords":[{"timeUnixNano":"%d","body":{"stringValue":%q},"attributes":[
  {"key":"deployment.name","value":{"stringValue":"flux-system/api"}},
  {"key":"deployment.status","value":{"stringValue":%q}},
  {"key":"vcs.ref.head.revision","value":{"stringValue":%q}},
  {"key":"vcs.repository.url.full","value":{"stringValue":%q}},
  {"key":"vcs.ref.head.name","value":{"stringValue":"dev"}},
  {"key":"tidemark.manifests.path","value":{"stringValue":"drone"}},
  {"key":"tidemark.reconciler.type","value":{"stringValue":"flux"}}]}]}]}]}`,
		host, time.Now().UnixNano(), message, status, revision, fleetRepo)
}

// A fleet's OpenTelemetry Collector forwards deployment logs to the hub,
// unchanged exporters and all: otlphttp to the API's port, otlp to
// --otlp-grpc-addr, both over TLS with a write token, behind the batch
// processor. The hub's reports show what arrived, on both store engines.
func TestServeOTLPFromCollector(t *testing.T) {
	testenv.OtelCollector(t) // built (once) before the hub starts
	for _, engine := range testenv.Engines {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			caFile, certFile, keyFile := writeTestPKI(t, dir)
			database := filepath.Join(dir, "tidemark.db")
			if engine == "postgres" {
				database = testenv.SharedPostgres(t).NewDatabase(t)
			}
			t.Setenv("TIDEMARK_WRITE_TOKEN", otlpWriteToken)
			t.Setenv("TIDEMARK_READ_TOKEN", otlpReadToken)
			grpcAddr := freeAddr(t)
			hub := startServe(t, caFile, "--database", database, "--tls-cert", certFile, "--tls-key", keyFile, "--otlp-grpc-addr="+grpcAddr)

			tls := []string{"--server", hub, "--ca-file", caFile}
			for _, v := range []struct{ version, commit string }{{"4.2.0", fleetSHA(1)}, {"4.3.0", fleetSHA(2)}} {
				doc, _ := json.Marshal(fleetDescriptor("dev", "dev", v.version, v.commit))
				if code, out, errOut := runCLI(t, string(doc), append([]string{"apply", "-f", "-", "--token", otlpWriteToken}, tls...)...); code != 0 {
					t.Fatalf("apply: exit %d %s %s", code, out, errOut)
				}
			}

			viaHTTP, viaGRPC := freeAddr(t), freeAddr(t)
			testenv.StartOtelCollector(t, fmt.Sprintf(`
receivers:
  otlp/to-otlphttp:
    protocols:
      http: {endpoint: %q}
  otlp/to-otlp:
    protocols:
      http: {endpoint: %q}
processors:
  batch:
    timeout: 200ms
exporters:
  otlphttp/hub:
    endpoint: %q
    tls: {ca_file: %q}
    headers: {Authorization: "Bearer ${env:HUB_TOKEN}"}
  otlp/hub:
    endpoint: %q
    tls: {ca_file: %q}
    headers: {Authorization: "Bearer ${env:HUB_TOKEN}"}
service:
  telemetry:
    metrics: {level: none}
  pipelines:
    logs/otlphttp: {receivers: [otlp/to-otlphttp], processors: [batch], exporters: [otlphttp/hub]}
    logs/otlp: {receivers: [otlp/to-otlp], processors: [batch], exporters: [otlp/hub]}
`, viaHTTP, viaGRPC, hub, caFile, grpcAddr, caFile), "HUB_TOKEN="+otlpWriteToken)

			send := func(addr, body string) {
				t.Helper()
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
					resp, err := http.Post("http://"+addr+"/v1/logs", "application/json", strings.NewReader(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							return
						}
					}
					if time.Now().After(deadline) {
						t.Fatalf("the Collector's receiver on %s does not take logs: %v", addr, err)
					}
				}
			}
			send(viaHTTP, deploymentLogJSON("aks-dev-1", "dev@sha1:"+fleetSHA(1), "succeeded", "Applied revision: dev@sha1:"+fleetSHA(1)))
			send(viaGRPC, deploymentLogJSON("aks-dev-2", fleetSHA(2), "in_progress", "Reconciliation in progress"))

			hosts := func() map[string]reports.HostStateRow {
				code, out, errOut := runCLI(t, "", append([]string{"get", "hosts", "-o", "json", "--token", otlpReadToken}, tls...)...)
				if code != 0 {
					t.Fatalf("get hosts: exit %d %s", code, errOut)
				}
				var got struct{ Items []reports.HostStateRow }
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("get hosts: %v\n%s", err, out)
				}
				m := map[string]reports.HostStateRow{}
				for _, r := range got.Items {
					m[r.Host] = r
				}
				return m
			}
			waitFor := func(what string, ok func(map[string]reports.HostStateRow) bool) {
				t.Helper()
				var last map[string]reports.HostStateRow
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
					if last = hosts(); ok(last) {
						return
					}
				}
				t.Fatalf("%s: the hub's Host State never showed it: %+v", what, last)
			}
			waitFor("otlphttp and otlp exporters", func(m map[string]reports.HostStateRow) bool {
				a, b := m["aks-dev-1"], m["aks-dev-2"]
				return a.Version == "4.2.0" && a.Status == "success" && a.Reconciler == "flux-system/api" &&
					b.Version == "4.3.0" && b.Status == "in_progress" && b.Message == "Reconciliation in progress"
			})
			// The next state, and a replay of the first through the other path.
			send(viaGRPC, deploymentLogJSON("aks-dev-2", fleetSHA(2), "succeeded", "Applied revision"))
			send(viaGRPC, deploymentLogJSON("aks-dev-1", "dev@sha1:"+fleetSHA(1), "succeeded", "Applied revision: dev@sha1:"+fleetSHA(1)))
			waitFor("the next state", func(m map[string]reports.HostStateRow) bool {
				return m["aks-dev-2"].Status == "success" && m["aks-dev-1"].Version == "4.2.0"
			})
		})
	}
}

// --prometheus-config is read before serve starts: a bad file stops it
// with the field to fix.
func TestServePrometheusConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "prometheus.yaml")
	os.WriteFile(bad, []byte("sources:\n  - name: fleet\n    url: ftp://prom\n    interval: 10ms\n"), 0o600)
	code, _, errOut := runCLI(t, "", "serve", "--addr", freeAddr(t), "--database", filepath.Join(dir, "t.db"), "--prometheus-config", bad)
	if code == 0 || !strings.Contains(errOut, "--prometheus-config") || !strings.Contains(errOut, "sources[0].url") || !strings.Contains(errOut, "sources[0].interval") {
		t.Errorf("bad config: exit %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "", "serve", "--addr", freeAddr(t), "--database", filepath.Join(dir, "t.db"), "--prometheus-config", filepath.Join(dir, "missing.yaml"))
	if code == 0 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing config: exit %d %s", code, errOut)
	}
}
