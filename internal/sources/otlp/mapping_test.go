package otlp

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/tidemark-dev/tidemark/internal/model"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// record builds a log record with attributes and a body, and the resource
// attributes it belongs to.
func record(resource, attributes map[string]string, body string, ts time.Time) (pcommon.Map, plog.LogRecord) {
	res := pcommon.NewMap()
	for k, v := range resource {
		res.PutStr(k, v)
	}
	lr := plog.NewLogRecord()
	for k, v := range attributes {
		lr.Attributes().PutStr(k, v)
	}
	lr.Body().SetStr(body)
	if !ts.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	}
	return res, lr
}

func TestMapRecord(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	full := map[string]string{
		AttrDeploymentName: "flux-system/apps", AttrDeploymentStatus: "succeeded", AttrRevision: "main@sha1:" + sha,
		AttrRepositoryURL: "https://github.com/Acme/GitOps.git", AttrBranch: "refs/heads/main", AttrManifestsPath: "./apps/",
		AttrReconcilerType: "Flux", AttrEnvironment: "prod",
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(out, kv[i])
			} else {
				out[kv[i]] = kv[i+1]
			}
		}
		return out
	}
	ep, _ := model.NewEndpoint("git", "https://github.com/Acme/GitOps", "main", "apps")
	joined, _ := model.ParseEndpoint("git", "https://github.com/acme/gitops/main/apps")
	oci, _ := model.NewEndpoint("oci", "oci://ghcr.io/acme/manifests", "v1.2.3", "")

	for _, c := range []struct {
		name       string
		resource   map[string]string
		attrs      map[string]string
		body       string
		want       model.Report
		wantEnv    string
		wantReason string
	}{
		{name: "resource host, record deployment", resource: map[string]string{AttrHostName: "aks-east-1"}, attrs: full, body: "Applied revision\n",
			want: model.Report{Host: "aks-east-1", Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
				Commit: sha, Status: model.StatusSuccess, Message: "Applied revision", ObservedAt: at, Source: SourceName}, wantEnv: "prod"},
		{name: "the record overrides the resource", resource: map[string]string{AttrHostName: "other", AttrDeploymentStatus: "failed"},
			attrs: with(full, AttrHostName, "aks-east-1"),
			want: model.Report{Host: "aks-east-1", Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
				Commit: sha, Status: model.StatusSuccess, ObservedAt: at, Source: SourceName}, wantEnv: "prod"},
		{name: "k8s.cluster.name without host.name, failed, Tidemark's spelling", resource: map[string]string{AttrClusterName: "aks-west"},
			attrs: with(full, AttrDeploymentStatus, "failure", AttrEnvironment, ""),
			want: model.Report{Host: "aks-west", Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
				Commit: sha, Status: model.StatusFailure, ObservedAt: at, Source: SourceName}},
		{name: "joined endpoint, in progress", resource: map[string]string{AttrHostName: "vm-1"},
			attrs: with(full, AttrRepositoryURL, "", AttrBranch, "", AttrManifestsPath, "", AttrManifestsEndpoint, "https://github.com/acme/gitops/main/apps", AttrDeploymentStatus, "in progress"),
			want: model.Report{Host: "vm-1", Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: joined,
				Commit: sha, Status: model.StatusInProgress, ObservedAt: at, Source: SourceName}, wantEnv: "prod"},
		{name: "OCI", resource: map[string]string{AttrHostName: "edge-7"},
			attrs: with(full, AttrRepositoryURL, "oci://ghcr.io/acme/manifests", AttrBranch, "v1.2.3", AttrManifestsPath, "", AttrRevision, "v1.2.3@sha256:"+sha+sha[:24]),
			want: model.Report{Host: "edge-7", Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: oci,
				Commit: sha + sha[:24], Status: model.StatusSuccess, ObservedAt: at, Source: SourceName}, wantEnv: "prod"},
		{name: "no revision nor status: a registration", resource: map[string]string{AttrHostName: "aks-new"}, body: "joined the fleet",
			attrs: with(full, AttrRevision, "", AttrDeploymentStatus, ""),
			want: model.Report{Host: "aks-new", Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
				ObservedAt: at, Source: SourceName}, wantEnv: "prod"},

		{name: "no host", attrs: full, wantReason: ReasonMissingHost},
		{name: "no name", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrDeploymentName, ""), wantReason: ReasonMissingName},
		{name: "blank name", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrDeploymentName, "  "), wantReason: ReasonMissingName},
		{name: "no type", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrReconcilerType, ""), wantReason: ReasonMissingType},
		{name: "no endpoint", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrRepositoryURL, ""), wantReason: ReasonMissingEndpoint},
		{name: "bad repository", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrRepositoryURL, "ftp://x/y"), wantReason: ReasonInvalidEndpoint},
		{name: "bad joined endpoint", resource: map[string]string{AttrHostName: "h"},
			attrs: with(full, AttrRepositoryURL, "", AttrManifestsEndpoint, "https://"), wantReason: ReasonInvalidEndpoint},
		{name: "status without revision", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrRevision, ""), wantReason: ReasonMissingRevision},
		{name: "revision without status", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrDeploymentStatus, ""), wantReason: ReasonMissingStatus},
		{name: "bad revision", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrRevision, "main@md5:abc"), wantReason: ReasonInvalidRevision},
		{name: "bad status", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrDeploymentStatus, "done"), wantReason: ReasonInvalidStatus},
		{name: "a control character in the name", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrDeploymentName, "a\tb"), wantReason: ReasonInvalidReport},
		{name: "names in NFC", resource: map[string]string{AttrHostName: "cafe\u0301"}, attrs: with(full, AttrEnvironment, ""),
			want: model.Report{Host: "caf\u00e9", Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
				Commit: sha, Status: model.StatusSuccess, ObservedAt: at, Source: SourceName}},
		{name: "NUL in the name", resource: map[string]string{AttrHostName: "h"}, attrs: with(full, AttrDeploymentName, "a\x00b"), wantReason: ReasonInvalidText},
		{name: "invalid UTF-8 in the body", resource: map[string]string{AttrHostName: "h"}, attrs: full, body: "bad \xff", wantReason: ReasonInvalidText},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, lr := record(c.resource, c.attrs, c.body, at)
			got, rej := MapRecord(res, lr)
			if c.wantReason != "" {
				if rej == nil || rej.Reason != c.wantReason || rej.Detail == "" {
					t.Fatalf("rejection %+v, want reason %s with a detail", rej, c.wantReason)
				}
				return
			}
			if rej != nil {
				t.Fatalf("rejected: %+v", rej)
			}
			if got.Environment != c.wantEnv {
				t.Errorf("environment %q, want %q", got.Environment, c.wantEnv)
			}
			w, g := c.want, got.Report
			if g.Host != w.Host || g.Reconciler != w.Reconciler || g.ReconcilerType != w.ReconcilerType || g.Endpoint != w.Endpoint ||
				g.Commit != w.Commit || g.Status != w.Status || g.Message != w.Message || !g.ObservedAt.Equal(w.ObservedAt) || g.Source != w.Source {
				t.Errorf("report\n got %+v\nwant %+v", g, w)
			}
			if g.Registered() != (w.Commit == "") {
				t.Errorf("Registered() = %v", g.Registered())
			}
		})
	}
}

