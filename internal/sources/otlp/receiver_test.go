package otlp_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/sources/otlp"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	writeToken = "otlp-writer-0123456789"
	readToken  = "otlp-reader-0123456789"
	gitops     = "https://github.com/acme/gitops"
)

func sha(n int) string { return fmt.Sprintf("%040x", uint64(n)*0x9e3779b97f4a7c15) }

// hub is the API with the OTLP receiver on its port, and the receiver's
// gRPC server, over a store.
type hub struct {
	t       testing.TB
	st      *store.Store
	ing     *ingest.Service
	reg     *prometheus.Registry
	url     string
	grpc    string
	reports *reports.Service
}

func newHub(t testing.TB, st *store.Store) *hub {
	t.Helper()
	// A replay must change nothing however slow the machine: no heartbeat
	// refresh of the reconcilers' last-report time within a test.
	h := &hub{t: t, st: st, ing: ingest.New(st, ingest.WithHeartbeat(time.Hour)), reg: prometheus.NewRegistry(), reports: reports.New(st)}
	recv, err := otlp.New(h.ing, otlp.Options{Registerer: h.reg, Environments: h.reports})
	if err != nil {
		t.Fatal(err)
	}
	var tokens api.StaticTokens
	if err := tokens.Add(writeToken, "collector", api.ScopeWrite); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Add(readToken, "dashboards", api.ScopeRead); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(st, h.ing, api.Options{Auth: &tokens,
		WriteRoutes: map[string]http.Handler{"POST " + otlp.HTTPPath: recv}}).Handler())
	t.Cleanup(srv.Close)
	h.url = srv.URL

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := recv.NewGRPCServer(otlp.GRPCOptions{Authorize: func(_ context.Context, authorization string) error {
		switch authorization {
		case "Bearer " + writeToken:
			return nil
		case "Bearer " + readToken:
			return otlp.ErrForbidden
		}
		return otlp.ErrUnauthenticated
	}})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	h.grpc = lis.Addr().String()

	// The target the reports land on: acme/shop/api in prod, manifests at
	// gitops main/apps, version 1.0.0 at commit 1 and 1.1.0 at commit 2.
	ep, _ := model.NewEndpoint("git", gitops, "main", "apps")
	for i, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := h.ing.ApplyDescriptor(context.Background(), model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
			Environment: "prod", Target: "east", Manifests: ep, Version: v, Commit: sha(i + 1),
			AssignedAt: time.Date(2026, 5, 1, i, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// post sends an OTLP/HTTP request and returns the status, the
// Content-Type and the body.
func (h *hub) post(body []byte, contentType, encoding, token string) (int, string, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+otlp.HTTPPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), out
}

// hostState is the Host State report of one host.
func (h *hub) hostState(host string) []reports.HostStateRow {
	h.t.Helper()
	rows, _, err := h.reports.HostState(context.Background(), reports.Filter{Host: host}, reports.Page{})
	if err != nil {
		h.t.Fatal(err)
	}
	return rows
}

// metric is the value of a counter of the registry with the labels given
// (name=value pairs), summed over the others.
func (h *hub) metric(name string, labels ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// deployment is the attributes of one deployment record.
type deployment struct {
	host, name, status, revision, path, env, body string
	at                                            time.Time
}

// logsOf builds an export: one resource per host (host.name), with the
// deployment attributes on each record.
func logsOf(ds ...deployment) plog.Logs {
	logs := plog.NewLogs()
	byHost := map[string]plog.LogRecordSlice{}
	for _, d := range ds {
		lrs, ok := byHost[d.host]
		if !ok {
			rl := logs.ResourceLogs().AppendEmpty()
			if d.host != "" {
				rl.Resource().Attributes().PutStr(otlp.AttrHostName, d.host)
			}
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName("tidemark-test")
			lrs = sl.LogRecords()
			byHost[d.host] = lrs
		}
		lr := lrs.AppendEmpty()
		a := lr.Attributes()
		for k, v := range map[string]string{otlp.AttrDeploymentName: d.name, otlp.AttrDeploymentStatus: d.status,
			otlp.AttrRevision: d.revision, otlp.AttrRepositoryURL: gitops, otlp.AttrBranch: "main",
			otlp.AttrManifestsPath: d.path, otlp.AttrReconcilerType: "flux", otlp.AttrEnvironment: d.env} {
			if v != "" {
				a.PutStr(k, v)
			}
		}
		lr.Body().SetStr(d.body)
		if !d.at.IsZero() {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(d.at))
		}
	}
	return logs
}

func protobufOf(t testing.TB, logs plog.Logs) []byte {
	t.Helper()
	b, err := plogotlp.NewExportRequestFromLogs(logs).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// jsonExport is an export as an OpenTelemetry SDK or Collector writes it
// in OTLP/JSON: host on the resource, the rest on the record.
func jsonExport(host, revision, status, body string) []byte {
	return []byte(`{"resourceLogs":[{
  "resource":{"attributes":[{"key":"host.name","value":{"stringValue":"` + host + `"}},{"key":"k8s.cluster.name","value":{"stringValue":"not-the-host"}}]},
  "scopeLogs":[{"scope":{"name":"flux-notifier"},"logRecords":[{
    "timeUnixNano":"1777636800000000000",
    "severityText":"INFO",
    "body":{"stringValue":"` + body + `"},
    "attributes":[
      {"key":"deployment.name","value":{"stringValue":"flux-system/apps"}},
      {"key":"deployment.status","value":{"stringValue":"` + status + `"}},
      {"key":"deployment.environment.name","value":{"stringValue":"prod"}},
      {"key":"vcs.ref.head.revision","value":{"stringValue":"` + revision + `"}},
      {"key":"vcs.repository.url.full","value":{"stringValue":"https://github.com/acme/gitops.git"}},
      {"key":"vcs.ref.head.name","value":{"stringValue":"main"}},
      {"key":"tidemark.manifests.path","value":{"stringValue":"./apps"}},
      {"key":"tidemark.reconciler.type","value":{"stringValue":"flux"}}]}]}]}]}`)
}

func partialSuccessJSON(t *testing.T, body []byte) (rejected int64, msg string) {
	t.Helper()
	resp := plogotlp.NewExportResponse()
	if err := resp.UnmarshalJSON(body); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	return resp.PartialSuccess().RejectedLogRecords(), resp.PartialSuccess().ErrorMessage()
}

func TestOTLPHTTP(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		h := newHub(t, st)

		// OTLP/JSON, as the Collector's otlphttp exporter with encoding: json sends it.
		code, ctype, body := h.post(jsonExport("aks-east-1", "main@sha1:"+sha(1), "succeeded", "Applied revision"), "application/json", "", writeToken)
		if code != http.StatusOK || ctype != "application/json" {
			t.Fatalf("JSON export: %d %s %s", code, ctype, body)
		}
		if n, msg := partialSuccessJSON(t, body); n != 0 || msg != "" {
			t.Errorf("JSON export: partial success %d %q", n, msg)
		}
		rows := h.hostState("aks-east-1")
		if len(rows) != 1 || rows[0].Version != "1.0.0" || rows[0].Status != "success" || rows[0].Message != "Applied revision" ||
			rows[0].Reconciler != "flux-system/apps" || rows[0].Environment != "prod" || rows[0].Target != "east" {
			t.Fatalf("host state after the JSON export: %+v", rows)
		}
		if !rows[0].StatusSince.Equal(time.Unix(0, 1777636800000000000)) {
			t.Errorf("status since %v: want the record's timestamp", rows[0].StatusSince)
		}
		if got := h.metric("tidemark_source_reports_applied_total"); got != 1 {
			t.Errorf("applied %v, want 1", got)
		}

		// A replay changes nothing.
		code, _, body = h.post(jsonExport("aks-east-1", "main@sha1:"+sha(1), "succeeded", "Applied revision"), "application/json", "", writeToken)
		if code != http.StatusOK {
			t.Fatalf("replay: %d %s", code, body)
		}
		if got := h.metric("tidemark_source_reports_applied_total"); got != 1 {
			t.Errorf("a replay applied something: %v", got)
		}
		if got := h.metric("tidemark_source_records_received_total"); got != 2 {
			t.Errorf("received %v, want 2", got)
		}

		// Protobuf, gzip: the next commit, in progress then failed.
		t0 := time.Date(2026, 5, 2, 9, 0, 0, 0, time.UTC)
		logs := logsOf(
			deployment{host: "aks-east-1", name: "flux-system/apps", status: "failed", revision: sha(2), path: "apps", body: "health check failed", at: t0.Add(time.Minute)},
			deployment{host: "aks-east-1", name: "flux-system/apps", status: "in_progress", revision: sha(2), path: "apps", body: "reconciling", at: t0},
		)
		code, ctype, body = h.post(gzipped(protobufOf(t, logs)), "application/x-protobuf", "gzip", writeToken)
		if code != http.StatusOK || ctype != "application/x-protobuf" {
			t.Fatalf("protobuf gzip export: %d %s %q", code, ctype, body)
		}
		resp := plogotlp.NewExportResponse()
		if err := resp.UnmarshalProto(body); err != nil || resp.PartialSuccess().RejectedLogRecords() != 0 {
			t.Fatalf("protobuf response: %v %d", err, resp.PartialSuccess().RejectedLogRecords())
		}
		rows = h.hostState("aks-east-1")
		if len(rows) != 1 || rows[0].Version != "1.1.0" || rows[0].Status != "failure" || rows[0].Message != "health check failed" {
			t.Fatalf("host state after the protobuf export (the records apply in time order): %+v", rows)
		}

		// Bad records are rejected alone, each with its reason.
		logs = logsOf(
			deployment{host: "aks-west-1", name: "flux-system/apps", status: "succeeded", revision: sha(1), path: "apps"},
			deployment{host: "", name: "flux-system/apps", status: "succeeded", revision: sha(1), path: "apps"},
			deployment{host: "aks-west-2", name: "", status: "succeeded", revision: sha(1), path: "apps"},
			deployment{host: "aks-west-3", name: "flux-system/apps", status: "done", revision: sha(1), path: "apps"},
			deployment{host: "aks-west-4", name: "flux-system/apps", status: "succeeded", revision: "main@sha1:xyz", path: "apps"},
			deployment{host: "aks-west-5", name: "flux-system/apps", status: "succeeded", revision: sha(1), path: "apps", env: "stage"},
		)
		code, _, body = h.post(protobufOf(t, logs), "application/json", "", writeToken)
		if code != http.StatusBadRequest || !strings.Contains(string(body), "not an OTLP ExportLogsServiceRequest") {
			t.Errorf("protobuf sent as JSON: %d %s", code, body)
		}
		js, _ := plogotlp.NewExportRequestFromLogs(logs).MarshalJSON()
		code, _, body = h.post(js, "application/json", "", writeToken)
		if code != http.StatusOK {
			t.Fatalf("bad records: %d %s", code, body)
		}
		n, msg := partialSuccessJSON(t, body)
		if n != 4 {
			t.Errorf("rejected %d, want 4: %s", n, msg)
		}
		for _, want := range []string{"1 rejected (missing_host)", "1 rejected (missing_deployment_name)", "1 rejected (invalid_status)",
			"1 rejected (invalid_revision)", "1 stored with a warning (environment_mismatch)", `deployment.environment.name "stage"`, "in prod"} {
			if !strings.Contains(msg, want) {
				t.Errorf("partial success message lacks %q: %s", want, msg)
			}
		}
		for _, host := range []string{"aks-west-1", "aks-west-5"} {
			if rows := h.hostState(host); len(rows) != 1 || rows[0].Version != "1.0.0" {
				t.Errorf("%s: %+v", host, rows)
			}
		}
		if got := h.metric("tidemark_source_records_rejected_total", "reason", "invalid_status"); got != 1 {
			t.Errorf("rejected invalid_status %v", got)
		}
		if got := h.metric("tidemark_source_report_warnings_total", "reason", "environment_mismatch"); got != 1 {
			t.Errorf("warnings %v", got)
		}

		// Credentials: the API's write scope.
		for _, c := range []struct {
			token string
			want  int
		}{{"", http.StatusUnauthorized}, {"wrong-token-0123456789", http.StatusUnauthorized}, {readToken, http.StatusForbidden}} {
			if code, _, body := h.post(protobufOf(t, logs), "application/x-protobuf", "", c.token); code != c.want {
				t.Errorf("token %q: %d %s, want %d", c.token, code, body, c.want)
			}
		}

		// What OTLP/HTTP clients get wrong.
		for _, c := range []struct {
			name, ctype, encoding string
			body                  []byte
			want                  int
			wantMsg               string
		}{
			{"text", "text/plain", "", []byte("hello"), http.StatusUnsupportedMediaType, "application/x-protobuf"},
			{"zstd", "application/x-protobuf", "zstd", protobufOf(t, logs), http.StatusUnsupportedMediaType, "gzip, deflate"},
			{"bad gzip", "application/x-protobuf", "gzip", []byte("not gzip"), http.StatusBadRequest, "read the request body"},
			{"bad JSON", "application/json", "", []byte(`{"resourceLogs": 7}`), http.StatusBadRequest, "ExportLogsServiceRequest"},
		} {
			code, ctype, body := h.post(c.body, c.ctype, c.encoding, writeToken)
			if code != c.want {
				t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
				continue
			}
			// The status comes in the request's encoding.
			var st spb.Status
			decode := protojson.Unmarshal
			if strings.HasPrefix(c.ctype, "application/x-protobuf") {
				decode = proto.Unmarshal
			}
			if !strings.HasPrefix(c.ctype, ctype) && ctype != "application/json" || decode(body, &st) != nil || !strings.Contains(st.GetMessage(), c.wantMsg) {
				t.Errorf("%s: the error is not a google.rpc.Status naming %q: %s %s", c.name, c.wantMsg, ctype, body)
			}
		}
	})
}

