package ingest

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
	"sync"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// seenCapacity bounds the reconcilers whose last report a Service
// remembers (about 20 bytes each); past it, it forgets them all and starts
// again.
const seenCapacity = 1 << 20

// seenReports remembers, for each reconciler, its id and a digest of the
// last report this hub stored, or found stored, for it. A batch holding a
// report that differs from it goes straight to its transaction instead of
// first reading the reconcilers to find out whether anything changed (that
// read pays off for replays, which are the common case, not for batches of
// changes); a batch whose reconcilers all have an id finds them by id
// rather than by name.
//
// It is a hint and never decides what is stored: a wrong digest (another
// hub changed the reconciler, two digests collide, the memory was cleared)
// costs either the read that is skipped today or, for a replay taken for a
// change, the transaction's row locks; an id that names another reconciler
// (two digests collide) or none is found out by the read, which then looks
// the reconciler up by name. What the transaction writes is worked out from
// the stored state either way.
type seenReports struct {
	seed maphash.Seed
	mu   sync.Mutex
	last map[uint64]seen // by reconciler digest
}

// seen is what a Service remembers of a reconciler.
type seen struct {
	report uint64 // the last report's digest; 0: none
	id     int64  // 0: unknown
}

func newSeenReports() *seenReports {
	return &seenReports{seed: maphash.MakeSeed(), last: map[uint64]seen{}}
}

// digests are the reconcilers' and the reports' digests (eks: the reports'
// endpoint keys). A registration's report digest is 0: it says nothing
// about the reconciler's deployment.
func (s *seenReports) digests(rs []model.Report, eks []string) (keys, reports []uint64) {
	keys, reports = make([]uint64, len(rs)), make([]uint64, len(rs))
	var h maphash.Hash
	h.SetSeed(s.seed)
	for i, r := range rs {
		h.Reset()
		field(&h, r.Host)
		field(&h, r.Reconciler)
		keys[i] = h.Sum64()
		if r.Registered() {
			continue
		}
		// What unchanged compares, but for the times.
		for _, f := range []string{r.ReconcilerType, eks[i], r.Source, r.HostType, r.Commit, string(r.Status), r.Message} {
			field(&h, f)
		}
		for _, k := range slices.Sorted(maps.Keys(r.HostLabels)) {
			field(&h, k)
			field(&h, r.HostLabels[k])
		}
		reports[i] = h.Sum64() | 1 // never 0
	}
	return keys, reports
}

// field writes a length-prefixed string, so that fields cannot run into
// each other.
func field(h *maphash.Hash, s string) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.WriteString(s)
}

// changes reports whether some report certainly differs from the last one
// seen for its reconciler. A reconciler never seen, or a registration,
// might repeat what is stored: only reading tells.
func (s *seenReports) changes(keys, reports []uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range keys {
		if reports[i] == 0 {
			continue
		}
		if last := s.last[k].report; last != 0 && last != reports[i] {
			return true
		}
	}
	return false
}

// ids returns the reconcilers' ids, or nil unless all are known.
func (s *seenReports) ids(keys []uint64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, len(keys))
	for i, k := range keys {
		if ids[i] = s.last[k].id; ids[i] == 0 {
			return nil
		}
	}
	return ids
}

// remember records the reports as the last seen for their reconcilers, in
// order, with their ids (0: unknown).
func (s *seenReports) remember(keys, reports []uint64, ids []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.last)+len(keys) > seenCapacity {
		clear(s.last)
	}
	for i, k := range keys {
		e := s.last[k]
		if reports[i] != 0 {
			e.report = reports[i]
		}
		if ids[i] != 0 {
			e.id = ids[i]
		}
		s.last[k] = e
	}
}
