package fluxconfig

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

const aksConfig = `{
  "id": "/subscriptions/S1/resourceGroups/RG-Prod/providers/Microsoft.ContainerService/managedClusters/AKS-Prod-WestEurope-01/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/cluster-config",
  "name": "cluster-config",
  "properties": {
    "namespace": "cluster-config",
    "sourceKind": "GitRepository",
    "gitRepository": {"url": "https://github.com/contoso/gitops.git", "repositoryRef": {"tag": "v1.4.0"}},
    "kustomizations": {
      "infra": {"name": "infra", "path": "./infrastructure"},
      "apps": {"name": "apps", "path": "apps/prod", "dependsOn": ["infra"]}
    },
    "statuses": [
      {"name": "cluster-config", "namespace": "cluster-config", "kind": "GitRepository", "complianceState": "Compliant"},
      {"name": "cluster-config-infra", "namespace": "cluster-config", "kind": "Kustomization", "complianceState": "Compliant",
       "statusConditions": [{"type": "Ready", "status": "True", "message": "Applied revision: v1.4.0@sha1:0123456789abcdef0123456789abcdef01234567"}]},
      {"name": "cluster-config-apps", "namespace": "cluster-config", "kind": "Kustomization", "complianceState": "Non-Compliant",
       "statusConditions": [{"type": "Ready", "status": "False", "message": "health check failed after 5m"}]},
      {"name": "podinfo", "namespace": "podinfo", "kind": "HelmRelease", "complianceState": "Non-Compliant",
       "appliedBy": {"name": "cluster-config-apps", "namespace": "cluster-config"},
       "statusConditions": [{"type": "Ready", "status": "False", "message": "install retries exhausted"}]}
    ],
    "sourceSyncedCommitId": "v1.4.0@sha1:0123456789ABCDEF0123456789abcdef01234567",
    "statusUpdatedAt": "2026-04-30T10:00:00Z",
    "complianceState": "Non-Compliant"
  }
}`

func TestMapRow(t *testing.T) {
	m, err := Map([]byte(aksConfig), "azure-resource-graph/x")
	if err != nil {
		t.Fatal(err)
	}
	if m.Cluster.Name != "aks-prod-westeurope-01" || m.Cluster.Type != "microsoft.containerservice/managedclusters" ||
		m.Cluster.ID != "/subscriptions/s1/resourcegroups/rg-prod/providers/microsoft.containerservice/managedclusters/aks-prod-westeurope-01" {
		t.Errorf("cluster: %+v", m.Cluster)
	}
	if len(m.Reports) != 2 {
		t.Fatalf("%d reports, want 2", len(m.Reports))
	}
	apps, infra := m.Reports[0], m.Reports[1]
	want := model.Endpoint{StorageType: "git", Repo: "https://github.com/contoso/gitops", Branch: "v1.4.0", Path: "apps/prod"}
	if apps.Reconciler != "cluster-config/apps" || apps.Endpoint != want || apps.Status != model.StatusFailure ||
		apps.Commit != "0123456789abcdef0123456789abcdef01234567" || apps.ReconcilerType != ReconcilerType ||
		!apps.ObservedAt.Equal(time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("apps: %+v", apps)
	}
	for _, part := range []string{"Kustomization/cluster-config-apps: health check failed", "HelmRelease/podinfo: install retries exhausted"} {
		if !strings.Contains(apps.Message, part) {
			t.Errorf("apps message %q lacks %q", apps.Message, part)
		}
	}
	if infra.Status != model.StatusSuccess || infra.Endpoint.Path != "infrastructure" || !strings.HasPrefix(infra.Message, "Applied revision") {
		t.Errorf("infra: %+v", infra)
	}
	if infra.HostLabels[LabelResourceID] != m.Cluster.ID || infra.HostLabels[LabelResourceGroup] != "rg-prod" {
		t.Errorf("host labels: %v", infra.HostLabels)
	}
}