// A record without timestamp takes its observed timestamp; without
// either, the time of arrival (zero).
func TestMapRecordTime(t *testing.T) {
	attrs := map[string]string{AttrHostName: "h", AttrDeploymentName: "n", AttrReconcilerType: "agent",
		AttrManifestsEndpoint: "https://github.com/a/b/main", AttrRevision: sha, AttrDeploymentStatus: "success"}
	res, lr := record(nil, attrs, "", time.Time{})
	if got, rej := MapRecord(res, lr); rej != nil || !got.Report.ObservedAt.IsZero() {
		t.Errorf("no timestamps: %v %v", got.Report.ObservedAt, rej)
	}
	observed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	if got, _ := MapRecord(res, lr); !got.Report.ObservedAt.Equal(observed) {
		t.Errorf("observed timestamp: %v", got.Report.ObservedAt)
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]model.Status{"succeeded": model.StatusSuccess, "FAILED": model.StatusFailure,
		"in_progress": model.StatusInProgress, "success": model.StatusSuccess, "failure": model.StatusFailure, "in-progress": model.StatusInProgress} {
		if got, err := ParseStatus(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParseStatus("ok"); err == nil || !strings.Contains(err.Error(), "succeeded, failed, in_progress") {
		t.Errorf("ok: %v", err)
	}
}
