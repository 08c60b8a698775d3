package agent

import (
	"fmt"
	"slices"
	"testing"
)

func names(es []entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%d:%s", e.op, e.name)
		if e.doc != nil {
			out[i] += "@" + e.doc.Spec.Deployment.Status
		}
	}
	return out
}

func TestOutboxKeepsOrderThenCoalesces(t *testing.T) {
	o := newOutbox(4)
	report := func(name, status string) entry {
		d := (&Agent{opts: Options{Host: "h"}}).document(State{Name: name, Commit: "abcdef0", Status: "success"})
		d.Spec.Deployment.Status = status
		return entry{op: opReport, name: name, doc: d}
	}
	o.push(report("a", "in_progress"))
	o.push(report("a", "failure"))
	o.push(report("b", "success"))
	o.push(report("a", "success"))
	// Within capacity every change is kept, in order.
	if got := names(o.peek(10)); !slices.Equal(got, []string{"0:a@in_progress", "0:a@failure", "0:b@success", "0:a@success"}) {
		t.Fatalf("within capacity: %v", got)
	}
	// Past it, the latest change of each reconciler, still in order.
	o.push(entry{op: opRetire, name: "b"})
	if got := names(o.peek(10)); !slices.Equal(got, []string{"0:a@success", "1:b"}) || o.droppedTotal() != 3 {
		t.Fatalf("coalesced: %v, dropped %d", got, o.droppedTotal())
	}
	// Acknowledging what was sent keeps what came after.
	sent := o.peek(1)
	o.push(report("c", "success"))
	o.ack(sent[0].seq)
	if got := names(o.peek(10)); !slices.Equal(got, []string{"1:b", "0:c@success"}) {
		t.Fatalf("after ack: %v", got)
	}
}
