package otlp

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// BenchmarkOTLPDecode: the receiver's own work per record, without the
// store: gunzip and decode a protobuf export of 1,000 records (one
// resource per host) and map each record to a report, in records/s.
func BenchmarkOTLPDecode(b *testing.B) {
	logs := plog.NewLogs()
	for i := range 1000 {
		rl := logs.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(AttrHostName, fmt.Sprintf("aks-%04d", i))
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		for k, v := range map[string]string{AttrDeploymentName: "flux-system/apps", AttrDeploymentStatus: "succeeded",
			AttrRevision: "main@sha1:" + sha, AttrRepositoryURL: "https://github.com/acme/gitops", AttrBranch: "main",
			AttrManifestsPath: "apps", AttrReconcilerType: "flux", AttrEnvironment: "prod"} {
			lr.Attributes().PutStr(k, v)
		}
		lr.Body().SetStr("Reconciliation finished")
	}
	raw, err := plogotlp.NewExportRequestFromLogs(logs).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	body := buf.Bytes()
	b.ResetTimer()
	for range b.N {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			b.Fatal(err)
		}
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(data); err != nil {
			b.Fatal(err)
		}
		var m mapper
		rls := req.Logs().ResourceLogs()
		for i := range rls.Len() {
			rl := rls.At(i)
			lrs := rl.ScopeLogs().At(0).LogRecords()
			for j := range lrs.Len() {
				if _, rej := m.mapRecord(rl.Resource().Attributes(), lrs.At(j)); rej != nil {
					b.Fatal(rej)
				}
			}
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
}
