package ingest

import (
	"testing"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// A report's digest follows every fact that makes it a change, and no
// other; a registration has none.
func TestSeenDigests(t *testing.T) {
	s := newSeenReports()
	ep, _ := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "apps")
	base := model.Report{Host: "aks-1", Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
		Commit: "0123456789abcdef0123456789abcdef01234567", Status: model.StatusSuccess, Message: "ok",
		HostLabels: map[string]string{"region": "eu", "tier": "1"}}
	digest := func(r model.Report) (uint64, uint64) {
		k, d := s.digests([]model.Report{r}, endpointKeys([]model.Report{r}))
		return k[0], d[0]
	}
	key, want := digest(base)
	same := base
	same.HostLabels = map[string]string{"tier": "1", "region": "eu"}
	same.MessageBytes = 10
	if k, d := digest(same); k != key || d != want {
		t.Error("the same report has another digest")
	}
	other := ep
	other.Path = "infra"
	for name, change := range map[string]func(*model.Report){
		"type":       func(r *model.Report) { r.ReconcilerType = "argocd" },
		"endpoint":   func(r *model.Report) { r.Endpoint = other },
		"source":     func(r *model.Report) { r.Source = "agent" },
		"host type":  func(r *model.Report) { r.HostType = model.HostVM },
		"commit":     func(r *model.Report) { r.Commit = "1123456789abcdef0123456789abcdef01234567" },
		"status":     func(r *model.Report) { r.Status = model.StatusFailure },
		"message":    func(r *model.Report) { r.Message = "ok again" },
		"labels":     func(r *model.Report) { r.HostLabels = map[string]string{"region": "eu", "tier": "2"} },
		"label keys": func(r *model.Report) { r.HostLabels = map[string]string{"region": "eu", "tie": "r1"} },
	} {
		r := base
		change(&r)
		if k, d := digest(r); k != key || d == want || d == 0 {
			t.Errorf("%s: reconciler digest %x (want %x), report digest %x (want another than %x)", name, k, key, d, want)
		}
	}
	host := base
	host.Host = "aks-2"
	if k, _ := digest(host); k == key {
		t.Error("another host has the same reconciler digest")
	}
	registration := base
	registration.Commit, registration.Status, registration.Message = "", "", ""
	if _, d := digest(registration); d != 0 {
		t.Errorf("a registration's digest is %x, want 0", d)
	}
}

// Only a report that differs from the one last seen for its reconciler is
// certainly a change; what is forgotten might be a replay.
func TestSeenChanges(t *testing.T) {
	s := newSeenReports()
	keys, reports := []uint64{1, 2}, []uint64{10, 20}
	if s.changes(keys, reports) {
		t.Error("reconcilers never seen: a change")
	}
	s.remember(keys, reports)
	if s.changes(keys, reports) {
		t.Error("the reports last seen: a change")
	}
	if !s.changes(keys, []uint64{10, 21}) {
		t.Error("a report that differs: not a change")
	}
	if s.changes(keys, []uint64{10, 0}) {
		t.Error("a registration: a change")
	}
	s.remember([]uint64{2, 2}, []uint64{21, 22}) // in order: the last one stays
	if s.changes([]uint64{2}, []uint64{22}) || !s.changes([]uint64{2}, []uint64{21}) {
		t.Error("remember kept another report than the last")
	}
	s.remember([]uint64{3}, []uint64{0})
	if _, ok := s.last[3]; ok {
		t.Error("a registration was remembered")
	}
	for k := range uint64(seenCapacity) {
		s.last[k+100] = 1
	}
	s.remember([]uint64{5}, []uint64{50})
	if len(s.last) != 1 || s.changes(keys, []uint64{11, 21}) {
		t.Errorf("past its capacity it holds %d reconcilers, want only the last", len(s.last))
	}
}
