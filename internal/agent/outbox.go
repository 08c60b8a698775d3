package agent

import (
	"sync"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// opKind is what an outbox entry asks of the hub.
type opKind int

const (
	opReport opKind = iota // push a Reconciler (a report or a registration)
	opRetire               // retire one reconciler: its object was deleted
	opResync               // retire every reconciler of this agent not in present
)

// entry is one change for the hub.
type entry struct {
	seq     uint64
	op      opKind
	name    string               // the reconciler (opReport, opRetire)
	doc     *v1alpha1.Reconciler // opReport
	present []model.ReconcilerKey
}

// outbox is the ordered buffer of changes not yet acknowledged by the hub.
// It holds every change, in order, up to its capacity; past it, it keeps
// only the latest change of each reconciler (and the latest resync), still
// in order, and counts what it dropped. It never holds more than the
// larger of its capacity and the number of reconcilers.
type outbox struct {
	mu      sync.Mutex
	items   []entry
	cap     int
	dropped int64
	seq     uint64
	notify  chan struct{}
}

func newOutbox(capacity int) *outbox {
	return &outbox{cap: max(capacity, 1), notify: make(chan struct{}, 1)}
}

// push appends a change.
func (o *outbox) push(e entry) {
	o.mu.Lock()
	o.seq++
	e.seq = o.seq
	o.items = append(o.items, e)
	if len(o.items) > o.cap {
		o.coalesce()
	}
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// coalesce keeps the last entry of each reconciler and the last resync;
// o.mu is held.
func (o *outbox) coalesce() {
	last := map[string]int{}
	lastResync := -1
	for i, e := range o.items {
		if e.op == opResync {
			lastResync = i
		} else {
			last[e.name] = i
		}
	}
	kept := o.items[:0:0]
	for i, e := range o.items {
		if (e.op == opResync && i == lastResync) || (e.op != opResync && last[e.name] == i) {
			kept = append(kept, e)
		}
	}
	o.dropped += int64(len(o.items) - len(kept))
	o.items = kept
}

// peek returns up to n entries from the head.
func (o *outbox) peek(n int) []entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	n = min(n, len(o.items))
	out := make([]entry, n)
	copy(out, o.items[:n])
	return out
}

// ack removes the entries up to seq: the hub has them. Entries sent
// together were contiguous at the head, so whatever of them a coalesce
// since left in place is still at the head.
func (o *outbox) ack(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for n < len(o.items) && o.items[n].seq <= seq {
		n++
	}
	o.items = append(o.items[:0:0], o.items[n:]...)
}

// len is the number of changes waiting.
func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items)
}

// droppedTotal is how many changes coalescing dropped.
func (o *outbox) droppedTotal() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}
