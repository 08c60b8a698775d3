package controller

import (
	"strings"
	"testing"
	"time"

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
			applied, why := settledRevision(tc.k)
			if applied.Revision != tc.rev || !strings.Contains(why, tc.whyPart) {
				t.Errorf("settledRevision = %q, %q; want %q and a reason containing %q", applied.Revision, why, tc.rev, tc.whyPart)
			}
		})
	}
}

// The time a revision was applied: its status.history entry's
// firstReconciled (Flux 2.5+), else when Ready last became True.
func TestSettledRevisionTime(t *testing.T) {
	const a, b = "main@sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "main@sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	status := map[string]any{
		"observedGeneration": int64(1), "lastAttemptedRevision": a, "lastAppliedRevision": a,
		"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
			"lastTransitionTime": "2026-03-01T10:05:00Z"}},
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": status}}
	u.SetGeneration(1)
	if applied, _ := settledRevision(u); applied.At.Format(time.RFC3339) != "2026-03-01T10:05:00Z" {
		t.Errorf("without history: %v, want Ready's lastTransitionTime", applied.At)
	}
	status["history"] = []any{
		map[string]any{"firstReconciled": "2026-03-01T09:00:00Z", "metadata": map[string]any{"revision": b}},
		map[string]any{"firstReconciled": "2026-03-01T10:00:00Z", "metadata": map[string]any{"revision": a}},
	}
	if applied, _ := settledRevision(u); applied.At.Format(time.RFC3339) != "2026-03-01T10:00:00Z" {
		t.Errorf("with history: %v, want the applied revision's firstReconciled", applied.At)
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