// A Collector's batch of 10,000 records: new reconcilers across 1,000
// hosts, then the same batch again (nothing changes), then every host a
// commit further (the batch path).
func TestOTLPLargeBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		h := newHub(t, st)
		batch := func(commit int) []byte {
			ds := make([]deployment, 10000)
			for i := range ds {
				ds[i] = deployment{host: fmt.Sprintf("aks-%04d", i%1000), name: fmt.Sprintf("flux-system/w%d", i/1000),
					status: "succeeded", revision: sha(commit), path: "apps", body: "Applied"}
			}
			return gzipped(protobufOf(t, logsOf(ds...)))
		}
		for _, step := range []struct {
			name        string
			commit      int
			wantApplied float64
		}{{"new reconcilers", 1, 10000}, {"replay", 1, 10000}, {"next commit", 2, 20000}} {
			start := time.Now()
			code, _, body := h.post(batch(step.commit), "application/x-protobuf", "gzip", writeToken)
			if code != http.StatusOK {
				t.Fatalf("%s: %d %s", step.name, code, body)
			}
			t.Logf("%s: 10,000 records in %v", step.name, time.Since(start).Round(time.Millisecond))
			if got := h.metric("tidemark_source_reports_applied_total"); got != step.wantApplied {
				t.Errorf("%s: applied %v in all, want %v", step.name, got, step.wantApplied)
			}
		}
		rows := h.hostState("aks-0999")
		if len(rows) != 10 || rows[0].Version != "1.1.0" || rows[9].Status != "success" {
			t.Errorf("aks-0999 after the batches: %d rows, %+v", len(rows), rows)
		}
	})
}

