package bench

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// The memory watch follows a generation: samples count the reports stored
// so far, reads of every report happen meanwhile, and the summary covers
// the samples from the given count on.
func TestWatchMemory(t *testing.T) {
	ctx := context.Background()
	st := testenv.NewStore(t, "sqlite")
	var reported atomic.Int64
	w := WatchMemory(ctx, reports.New(st), small, &reported, 10*time.Millisecond)
	res, err := GenerateCounting(ctx, ingest.New(st), small, nil, &reported)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	samples := w.Stop()
	if len(samples) < 2 {
		t.Fatalf("%d samples", len(samples))
	}
	last := samples[len(samples)-1]
	if last.Reports != int64(res.Reports) || last.Reads == 0 || last.RSS == 0 || last.HeapInuse == 0 {
		t.Errorf("last sample %+v, want %d reports, some reads, RSS and heap", last, res.Reports)
	}
	for i := 1; i < len(samples); i++ {
		if samples[i].Reports < samples[i-1].Reports || samples[i].Reads < samples[i-1].Reads {
			t.Errorf("samples go back: %+v then %+v", samples[i-1], samples[i])
		}
	}
	var out bytes.Buffer
	PrintMemory(&out, samples, last.Reports, 10)
	if s := out.String(); !strings.Contains(s, "memory from ") || !strings.Contains(s, "(spread ") {
		t.Errorf("summary:\n%s", s)
	}
	out.Reset()
	PrintMemory(&out, samples, last.Reports+1, 10)
	if !strings.Contains(out.String(), "no sample after") {
		t.Errorf("nothing to summarize:\n%s", out.String())
	}
}

// The stages' highest RSS see memory that follows the store, not the
// collector's sawtooth.
func TestStagePeaks(t *testing.T) {
	const mib = 1 << 20
	series := func(rss func(i int) uint64) []MemorySample {
		out := make([]MemorySample, 100)
		for i := range out {
			out[i] = MemorySample{Reports: int64(i) * 1000, RSS: rss(i), Reads: int64(i)}
		}
		return out
	}
	// A sawtooth between 60 and 80 MiB: a 33 % spread sample by sample,
	// none between the stages.
	sawtooth := series(func(i int) uint64 { return uint64(60+5*(i%5)) * mib })
	peaks := StagePeaks(sawtooth, 10)
	if len(peaks) != 10 {
		t.Fatalf("%d stages, want 10", len(peaks))
	}
	for i, p := range peaks {
		if p.RSS != 80*mib || p.From != int64(i)*9900 || p.To != int64(i+1)*9900 {
			t.Errorf("stage %d: %d-%d status changes, highest RSS %d MiB; want %d-%d, 80 MiB", i, p.From, p.To, p.RSS>>20, i*9900, (i+1)*9900)
		}
	}
	if peaks[9].Reads != 99 {
		t.Errorf("last stage: %d reads by its end, want 99", peaks[9].Reads)
	}
	var out bytes.Buffer
	PrintMemory(&out, sawtooth, 0, 10)
	if s := out.String(); !strings.Contains(s, "RSS 60-80 MiB (spread 33.3%)") || !strings.Contains(s, "highest RSS of each of 10 stages of the history: 80-80 MiB (spread 0.0%)") ||
		!slices.ContainsFunc(strings.Split(s, "\n"), func(l string) bool { return strings.Join(strings.Fields(l), " ") == "89100-99000 80 MiB 0 MiB 99" }) {
		t.Errorf("sawtooth summary:\n%s", s)
	}
	// The same sawtooth on memory that grows with the store.
	growing := StagePeaks(series(func(i int) uint64 { return uint64(60+5*(i%5)+i/2) * mib }), 10)
	if _, _, pct := spread(growing, func(p Stage) uint64 { return p.RSS }); pct < 40 {
		t.Errorf("growing: stages spread %.1f%%, want the growth seen (about +55%%)", pct)
	}
	if StagePeaks(sawtooth[:29], 10) != nil {
		t.Error("29 samples in 10 stages: want no figure (fewer than 3 a stage)")
	}
}
