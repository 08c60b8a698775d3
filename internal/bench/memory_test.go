package bench

import (
	"bytes"
	"context"
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
	if s := out.String(); !strings.Contains(s, "status changes  RSS") || !strings.Contains(s, "memory from ") || !strings.Contains(s, "(spread ") {
		t.Errorf("summary:\n%s", s)
	}
	out.Reset()
	PrintMemory(&out, samples, last.Reports+1, 10)
	if !strings.Contains(out.String(), "no sample after") {
		t.Errorf("nothing to summarize:\n%s", out.String())
	}
}

// PeakGrowth sees memory that follows the store, not the collector's
// sawtooth.
func TestPeakGrowth(t *testing.T) {
	const mib = 1 << 20
	series := func(rss func(i int) uint64) []MemorySample {
		out := make([]MemorySample, 100)
		for i := range out {
			out[i] = MemorySample{Reports: int64(i) * 1000, RSS: rss(i)}
		}
		return out
	}
	// A sawtooth between 60 and 80 MiB: a 33 % spread, no growth.
	if first, last, pct := PeakGrowth(series(func(i int) uint64 { return uint64(60+5*(i%5)) * mib })); first != 80*mib || last != 80*mib || pct != 0 {
		t.Errorf("sawtooth: %d → %d MiB (%+.1f%%), want 80 → 80 (+0%%)", first>>20, last>>20, pct)
	}
	// The same sawtooth on memory that grows with the store.
	if _, _, pct := PeakGrowth(series(func(i int) uint64 { return uint64(60+5*(i%5)+i/2) * mib })); pct < 40 {
		t.Errorf("growing: %+.1f%%, want the growth seen (about +55%%)", pct)
	}
	if first, _, _ := PeakGrowth(series(func(int) uint64 { return mib })[:29]); first != 0 {
		t.Error("29 samples: want no figure (fewer than 3 per tenth)")
	}
}
