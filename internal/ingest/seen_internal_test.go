package ingest

import (
	"context"
	"strings"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
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
		k, d := s.digests([]model.Report{r}, indexReports([]model.Report{r}).endpoints)
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
// certainly a change; what is forgotten might be a replay. Ids are given
// only when every reconciler's is known.
func TestSeenChanges(t *testing.T) {
	s := newSeenReports()
	keys, reports := []uint64{1, 2}, []uint64{10, 20}
	if s.changes(keys, reports) || s.ids(keys) != nil {
		t.Error("reconcilers never seen: a change, or known ids")
	}
	s.remember(keys, reports, []int64{100, 0})
	if s.changes(keys, reports) {
		t.Error("the reports last seen: a change")
	}
	if s.ids(keys) != nil {
		t.Error("ids given with one unknown")
	}
	if !s.changes(keys, []uint64{10, 21}) {
		t.Error("a report that differs: not a change")
	}
	if s.changes(keys, []uint64{10, 0}) {
		t.Error("a registration: a change")
	}
	s.remember([]uint64{2, 2}, []uint64{21, 22}, []int64{0, 200}) // in order: the last one stays
	if s.changes([]uint64{2}, []uint64{22}) || !s.changes([]uint64{2}, []uint64{21}) {
		t.Error("remember kept another report than the last")
	}
	if ids := s.ids(keys); len(ids) != 2 || ids[0] != 100 || ids[1] != 200 {
		t.Errorf("ids %v, want [100 200]", ids)
	}
	s.remember([]uint64{3}, []uint64{0}, []int64{300})
	if e := s.last[3]; e.report != 0 || e.id != 300 {
		t.Errorf("a registration is remembered as %+v, want its id only", e)
	}
	s.remember([]uint64{1}, []uint64{0}, []int64{0})
	if e := s.last[1]; e.report != 10 || e.id != 100 {
		t.Errorf("a registration of a known reconciler left %+v, want it as it was", e)
	}
	for k := range uint64(seenCapacity) {
		s.last[k+100] = seen{report: 1}
	}
	s.remember([]uint64{5}, []uint64{50}, []int64{500})
	if len(s.last) != 1 || s.changes(keys, []uint64{11, 21}) || s.ids(keys) != nil {
		t.Errorf("past its capacity it holds %d reconcilers, want only the last", len(s.last))
	}
}

// An id remembered for the wrong reconciler (two digests collide), or for
// none, costs only the lookup by name: the reports land on their own
// reconcilers.
func TestSeenWrongIDs(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		s := New(st)
		ep, _ := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "apps")
		report := func(host, commit string) model.Report {
			return model.Report{Host: host, Reconciler: "flux-system/apps", ReconcilerType: "flux", Endpoint: ep,
				Commit: commit, Status: model.StatusSuccess}
		}
		a, b := report("aks-a", strings.Repeat("a", 40)), report("aks-b", strings.Repeat("b", 40))
		if _, err := s.ApplyReports(ctx, []model.Report{a, b}); err != nil {
			t.Fatal(err)
		}
		digests, _ := s.seen.digests([]model.Report{a, b}, indexReports([]model.Report{a, b}).endpoints)
		ids := s.seen.ids(digests)
		if ids == nil || ids[0] == ids[1] {
			t.Fatalf("ids %v after storing two reconcilers", ids)
		}
		for name, wrong := range map[string]int64{"another reconciler's": ids[1], "no reconciler's": ids[0] + ids[1] + 1000} {
			s.seen.last[digests[0]] = seen{id: wrong}
			a.Commit = strings.Repeat("c", 40)
			if name != "another reconciler's" {
				a.Commit = strings.Repeat("d", 40)
			}
			if _, err := s.ApplyReports(ctx, []model.Report{a}); err != nil {
				t.Fatal(err)
			}
			for _, want := range []model.Report{a, b} {
				got, err := store.GetReconcilerState(ctx, st.Read(), want.Host, want.Reconciler)
				if err != nil {
					t.Fatal(err)
				}
				if got.Commit != want.Commit {
					t.Errorf("with %s id: %s runs %s, want %s", name, want.Host, got.Commit, want.Commit)
				}
			}
			if got := s.seen.ids(digests[:1]); len(got) != 1 || got[0] != ids[0] {
				t.Errorf("with %s id: remembered %v, want %d", name, got, ids[0])
			}
		}
	})
}
