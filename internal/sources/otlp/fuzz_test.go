package otlp

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// FuzzMapRecord: any attribute values, on the record or its resource,
// either make a report that satisfies the model's invariants or a
// rejection with a reason and a detail; never a panic.
func FuzzMapRecord(f *testing.F) {
	f.Add("aks-1", "flux-system/apps", "succeeded", "main@sha1:"+sha, "https://github.com/acme/gitops", "main", "./apps", "", "flux", "prod", "ok", uint64(1_700_000_000_000_000_000), true)
	f.Add("", "n", "failed", sha[:7], "", "", "", "github.com/a/b/main/p", "argocd", "", "", uint64(0), false)
	f.Add("h", "n", "", "", "oci://ghcr.io/a/b", "v1", "", "", "agent", "dev", "registered", uint64(1), true)
	f.Add("h\x00", "n\xff", "in progress", "v1@sha256:"+sha+sha[:24], "git@github.com:a/b.git", "refs/heads/x", "/", "", "FLUX", "", "\n", uint64(1<<63), false)
	f.Fuzz(func(t *testing.T, host, name, status, revision, repo, branch, path, joined, typ, env, body string, ts uint64, onRecord bool) {
		attrs := map[string]string{AttrHostName: host, AttrDeploymentName: name, AttrDeploymentStatus: status, AttrRevision: revision,
			AttrRepositoryURL: repo, AttrBranch: branch, AttrManifestsPath: path, AttrManifestsEndpoint: joined,
			AttrReconcilerType: typ, AttrEnvironment: env}
		res := pcommon.NewMap()
		lr := plog.NewLogRecord()
		target := res
		if onRecord {
			target = lr.Attributes()
		}
		for k, v := range attrs {
			target.PutStr(k, v)
		}
		lr.Body().SetStr(body)
		lr.SetTimestamp(pcommon.Timestamp(ts))
		rec, rej := MapRecord(res, lr)
		if rej != nil {
			if rej.Reason == "" || rej.Detail == "" {
				t.Fatalf("rejection without reason or detail: %+v", rej)
			}
			return
		}
		r := rec.Report
		if strings.TrimSpace(r.Host) == "" || strings.TrimSpace(r.Reconciler) == "" || r.ReconcilerType == "" || r.Endpoint.Key() == "" {
			t.Fatalf("report without host, name, type or endpoint: %+v", r)
		}
		for _, s := range []string{r.Host, r.Reconciler, r.ReconcilerType, r.Message, r.Commit, rec.Environment} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("invalid text in the report: %q", s)
			}
		}
		if (r.Commit == "") != (r.Status == "") {
			t.Fatalf("a commit without a status or the reverse: %+v", r)
		}
		// The whole export path takes it too.
		logs := plog.NewLogs()
		rl := logs.ResourceLogs().AppendEmpty()
		res.CopyTo(rl.Resource().Attributes())
		lr.CopyTo(rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
		data, err := plogotlp.NewExportRequestFromLogs(logs).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		back := plogotlp.NewExportRequest()
		if err := back.UnmarshalProto(data); err != nil {
			t.Fatal(err)
		}
	})
}
