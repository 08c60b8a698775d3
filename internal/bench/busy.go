package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// Busy is ingest running beside the reports, so that they can be timed on
// a store that is being written: one writer has the fleet's reconcilers
// report their current commit in progress and then success again (a
// re-reconcile), host slice after host slice, at a set rate. Every report
// is a change (a status change of a deployment, a status-history row, the
// maintained counts and outcomes), and the fleet is converged again after
// each batch; commits do not change, so drift is not rewritten.
type Busy struct {
	cancel  context.CancelFunc
	done    chan struct{}
	start   time.Time
	reports atomic.Int64 // stored
	changed atomic.Int64 // of which changed something (all, unless a report was lost)
	err     error
}

// StartBusy starts the writer at rate reports a second (at most: a slower
// store holds it back), in the spec's batches.
func StartBusy(ctx context.Context, ing *ingest.Service, s Spec, rate int) *Busy {
	ctx, cancel := context.WithCancel(ctx)
	b := &Busy{cancel: cancel, done: make(chan struct{}), start: time.Now()}
	hostsPerBatch := max(1, s.Batch/(2*max(1, s.ReconcilersPerHost)))
	go func() {
		defer close(b.done)
		for from := 0; ctx.Err() == nil; from = (from + hostsPerBatch) % s.Hosts {
			var batch []model.Report
			for _, st := range []model.Status{model.StatusInProgress, model.StatusSuccess} {
				for h := from; h < min(s.Hosts, from+hostsPerBatch); h++ {
					for k := range s.ReconcilersPerHost {
						batch = append(batch, s.report(h, k, s.History-1, st))
					}
				}
			}
			// Wait until the rate allows this batch.
			due := b.start.Add(time.Duration(float64(b.reports.Load()+int64(len(batch))) / float64(rate) * float64(time.Second)))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(due)):
			}
			res, err := ing.ApplyReports(context.WithoutCancel(ctx), batch)
			if err != nil {
				b.err = err
				return
			}
			b.reports.Add(int64(len(batch)))
			for _, r := range res {
				if r.Changed {
					b.changed.Add(1)
				}
			}
		}
	}()
	return b
}

// Stop stops the writer after its batch in flight and returns how many
// reports it stored, how many of them changed something, and the rate.
func (b *Busy) Stop() (reports, changed int, perSecond float64, err error) {
	b.cancel()
	<-b.done
	n := b.reports.Load()
	return int(n), int(b.changed.Load()), float64(n) / time.Since(b.start).Seconds(), b.err
}