func TestMapRowSources(t *testing.T) {
	row := func(props string) string {
		return `{"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Kubernetes/connectedClusters/c/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/f",
			"name": "f", "properties": ` + props + `}`
	}
	oci, err := Map([]byte(row(`{"sourceKind": "OCIRepository", "ociRepository": {"url": "oci://contoso.azurecr.io/manifests", "repositoryRef": {"tag": "prod"}},
		"kustomizations": {"k": {"path": "./"}}, "sourceSyncedCommitId": "prod@sha256:`+strings.Repeat("ab", 32)+`", "complianceState": "Pending"}`)), "s")
	if err != nil || oci.Reports[0].Endpoint.StorageType != "oci" || oci.Reports[0].Commit != strings.Repeat("ab", 32) || oci.Reports[0].Status != model.StatusInProgress {
		t.Errorf("OCI source: %+v, %v", oci, err)
	}
	pending, err := Map([]byte(row(`{"gitRepository": {"url": "https://x/y"}, "kustomizations": {"k": {}}}`)), "s")
	if err != nil || !pending.Reports[0].Registered() {
		t.Errorf("configuration without a commit: %+v, %v", pending, err)
	}
	for _, tc := range []struct{ name, row, reason string }{
		{"bucket", row(`{"sourceKind": "Bucket", "bucket": {"url": "https://s3"}, "kustomizations": {"k": {}}}`), SkipSource},
		{"azure blob", row(`{"sourceKind": "AzureBlob", "azureBlob": {"url": "https://blob"}, "kustomizations": {"k": {}}}`), SkipSource},
		{"no url", row(`{"gitRepository": {}, "kustomizations": {"k": {}}}`), SkipSource},
		{"bad url", row(`{"gitRepository": {"url": "ftp://x/y"}, "kustomizations": {"k": {}}}`), SkipEndpoint},
		{"no kustomizations", row(`{"gitRepository": {"url": "https://x/y"}}`), SkipNoKustomize},
		{"bad commit", row(`{"gitRepository": {"url": "https://x/y"}, "kustomizations": {"k": {}}, "sourceSyncedCommitId": "main@md5:zz"}`), SkipCommit},
		{"control characters", row(`{"gitRepository": {"url": "https://x/y"}, "kustomizations": {"a\u0000b": {}}}`), SkipText},
		{"no properties", row(`null`), SkipNoProperties},
		{"odd id", `{"id": "/subscriptions/s/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/f"}`, SkipID},
		{"array", `[1,2]`, SkipNotObject},
		{"number id", `{"id": 7}`, SkipNotObject},
	} {
		_, err := Map([]byte(tc.row), "s")
		var se *SkipError
		if !errors.As(err, &se) || se.Reason != tc.reason {
			t.Errorf("%s: %v, want reason %s", tc.name, err, tc.reason)
		}
	}
}

// FuzzMap feeds arbitrary rows to the mapping: it never panics, and
// whatever it accepts is a valid report.
func FuzzMap(f *testing.F) {
	f.Add([]byte(aksConfig))
	f.Add([]byte(`{"id": "/subscriptions/s/resourceGroups/g/providers/a/b/c/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/f", "properties": {"gitRepository": {"url": "https://h/r"}, "kustomizations": {"k": null}, "statuses": [null, {"appliedBy": null}]}}`))
	f.Add([]byte(`{"id": "/subscriptions//resourceGroups/g/providers/a/b/c/providers/microsoft.kubernetesconfiguration/fluxconfigurations/f"}`))
	f.Add([]byte(`{"properties": {"kustomizations": {"": {"path": "../../.."}}, "sourceSyncedCommitId": "@@@", "statusUpdatedAt": "9999-99-99"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Map(raw, "src")
		if err != nil {
			var se *SkipError
			if !errors.As(err, &se) || se.Reason == "" {
				t.Fatalf("error without a skip reason: %v", err)
			}
			return
		}
		if !json.Valid(raw) || m.Cluster.Name == "" || len(m.Reports) == 0 {
			t.Fatalf("accepted %q as %+v", raw, m)
		}
		for _, r := range m.Reports {
			if r.Host != m.Cluster.Name || r.Reconciler == "" || r.Endpoint.Key() == "" || r.Source != "src" {
				t.Fatalf("invalid report %+v from %q", r, raw)
			}
			if !r.Registered() {
				if _, err := model.NormalizeRevision(r.Commit); err != nil {
					t.Fatalf("commit %q: %v", r.Commit, err)
				}
				if _, err := model.ParseStatus(string(r.Status)); err != nil || len(r.Message) > maxMessage+3 {
					t.Fatalf("status %q / message of %d bytes", r.Status, len(r.Message))
				}
			}
		}
	})
}
