package controller

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A Kustomization's lastAppliedRevision is taken only once it has settled.
func TestSettledRevision(t *testing.T) {
	const a, b = "main@sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "main@sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	k := func(gen, observed int64, ready, attempted, applied string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
			"observedGeneration":    observed,
			"lastAttemptedRevision": attempted,
			"lastAppliedRevision":   applied,
			"conditions":            []any{map[string]any{"type": "Ready", "status": ready, "reason": "R"}},
		}}}
		u.SetGeneration(gen)
		return u
	}
	for _, tc := range []struct {
		name    string
		k       *unstructured.Unstructured
		rev     string
		whyPart string
	}{
		{"settled", k(3, 3, "True", a, a), a, ""},
		{"absent", nil, "", "does not exist"},
		{"never applied", k(1, 1, "False", a, ""), "", "has not applied a revision yet"},
		{"spec not reconciled", k(4, 3, "True", a, a), "", "observedGeneration 3, generation 4"},
		{"applying another revision", k(3, 3, "Unknown", b, a), "", "is applying revision " + b + " (last applied " + a + ")"},
		{"failed", k(3, 3, "False", a, a), "", "is not Ready (Ready=False R)"},
		{"no attempted revision", k(3, 3, "True", "", a), "", "is applying revision"},
		{"no status", func() *unstructured.Unstructured {
			u := &unstructured.Unstructured{Object: map[string]any{}}
			u.SetGeneration(1)
			return u
		}(), "", "has not applied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev, why := settledRevision(tc.k)
			if rev != tc.rev || !strings.Contains(why, tc.whyPart) {
				t.Errorf("settledRevision = %q, %q; want %q and a reason containing %q", rev, why, tc.rev, tc.whyPart)
			}
		})
	}
}

func TestTruncateKeepsRunes(t *testing.T) {
	s := strings.Repeat("é", 10) // 20 bytes
	got := truncate(s, 8)
	if len(got) > 8 || !strings.HasSuffix(got, "...") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("truncate = %q", got)
	}
	if truncate("short", 8) != "short" {
		t.Error("short strings must stay")
	}
}
