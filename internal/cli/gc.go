package cli

import (
	"os"
	"runtime/debug"
)

// hubGCPercent is the garbage collector's target (GOGC) of the commands
// that ingest, tidemark serve and tidemark bench, unless GOGC is set. A
// batch of 1,000 reports allocates some 11 MB (a quarter of it the
// database driver's encoding of the batch's columns) that is garbage once
// it commits, while the hub keeps a few MB live: at Go's default of 100
// the collector ran every couple of batches. Twice the room between
// collections took the hub's CPU per OTLP report from 36-51 to 30-35 µs
// (make bench) for a higher heap peak. A memory limit (GOMEMLIMIT; the
// Helm chart sets the container's) makes the collector run sooner as the
// heap nears it.
const hubGCPercent = 200

// tuneGC sets hubGCPercent unless the environment chose a GOGC.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(hubGCPercent)
	}
}
