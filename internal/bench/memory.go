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

// PrintMemory prints the hub's memory from `from` reports on: the highest
// RSS and Go heap of each of stages stages of the history (StagePeaks),
// then the spread of every sample and of the stages' highest RSS.
func PrintMemory(out io.Writer, samples []MemorySample, from int64, stages int) {
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
	peaks := StagePeaks(kept, stages)
	if peaks != nil {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "status changes\thighest RSS\thighest Go heap in use\treads of every report")
		for _, p := range peaks {
			fmt.Fprintf(tw, "%d-%d\t%d MiB\t%d MiB\t%d\n", p.From, p.To, p.RSS>>20, p.HeapInuse>>20, p.Reads)
		}
		tw.Flush()
	}
	rlo, rhi, rp := spread(kept, func(s MemorySample) uint64 { return s.RSS })
	hlo, hhi, hp := spread(kept, func(s MemorySample) uint64 { return s.HeapInuse })
	fmt.Fprintf(out, "memory from %d to %d status changes (%d samples, %d reads of every report): RSS %d-%d MiB (spread %.1f%%), Go heap in use %d-%d MiB (spread %.1f%%), sample by sample\n",
		kept[0].Reports, kept[len(kept)-1].Reports, len(kept), kept[len(kept)-1].Reads-kept[0].Reads, rlo>>20, rhi>>20, rp, hlo>>20, hhi>>20, hp)
	if peaks != nil {
		plo, phi, pp := spread(peaks, func(p Stage) uint64 { return p.RSS })
		fmt.Fprintf(out, "highest RSS of each of %d stages of the history: %d-%d MiB (spread %.1f%%)\n", len(peaks), plo>>20, phi>>20, pp)
	}
}

// spread is the lowest and highest of get over xs and (hi - lo) / lo.
func spread[T any](xs []T, get func(T) uint64) (lo, hi uint64, pct float64) {
	lo, hi = get(xs[0]), get(xs[0])
	for _, x := range xs {
		lo, hi = min(lo, get(x)), max(hi, get(x))
	}
	if lo > 0 {
		pct = 100 * float64(hi-lo) / float64(lo)
	}
	return lo, hi, pct
}

// Stage is the hub's memory over one stage of the history: the highest
// RSS and Go heap sampled while the status changes stored went from From
// to To.
type Stage struct {
	From, To       int64
	RSS, HeapInuse uint64
	Reads          int64 // reads of every report done by the stage's end
}

// StagePeaks splits the samples' history (the status changes from the
// first sample's to the last's) into n equal stages and gives each one's
// highest RSS and heap; nil unless every stage has at least 3 samples. A
// single sample falls anywhere in the garbage collector's cycle, so the
// spread of all samples is its sawtooth whatever the store holds; a
// stage's highest RSS is what the hub needed at that point of the
// history, and grows only if the hub's memory follows what was stored.
func StagePeaks(samples []MemorySample, n int) []Stage {
	if n < 1 || len(samples) == 0 {
		return nil
	}
	first, last := samples[0].Reports, samples[len(samples)-1].Reports
	stages := make([]Stage, n)
	counts := make([]int, n)
	for i := range stages {
		stages[i].From = first + (last-first)*int64(i)/int64(n)
		stages[i].To = first + (last-first)*int64(i+1)/int64(n)
	}
	for _, s := range samples {
		i := n - 1
		if last > first {
			i = min(n-1, int((s.Reports-first)*int64(n)/(last-first)))
		}
		st := &stages[i]
		st.RSS, st.HeapInuse, st.Reads = max(st.RSS, s.RSS), max(st.HeapInuse, s.HeapInuse), max(st.Reads, s.Reads)
		counts[i]++
	}
	for _, c := range counts {
		if c < 3 {
			return nil
		}
	}
	return stages
}
