package prometheus_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	promsrc "github.com/tidemark-dev/tidemark/internal/sources/prometheus"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const gitops = "https://github.com/acme/gitops"

func sha(n int) string { return fmt.Sprintf("%040x", uint64(n)*0x9e3779b97f4a7c15) }

// exporter serves Flux's info series in the Prometheus text format, as the
// Flux Operator and kube-state-metrics do; the test changes them. Each
// series carries a run label, so that runs sharing one Prometheus (a
// subtest per store engine) select their own with a selector.
type exporter struct {
	mu     sync.Mutex
	run    string
	series map[string]string // run/id -> series line
}

func newExporter(t *testing.T) (*exporter, string) {
	e := &exporter{series: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		lines := make([]string, 0, len(e.series))
		for _, l := range e.series {
			lines = append(lines, l)
		}
		sort.Strings(lines) // one metric's lines together
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "# TYPE flux_resource_info gauge")
		fmt.Fprintln(w, "# TYPE gotk_resource_info gauge")
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}))
	t.Cleanup(srv.Close)
	return e, strings.TrimPrefix(srv.URL, "http://")
}

func (e *exporter) set(id, line string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setLocked(id, line)
}

func (e *exporter) setLocked(id, line string) {
	if line == "" {
		delete(e.series, e.run+"/"+id)
	} else {
		e.series[e.run+"/"+id] = strings.Replace(line, "{", `{run="`+e.run+`",`, 1)
	}
}

// fleet is the series of the test fleet:
//   - aks-east (Flux Operator): Kustomizations apps (ready, revision rev)
//     and infra (failing), their GitRepository, a HelmRelease (ignored),
//     and an orphan Kustomization whose source has no series;
//   - aks-west (kube-state-metrics): Kustomization apps and its
//     GitRepository under gotk_resource_info, with branch and path labels;
//   - edge-1: a Kustomization of an OCIRepository, still progressing;
//   - a Kustomization without the cluster label.
func (e *exporter) fleet(rev string) {
	e.mu.Lock() // one scrape sees all of it or none
	defer e.mu.Unlock()
	flux := `flux_resource_info{cluster="%s",uid="%s",kind="%s",name="%s",exported_namespace="%s",ready="%s",reason="%s",suspended="False",revision="%s",url="%s",ref="%s",source_name="%s",path="%s"} 1`
	e.setLocked("east-apps", fmt.Sprintf(flux, "aks-east", "u1", "Kustomization", "apps", "flux-system", "True", "ReconciliationSucceeded", "main@sha1:"+rev, "", "", "flux-system", "./apps"))
	e.setLocked("east-infra", fmt.Sprintf(flux, "aks-east", "u2", "Kustomization", "infra", "flux-system", "False", "BuildFailed", "main@sha1:"+sha(1), "", "", "flux-system", "./infra"))
	e.setLocked("east-git", fmt.Sprintf(flux, "aks-east", "u3", "GitRepository", "flux-system", "flux-system", "True", "Succeeded", "main@sha1:"+rev, gitops, "main", "", ""))
	e.setLocked("east-helm", fmt.Sprintf(flux, "aks-east", "u4", "HelmRelease", "podinfo", "apps", "True", "InstallSucceeded", "6.5.0", "", "", "podinfo", ""))
	e.setLocked("east-orphan", fmt.Sprintf(flux, "aks-east", "u5", "Kustomization", "orphan", "flux-system", "True", "ReconciliationSucceeded", sha(1), "", "", "gone", "./"))
	gotk := `gotk_resource_info{cluster="%s",customresource_group="%s",customresource_kind="%s",customresource_version="v1",exported_namespace="flux-system",name="%s",ready="True",suspended="false",revision="%s",%s} 1`
	e.setLocked("west-apps", fmt.Sprintf(gotk, "aks-west", "kustomize.toolkit.fluxcd.io", "Kustomization", "apps", "main@sha1:"+sha(1), `source_name="flux-system",path="apps"`))
	e.setLocked("west-git", fmt.Sprintf(gotk, "aks-west", "source.toolkit.fluxcd.io", "GitRepository", "flux-system", "main@sha1:"+sha(1), `url="`+gitops+`.git",branch="main"`))
	e.setLocked("edge-apps", fmt.Sprintf(flux, "edge-1", "u6", "Kustomization", "apps", "apps", "Unknown", "Progressing", "v1.2.3@sha256:"+sha(3)+sha(3)[:24], "", "", "manifests", ""))
	e.setLocked("edge-oci", fmt.Sprintf(flux, "edge-1", "u7", "OCIRepository", "manifests", "apps", "True", "Succeeded", "v1.2.3@sha256:"+sha(3)+sha(3)[:24], "oci://ghcr.io/acme/manifests", "v1.2.3", "", ""))
	e.setLocked("nocluster", `flux_resource_info{kind="Kustomization",name="lost",exported_namespace="flux-system",ready="True",revision="`+sha(1)+`",source_name="flux-system"} 1`)
}