func TestOTLPGRPC(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		h := newHub(t, st)
		conn, err := grpc.NewClient(h.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := plogotlp.NewGRPCClient(conn)
		export := func(token string, logs plog.Logs) (plogotlp.ExportResponse, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
			}
			return client.Export(ctx, plogotlp.NewExportRequestFromLogs(logs), grpc.UseCompressor(grpcgzip.Name))
		}
		logs := logsOf(
			deployment{host: "arc-vm-1", name: "agent/api", status: "succeeded", revision: "main/" + sha(2), path: "./apps/", body: "synced"},
			deployment{host: "arc-vm-2", name: "agent/api", status: "succeeded", revision: "nope", path: "apps"},
		)
		resp, err := export(writeToken, logs)
		if err != nil {
			t.Fatal(err)
		}
		if ps := resp.PartialSuccess(); ps.RejectedLogRecords() != 1 || !strings.Contains(ps.ErrorMessage(), "invalid_revision") {
			t.Errorf("partial success: %d %q", ps.RejectedLogRecords(), ps.ErrorMessage())
		}
		if rows := h.hostState("arc-vm-1"); len(rows) != 1 || rows[0].Version != "1.1.0" || rows[0].Message != "synced" {
			t.Errorf("arc-vm-1: %+v", rows)
		}
		for _, c := range []struct {
			token string
			want  codes.Code
		}{{"", codes.Unauthenticated}, {"wrong-token-0123456789", codes.Unauthenticated}, {readToken, codes.PermissionDenied}} {
			if _, err := export(c.token, logs); status.Code(err) != c.want {
				t.Errorf("token %q: %v, want %s", c.token, err, c.want)
			}
		}
	})
}

// The partial success message is readable JSON for the Collector's logs.
func TestOTLPResponseShape(t *testing.T) {
	h := newHub(t, testenv.NewStore(t, "sqlite"))
	_, _, body := h.post(jsonExport("aks-1", "main@sha1:nope", "succeeded", "x"), "application/json", "", writeToken)
	var v struct {
		PartialSuccess struct {
			RejectedLogRecords string `json:"rejectedLogRecords"`
			ErrorMessage       string `json:"errorMessage"`
		} `json:"partialSuccess"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.PartialSuccess.RejectedLogRecords != "1" || !strings.Contains(v.PartialSuccess.ErrorMessage, "vcs.ref.head.revision") {
		t.Errorf("response %s: %+v %v", body, v, err)
	}
}
