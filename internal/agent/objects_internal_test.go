package agent

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(kind string, o map[string]any) *unstructured.Unstructured {
	o["kind"] = kind
	if o["metadata"] == nil {
		o["metadata"] = map[string]any{"name": "x", "namespace": "ns"}
	}
	return &unstructured.Unstructured{Object: o}
}

// Objects that cannot be reported are skipped with a reason; none panics.
func TestStateOfBadObjects(t *testing.T) {
	git := obj("GitRepository", map[string]any{"spec": map[string]any{"url": "https://github.com/o/r", "ref": map[string]any{"branch": "main"}}})
	helmHTTP := obj("HelmRepository", map[string]any{"spec": map[string]any{"url": "https://charts.example.com"}})
	lookup := func(kind, _, name string) *unstructured.Unstructured {
		switch {
		case kind == "GitRepository" && name == "git":
			return git
		case kind == "HelmRepository":
			return helmHTTP
		}
		return nil
	}
	for _, tc := range []struct {
		name string
		kind Kind
		obj  *unstructured.Unstructured
		want skipReason
	}{
		{"kustomization without sourceRef", KindKustomization, obj("Kustomization", map[string]any{"spec": map[string]any{}}), skipMissingFields},
		{"kustomization with a string spec", KindKustomization, obj("Kustomization", map[string]any{"spec": "nonsense"}), skipMissingFields},
		{"kustomization of an unknown source", KindKustomization, obj("Kustomization", map[string]any{"spec": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "gone"}}}), skipNoSource},
		{"kustomization of a bucket", KindKustomization, obj("Kustomization", map[string]any{"spec": map[string]any{"sourceRef": map[string]any{"kind": "Bucket", "name": "git"}}}), skipNoSource},
		{"absurd revision", KindKustomization, obj("Kustomization", map[string]any{
			"spec":   map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "git"}},
			"status": map[string]any{"lastAppliedRevision": "main@md5:nothex", "conditions": []any{map[string]any{"type": "Ready", "status": "True"}, "junk", 7}}}), skipBadRevision},
		{"helm release from an HTTP repository", KindHelmRelease, obj("HelmRelease", map[string]any{"spec": map[string]any{"chart": map[string]any{"spec": map[string]any{
			"chart": "podinfo", "sourceRef": map[string]any{"kind": "HelmRepository", "name": "charts"}}}}}), skipUnsupported},
		{"application without source", KindApplication, obj("Application", map[string]any{"spec": map[string]any{"sources": []any{"x", 3}}}), skipMissingFields},
		{"application from a Helm HTTP repository", KindApplication, obj("Application", map[string]any{"spec": map[string]any{"source": map[string]any{"repoURL": "https://charts.example.com", "chart": "x"}}}), skipUnsupported},
		{"application with a bad URL", KindApplication, obj("Application", map[string]any{"spec": map[string]any{"source": map[string]any{"repoURL": "ftp://x\x00y", "path": "p"}}}), skipBadEndpoint},
	} {
		_, _, skip := stateOf(tc.kind, tc.obj, lookup)
		if skip != tc.want {
			t.Errorf("%s: skip %q, want %q", tc.name, skip, tc.want)
		}
	}
	// A good Kustomization reports its applied revision, or registers.
	k := obj("Kustomization", map[string]any{"spec": map[string]any{"path": "./apps/", "sourceRef": map[string]any{"kind": "GitRepository", "name": "git"}}})
	st, deps, skip := stateOf(KindKustomization, k, lookup)
	if skip != "" || st.Commit != "" || st.Endpoint != "https://github.com/o/r/main/apps" || len(deps) != 1 || st.Name != "kustomization/ns/x" {
		t.Errorf("registered kustomization: %+v %v %q", st, deps, skip)
	}
}
