package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// MemorySample is the hub's memory at one point of a run.
type MemorySample struct {
	Reports   int64  // reports stored so far (each one a status change)
	RSS       uint64 // resident set size, bytes (0 where /proc is missing)
	HeapInuse uint64 // Go heap in use, bytes
	Reads     int64  // report reads done so far
}

// MemoryWatch reads every report in a loop and samples the process's
// memory while something else (a generation) grows the store: whether the
// hub's memory stays flat as history grows and reports are read.
type MemoryWatch struct {
	reported *atomic.Int64
	reads    atomic.Int64
	mu       sync.Mutex
	samples  []MemorySample
	stop     context.CancelFunc
	done     sync.WaitGroup
}

// WatchMemory starts reading every report of rep in a loop and sampling
// memory every interval, with the count reported holds at the time, until
// Stop.
func WatchMemory(ctx context.Context, rep *reports.Service, s Spec, reported *atomic.Int64, interval time.Duration) *MemoryWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &MemoryWatch{reported: reported, stop: cancel}
	w.done.Add(2)
	go func() {
		defer w.done.Done()
		for ctx.Err() == nil {
			if _, err := Queries(ctx, rep, s, 1); err == nil {
				w.reads.Add(1)
			}
		}
	}()
	go func() {
		defer w.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w
}

func (w *MemoryWatch) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := MemorySample{Reports: w.reported.Load(), RSS: residentBytes(), HeapInuse: ms.HeapInuse, Reads: w.reads.Load()}
	w.mu.Lock()
	w.samples = append(w.samples, s)
	w.mu.Unlock()
}

// Stop ends the watch, takes a last sample and returns them all.
func (w *MemoryWatch) Stop() []MemorySample {
	w.stop()
	w.done.Wait()
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples
}

// residentBytes is the process's resident set size from /proc (Linux).
func residentBytes() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// PrintMemory prints the samples taken from `from` reports on (at most
// rows of them, evenly spread) and the spread of RSS and heap over them:
// (max - min) / min.
func PrintMemory(out io.Writer, samples []MemorySample, from int64, rows int) {
	var kept []MemorySample
	for _, s := range samples {
		if s.Reports >= from {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		fmt.Fprintf(out, "memory: no sample after %d reports\n", from)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "status changes\tRSS\tGo heap in use\treads of every report")
	step := max(1, len(kept)/max(1, rows))
	for i, s := range kept {
		if i%step == 0 || i == len(kept)-1 {
			fmt.Fprintf(tw, "%d\t%d MiB\t%d MiB\t%d\n", s.Reports, s.RSS>>20, s.HeapInuse>>20, s.Reads)
		}
	}
	tw.Flush()
	spread := func(get func(MemorySample) uint64) (lo, hi uint64, pct float64) {
		lo, hi = get(kept[0]), get(kept[0])
		for _, s := range kept {
			lo, hi = min(lo, get(s)), max(hi, get(s))
		}
		if lo > 0 {
			pct = 100 * float64(hi-lo) / float64(lo)
		}
		return lo, hi, pct
	}
	rlo, rhi, rp := spread(func(s MemorySample) uint64 { return s.RSS })
	hlo, hhi, hp := spread(func(s MemorySample) uint64 { return s.HeapInuse })
	fmt.Fprintf(out, "memory from %d to %d status changes (%d samples, %d reads of every report): RSS %d-%d MiB (spread %.1f%%), Go heap in use %d-%d MiB (spread %.1f%%)\n",
		kept[0].Reports, kept[len(kept)-1].Reports, len(kept), kept[len(kept)-1].Reads-kept[0].Reads, rlo>>20, rhi>>20, rp, hlo>>20, hhi>>20, hp)
	if first, last, pct := PeakGrowth(kept); first > 0 {
		fmt.Fprintf(out, "peak RSS over the first tenth of the samples %d MiB, over the last tenth %d MiB (%+.1f%%)\n", first>>20, last>>20, pct)
	}
}

// PeakGrowth compares the highest RSS over the first tenth of the samples
// with the highest over the last tenth (at least 3 samples each, or none:
// first 0). Unlike the spread of all samples, which the garbage
// collector's sawtooth widens whatever the store holds, it grows only if
// the hub's memory follows what was stored in between.
func PeakGrowth(samples []MemorySample) (first, last uint64, pct float64) {
	n := len(samples) / 10
	if n < 3 {
		return 0, 0, 0
	}
	peak := func(ss []MemorySample) uint64 {
		var p uint64
		for _, s := range ss {
			p = max(p, s.RSS)
		}
		return p
	}
	first, last = peak(samples[:n]), peak(samples[len(samples)-n:])
	if first > 0 {
		pct = 100 * (float64(last) - float64(first)) / float64(first)
	}
	return first, last, pct
}