func newIngest(t *testing.T, st *store.Store) *ingest.Service {
	ing := ingest.New(st)
	ep, _ := model.NewEndpoint("git", gitops, "main", "apps")
	for i, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := ing.ApplyDescriptor(context.Background(), model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
			Environment: "prod", Target: "east", Manifests: ep, Version: v, Commit: sha(i + 1),
			AssignedAt: time.Date(2026, 5, 1, i, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	return ing
}

func sourceConfig(name, url, run string) promsrc.SourceConfig {
	cfg, err := promsrc.ParseConfig([]byte(fmt.Sprintf("sources:\n- name: %s\n  url: %s\n  interval: 1s\n  retireAfter: 4s\n  selector: run=%q\n", name, url, run)), "test")
	if err != nil {
		panic(err)
	}
	return cfg.Sources[0]
}

func reconciler(t *testing.T, st *store.Store, host, name string) store.ReconcilerState {
	t.Helper()
	s, err := store.GetReconcilerState(context.Background(), st.Read(), host, name)
	if err != nil {
		t.Fatalf("%s/%s: %v", host, name, err)
	}
	return s
}

// pollUntil polls until ok holds for the result, for at most 30 s (the
// first scrape lands about a second after Prometheus starts).
func pollUntil(t *testing.T, p *promsrc.Poller, what string, ok func(promsrc.PollResult) bool) promsrc.PollResult {
	t.Helper()
	var res promsrc.PollResult
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		res, err = p.Poll(context.Background())
		if err == nil && ok(res) {
			return res
		}
	}
	t.Fatalf("%s: last poll %+v, %v", what, res, err)
	return res
}

// A real Prometheus scrapes Flux-style series; the poller turns them into
// reports, follows a revision change, writes nothing when nothing changed,
// and retires a Kustomization whose series vanished after the grace period.
func TestPollerWithPrometheus(t *testing.T) {
	exp, target := newExporter(t)
	prom := testenv.StartPrometheus(t, []string{target})
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		exp.mu.Lock()
		exp.run = t.Name()
		exp.mu.Unlock()
		exp.fleet(sha(1))
		ing := newIngest(t, st)
		p, err := promsrc.NewPoller(sourceConfig("fleet", prom.URL, exp.run), ing, promsrc.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The poller queries each metric on its own, so a poll during a
		// scrape of the new run may see some of its series only (the
		// others are sent by a later poll): wait until all were seen and
		// count what was sent on the way.
		var sent, applied int
		res := pollUntil(t, p, "the first scrape", func(r promsrc.PollResult) bool {
			sent, applied = sent+r.Sent, applied+r.Applied
			return r.Reconcilers == 5 && sent >= 4
		})
		if sent != 4 || applied != 4 || res.Rejected[promsrc.ReasonSourceNotFound] != 1 || res.Rejected[promsrc.ReasonMissingCluster] != 1 {
			t.Errorf("first polls: sent %d, applied %d, last %+v", sent, applied, res)
		}
		rs := reports.New(st)
		rows, _, err := rs.HostState(context.Background(), reports.Filter{Target: "east"}, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range rows {
			got[r.Host+" "+r.Reconciler] = r.Version + " " + r.Status + " " + r.Message
		}
		want := map[string]string{
			"aks-east flux-system/apps": "1.0.0 success ReconciliationSucceeded", // the Flux Operator's series
			"aks-west flux-system/apps": "1.0.0 success ",                        // kube-state-metrics', branch and path joined from labels
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("host state %s: %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
		infra := reconciler(t, st, "aks-east", "flux-system/infra")
		if infra.Status != model.StatusFailure || infra.Message != "BuildFailed" || infra.Commit != sha(1) || infra.Source != "prometheus/fleet" {
			t.Errorf("the failing Kustomization: %+v", infra)
		}
		edge := reconciler(t, st, "edge-1", "apps/apps")
		if edge.Status != model.StatusInProgress || edge.Commit != sha(3)+sha(3)[:24] || edge.EndpointKey != "ghcr.io/acme/manifests/v1.2.3" {
			t.Errorf("the OCI Kustomization: %+v", edge)
		}

		// Nothing changed: nothing is sent, nothing written.
		if res, err := p.Poll(context.Background()); err != nil || res.Sent != 0 || res.Applied != 0 || res.Reconcilers != 5 {
			t.Errorf("unchanged poll: %+v %v", res, err)
		}

		// A new revision on aks-east.
		exp.fleet(sha(2))
		pollUntil(t, p, "the revision change", func(r promsrc.PollResult) bool { return r.Applied == 1 })
		if s := reconciler(t, st, "aks-east", "flux-system/apps"); s.Commit != sha(2) || s.Status != model.StatusSuccess {
			t.Errorf("after the revision change: %+v", s)
		}

		// infra's series vanish: retired after the grace period, not before.
		exp.set("east-infra", "")
		gone := time.Now()
		res = pollUntil(t, p, "the retirement", func(r promsrc.PollResult) bool { return len(r.Retired) > 0 })
		if len(res.Retired) != 1 || res.Retired[0] != (model.ReconcilerKey{Host: "aks-east", Name: "flux-system/infra"}) {
			t.Errorf("retired %v", res.Retired)
		}
		if waited := time.Since(gone); waited < 3*time.Second {
			t.Errorf("retired %v after the series vanished, before the 4s grace period", waited)
		}
		if s := reconciler(t, st, "aks-east", "flux-system/infra"); !s.Retired() {
			t.Errorf("infra is not retired: %+v", s)
		}
		if s := reconciler(t, st, "aks-east", "flux-system/apps"); s.Retired() {
			t.Errorf("apps is retired: %+v", s)
		}

		// It comes back: reported again.
		exp.fleet(sha(2))
		pollUntil(t, p, "the comeback", func(r promsrc.PollResult) bool { return r.Applied == 1 })
		if s := reconciler(t, st, "aks-east", "flux-system/infra"); s.Retired() {
			t.Errorf("infra came back but stays retired: %+v", s)
		}
	})
}

// fakeCredential hands out a Microsoft Entra token, as azidentity's
// credentials do, and counts the requests.
type fakeCredential struct {
	calls atomic.Int32
	scope atomic.Value
}

func (f *fakeCredential) GetToken(_ context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	f.scope.Store(strings.Join(opts.Scopes, " "))
	return azcore.AccessToken{Token: "entra-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Azure Monitor managed Prometheus and other authenticated APIs: a TLS
// proxy that wants a bearer token stands in front of the real Prometheus.
func TestPollerAuthAndTLS(t *testing.T) {
	exp, target := newExporter(t)
	exp.run = t.Name()
	exp.fleet(sha(1))
	prom := testenv.StartPrometheus(t, []string{target})
	backend, _ := url.Parse(prom.URL)
	proxy := httputil.NewSingleHostReverseProxy(backend)
	tokens := map[string]bool{"Bearer entra-token": true, "Bearer file-token-1": true}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokens[r.Header.Get("Authorization")] {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("file-token-1\n"), 0o600)

	st := testenv.NewStore(t, "sqlite")
	ing := newIngest(t, st)
	cred := &fakeCredential{}
	for _, c := range []struct {
		name    string
		edit    func(*promsrc.SourceConfig)
		wantErr string
	}{
		{"azure", func(s *promsrc.SourceConfig) {
			s.Auth.Azure = &promsrc.AzureAuth{Credential: "managedIdentity", Scope: promsrc.DefaultAzureScope}
			s.TLS.CAFile = caFile
		}, ""},
		{"token file", func(s *promsrc.SourceConfig) { s.Auth.BearerTokenFile = tokenFile; s.TLS.CAFile = caFile }, ""},
		{"no token", func(s *promsrc.SourceConfig) { s.TLS.CAFile = caFile }, "401"},
		{"untrusted", func(s *promsrc.SourceConfig) { s.Auth.BearerTokenFile = tokenFile }, "certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := sourceConfig(strings.ReplaceAll(c.name, " ", "-"), srv.URL, exp.run)
			c.edit(&cfg)
			p, err := promsrc.NewPoller(cfg, ing, promsrc.Options{Credential: cred})
			if err != nil {
				t.Fatal(err)
			}
			if c.wantErr != "" {
				if _, err := p.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("poll: %v, want an error with %q", err, c.wantErr)
				}
				return
			}
			pollUntil(t, p, c.name, func(r promsrc.PollResult) bool { return r.Reconcilers == 5 })
			pollUntil(t, p, c.name, func(r promsrc.PollResult) bool { return r.Reconcilers == 5 })
		})
	}
	if n := cred.calls.Load(); n != 1 || cred.scope.Load() != promsrc.DefaultAzureScope {
		t.Errorf("the credential was asked %d times for %v: want once (the token is reused until it nears expiry) for %s",
			n, cred.scope.Load(), promsrc.DefaultAzureScope)
	}
}
