package prometheus

import (
	"strings"
	"testing"
	"time"

	pmodel "github.com/prometheus/common/model"

	"github.com/tidemark-dev/tidemark/internal/model"
)

const rev = "0123456789abcdef0123456789abcdef01234567"

func vector(series ...map[string]string) pmodel.Vector {
	var v pmodel.Vector
	for _, s := range series {
		m := pmodel.Metric{}
		for k, val := range s {
			m[pmodel.LabelName(k)] = pmodel.LabelValue(val)
		}
		v = append(v, &pmodel.Sample{Metric: m, Value: 1})
	}
	return v
}

func TestSnapshotReports(t *testing.T) {
	snap := newSnapshot()
	rejected := map[string]int{}
	// flux_resource_info first: it wins over gotk_resource_info for the
	// same object.
	snap.add(vector(
		map[string]string{"cluster": "c1", "kind": "Kustomization", "name": "apps", "exported_namespace": "flux-system",
			"ready": "True", "reason": "ReconciliationSucceeded", "suspended": "True", "revision": "main@sha1:" + rev, "source_name": "repo", "path": "./apps"},
		map[string]string{"cluster": "c1", "kind": "GitRepository", "name": "repo", "exported_namespace": "flux-system", "url": "https://github.com/acme/gitops", "ref": "main"},
		map[string]string{"cluster": "c1", "kind": "OCIRepository", "name": "repo", "exported_namespace": "flux-system", "url": "oci://ghcr.io/acme/x", "ref": "v1"},
		// Its sourceRef names the OCIRepository, in another namespace.
		map[string]string{"cluster": "c1", "kind": "Kustomization", "name": "oci", "exported_namespace": "apps", "ready": "False",
			"revision": rev, "source_name": "repo", "source_kind": "OCIRepository", "source_namespace": "flux-system"},
		// Its own url and branch labels need no join.
		map[string]string{"cluster": "c1", "kind": "Kustomization", "name": "direct", "exported_namespace": "apps", "ready": "Unknown",
			"revision": rev, "url": "https://github.com/acme/other", "branch": "dev", "path": "x"},
		// Never applied: registered.
		map[string]string{"cluster": "c1", "kind": "Kustomization", "name": "new", "exported_namespace": "flux-system", "ready": "Unknown", "source_name": "repo"},
		map[string]string{"cluster": "c1", "kind": "Kustomization", "name": "badrev", "exported_namespace": "flux-system", "revision": "main@md5:1", "source_name": "repo"},
		map[string]string{"cluster": "c1", "kind": "Kustomization", "name": "badurl", "exported_namespace": "flux-system", "revision": rev, "url": "ftp://x"},
		map[string]string{"cluster": "c1", "kind": "Kustomization", "name": "bad\x01name", "exported_namespace": "flux-system", "revision": rev, "url": "https://github.com/a/b"},
		map[string]string{"kind": "Kustomization", "name": "lost"},
		map[string]string{"cluster": "c1", "kind": "Kustomization"},
	), "cluster", rejected)
	snap.add(vector(
		map[string]string{"cluster": "c1", "customresource_kind": "Kustomization", "name": "apps", "exported_namespace": "flux-system",
			"ready": "False", "revision": rev, "source_name": "repo"},
	), "cluster", rejected)
	if rejected[ReasonMissingCluster] != 1 || rejected[ReasonMissingName] != 1 {
		t.Errorf("rejected %v", rejected)
	}
	got := map[string]model.Report{}
	reasons := map[string]string{}
	for _, k := range snap.kustomizations() {
		rep, reason, detail := snap.report(k, "prometheus/test")
		if reason != "" && detail == "" {
			t.Errorf("%s: reason %s without detail", k.name, reason)
		}
		got[k.name], reasons[k.name] = rep, reason
	}
	git, _ := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "apps")
	gitRoot, _ := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "")
	oci, _ := model.NewEndpoint("oci", "oci://ghcr.io/acme/x", "v1", "")
	direct, _ := model.NewEndpoint("git", "https://github.com/acme/other", "dev", "x")
	for name, want := range map[string]model.Report{
		"apps":   {Host: "c1", Reconciler: "flux-system/apps", Endpoint: git, Commit: rev, Status: model.StatusSuccess, Message: "ReconciliationSucceeded (suspended)"},
		"oci":    {Host: "c1", Reconciler: "apps/oci", Endpoint: oci, Commit: rev, Status: model.StatusFailure},
		"direct": {Host: "c1", Reconciler: "apps/direct", Endpoint: direct, Commit: rev, Status: model.StatusInProgress},
		"new":    {Host: "c1", Reconciler: "flux-system/new", Endpoint: gitRoot},
	} {
		g := got[name]
		if reasons[name] != "" || g.Host != want.Host || g.Reconciler != want.Reconciler || g.Endpoint != want.Endpoint ||
			g.Commit != want.Commit || g.Status != want.Status || g.Message != want.Message || g.ReconcilerType != "flux" || g.Source != "prometheus/test" {
			t.Errorf("%s: %+v (reason %q)\nwant %+v", name, g, reasons[name], want)
		}
	}
	if !got["new"].Registered() {
		t.Errorf("a Kustomization without a revision should register: %+v", got["new"])
	}
	if reasons["badrev"] != ReasonInvalidRevision || reasons["badurl"] != ReasonInvalidEndpoint || reasons["bad\x01name"] != ReasonInvalidReport {
		t.Errorf("reasons %v", reasons)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
sources:
  - name: azure-monitor
    url: https://amw-1.eastus.prometheus.monitor.azure.com
    auth: {azure: {credential: workloadIdentity, clientID: 00000000-0000-0000-0000-000000000001}}
  - name: thanos
    url: http://thanos:9090
    interval: 30s
    clusterLabel: cluster_name
    metrics: [gotk_resource_info]
    selector: 'env="prod"'
`), "prometheus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Sources[0], cfg.Sources[1]
	if a.Interval.Duration != DefaultInterval || a.ClusterLabel != DefaultClusterLabel || len(a.Metrics) != 2 ||
		a.Auth.Azure.Scope != DefaultAzureScope || a.RetireAfter.Duration != DefaultRetireAfter || a.Resync.Duration != DefaultResync {
		t.Errorf("defaults: %+v", a)
	}
	if b.Interval.Duration != 30*time.Second || b.ClusterLabel != "cluster_name" || b.Metrics[0] != MetricGotkResourceInfo {
		t.Errorf("thanos: %+v", b)
	}
	for _, c := range []struct{ yaml, want string }{
		{`sources: []`, "sources: is empty"},
		{`sources: [{name: a, url: "http://p", intervall: 1m}]`, "unknown field"},
		{`sources: [{url: "http://p"}]`, "sources[0].name"},
		{`sources: [{name: a, url: "http://p"}, {name: a, url: "http://q"}]`, "used twice"},
		{`sources: [{name: a, url: "p:9090"}]`, "sources[0].url"},
		{`sources: [{name: a, url: "http://p", interval: 10ms}]`, "sources[0].interval"},
		{`sources: [{name: a, url: "http://p", clusterLabel: "a-b"}]`, "sources[0].clusterLabel"},
		{`sources: [{name: a, url: "http://p", selector: "{a=\"b\"}"}]`, "without braces"},
		{`sources: [{name: a, url: "http://p", auth: {bearerTokenFile: f, azure: {}}}]`, "not both"},
		{`sources: [{name: a, url: "http://p", auth: {azure: {credential: cli}}}]`, "auth.azure.credential"},
		{`sources: [{name: a, url: "http://p", tls: {certFile: c}}]`, "go together"},
	} {
		if _, err := ParseConfig([]byte(c.yaml), "f.yaml"); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "f.yaml: ") {
			t.Errorf("%s: %v, want %q", c.yaml, err, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 5: 16 * time.Minute, 9: 16 * time.Minute} {
		if got := backoff(time.Minute, n); got < want || got > want+want/10 {
			t.Errorf("failure %d: %v, want %v plus up to 10%%", n, got, want)
		}
	}
}
