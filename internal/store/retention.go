package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// HistoryPartition is one month of deployment_history on an engine that
// partitions it by time: the rows with From <= changed_at < To.
type HistoryPartition struct {
	Name     string
	From, To time.Time
	// EstimatedRows is the engine's estimate (from its statistics).
	EstimatedRows int64
}

// PartitionChanges says what a pass of partition maintenance did.
type PartitionChanges struct {
	Created, Dropped []string
	// Skipped is true when another hub was maintaining the partitions.
	Skipped bool
}

// HistoryPartitioner is implemented by drivers that keep deployment_history
// in monthly partitions (PostgreSQL). Retention drops whole partitions
// there; on other engines it deletes rows.
type HistoryPartitioner interface {
	// MaintainHistoryPartitions creates the partitions of now's month and
	// of the monthsAhead months after it (and of any month whose rows wait
	// in the default partition), then, when cutoff is not zero, drops the
	// partitions that end at or before cutoff.
	MaintainHistoryPartitions(ctx context.Context, now time.Time, monthsAhead int, cutoff time.Time) (PartitionChanges, error)
	// HistoryPartitions lists the monthly partitions, oldest first.
	HistoryPartitions(ctx context.Context) ([]HistoryPartition, error)
	// HistoryLayout reads through q the monthly partitions, oldest first,
	// and whether rows wait in the default partition.
	HistoryLayout(ctx context.Context, q Querier) (parts []HistoryPartition, waiting bool, err error)
	// PartitionDropped reports whether err is a statement's that named a
	// partition dropped meanwhile.
	PartitionDropped(err error) bool
}

// Defaults of a HistoryPolicy.
const (
	DefaultHistoryMaintenanceInterval = time.Hour
	DefaultHistoryMonthsAhead         = 3
	// DefaultHistoryPruneChunk bounds the rows one transaction deletes on
	// engines without partitions, so that ingest never waits long behind
	// retention.
	DefaultHistoryPruneChunk = 5000
)

// HistoryPolicy says how long status history is kept and how it is looked
// after.
type HistoryPolicy struct {
	// Retention is how long status changes are kept; zero keeps
	// everything. On PostgreSQL a month is dropped once all of it is older
	// than Retention, so up to a month more is kept.
	Retention time.Duration
	// Interval is the time between passes (DefaultHistoryMaintenanceInterval
	// when zero).
	Interval time.Duration
	// MonthsAhead is how many months of partitions are prepared after the
	// current one (DefaultHistoryMonthsAhead when zero).
	MonthsAhead int
	// PruneChunk is the most rows one transaction deletes where history is
	// not partitioned (DefaultHistoryPruneChunk when zero).
	PruneChunk int
}

func (p HistoryPolicy) withDefaults() HistoryPolicy {
	if p.Interval <= 0 {
		p.Interval = DefaultHistoryMaintenanceInterval
	}
	if p.MonthsAhead <= 0 {
		p.MonthsAhead = DefaultHistoryMonthsAhead
	}
	if p.PruneChunk <= 0 {
		p.PruneChunk = DefaultHistoryPruneChunk
	}
	return p
}

// HistoryMaintenance says what one pass of MaintainHistory did.
type HistoryMaintenance struct {
	PartitionChanges
	// Cutoff is the retention limit applied (zero: none).
	Cutoff time.Time
	// RowsDeleted counts rows deleted where history is not partitioned.
	RowsDeleted int64
	Took        time.Duration
}

// MaintainHistory makes one pass over the status history at time now:
// on PostgreSQL it prepares partitions ahead and drops the months older
// than the retention, whole; elsewhere it deletes the rows older than the
// retention, PruneChunk rows per transaction. Reports that outlive the
// history (Environment History, DORA) read what ingest maintains, never
// deployment_history, so retention does not change them.
func (s *Store) MaintainHistory(ctx context.Context, p HistoryPolicy, now time.Time) (HistoryMaintenance, error) {
	if p.Retention < 0 {
		return HistoryMaintenance{}, fmt.Errorf("history retention %s: give a positive duration, or 0 to keep everything", p.Retention)
	}
	p = p.withDefaults()
	start := time.Now()
	var m HistoryMaintenance
	if p.Retention > 0 {
		m.Cutoff = now.Add(-p.Retention).UTC()
	}
	var err error
	if hp, ok := s.d.(HistoryPartitioner); ok {
		m.PartitionChanges, err = hp.MaintainHistoryPartitions(ctx, now, p.MonthsAhead, m.Cutoff)
	} else if !m.Cutoff.IsZero() {
		m.RowsDeleted, err = s.pruneHistoryRows(ctx, m.Cutoff, p.PruneChunk)
	}
	if err == nil && (len(m.Dropped) > 0 || m.RowsDeleted > 0) {
		// What the history says of the past changed: the series follow.
		err = MarkAllSeriesDirty(ctx, s.d)
	}
	m.Took = time.Since(start)
	return m, err
}

// pruneHistoryRows deletes the status changes before cutoff, chunk rows
// per transaction, oldest first (the changed_at index finds them).
func (s *Store) pruneHistoryRows(ctx context.Context, cutoff time.Time, chunk int) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.Tx(ctx, func(q Querier) error {
			var err error
			n, err = q.Exec(ctx, `DELETE FROM deployment_history WHERE id IN (
				SELECT id FROM deployment_history WHERE changed_at < $1 ORDER BY changed_at LIMIT $2)`, cutoff, chunk)
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("prune history before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		if n < int64(chunk) {
			return total, nil
		}
	}
}

// HistoryPartitions lists the monthly partitions of the status history,
// oldest first; nil on engines that do not partition it.
func (s *Store) HistoryPartitions(ctx context.Context) ([]HistoryPartition, error) {
	if hp, ok := s.d.(HistoryPartitioner); ok {
		return hp.HistoryPartitions(ctx)
	}
	return nil, nil
}

// HistoryLayout reads through q (a reader's querier, so that it sees what
// the reader's statements see) the monthly partitions of the status
// history, oldest first, and whether rows wait in the default partition;
// no partitions on engines without them. A reader that probes the latest
// change before a time can then ask the partitions one by one, newest
// first, and stop at the first that has one.
func (s *Store) HistoryLayout(ctx context.Context, q Querier) (parts []HistoryPartition, waiting bool, err error) {
	if hp, ok := s.d.(HistoryPartitioner); ok {
		return hp.HistoryLayout(ctx, q)
	}
	return nil, false, nil
}

// PartitionDropped reports whether err comes from a read that named a
// history partition (listed by HistoryLayout) that retention dropped
// before the read ran: listing the partitions again and retrying answers
// it.
func (s *Store) PartitionDropped(err error) bool {
	hp, ok := s.d.(HistoryPartitioner)
	return ok && err != nil && hp.PartitionDropped(err)
}

// RunHistoryMaintenance calls MaintainHistory, then AnalyzeSmallTables,
// at once and then every p.Interval until ctx ends. A failed pass is
// logged and tried again at the next tick. Between passes, every
// StatisticsCheckInterval, it refreshes the statistics of the small tables
// that changed much since they were last analyzed (RefreshStatistics), and
// every SeriesRebuildInterval it recomputes the endpoint series marked
// dirty (RebuildSeries).
func (s *Store) RunHistoryMaintenance(ctx context.Context, p HistoryPolicy, log *slog.Logger) {
	p = p.withDefaults()
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	stats := time.NewTicker(StatisticsCheckInterval)
	defer stats.Stop()
	series := time.NewTicker(SeriesRebuildInterval)
	defer series.Stop()
	for {
		m, err := s.MaintainHistory(ctx, p, time.Now())
		if err := s.AnalyzeSmallTables(ctx); err != nil && ctx.Err() == nil {
			log.Error("planner statistics not refreshed; trying again at the next pass", "err", err, "next", p.Interval)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("history maintenance failed; trying again at the next pass", "err", err, "next", p.Interval)
		case len(m.Created) > 0 || len(m.Dropped) > 0 || m.RowsDeleted > 0:
			log.Info("history maintained", "partitionsCreated", m.Created, "partitionsDropped", m.Dropped,
				"rowsDeleted", m.RowsDeleted, "cutoff", m.Cutoff, "took", m.Took.Round(time.Millisecond))
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-stats.C:
				if tables, err := s.RefreshStatistics(ctx); err != nil && ctx.Err() == nil {
					log.Warn("planner statistics not checked; trying again", "err", err, "next", StatisticsCheckInterval)
				} else if len(tables) > 0 {
					log.Debug("planner statistics refreshed", "tables", tables)
				}
			case <-series.C:
				s.rebuildDirtySeries(ctx, log)
			case <-t.C:
				waiting = false
			}
		}
	}
}

// SeriesRebuildInterval is how often the hub looks for endpoint series to
// recompute: a late report leaves its endpoint on the history's probes
// for about that long.
const SeriesRebuildInterval = 2 * time.Second

// rebuildDirtySeries recomputes the endpoint series marked dirty, up to a
// thousand a tick (the rest wait for the next, so that the loop's other
// work runs even while ingest marks endpoints as fast as they are
// rebuilt).
func (s *Store) rebuildDirtySeries(ctx context.Context, log *slog.Logger) {
	start := time.Now()
	n, err := s.RebuildSeries(ctx, 1000)
	if err != nil && ctx.Err() == nil {
		log.Warn("endpoint series not rebuilt; trying again", "err", err, "next", SeriesRebuildInterval)
	}
	if n > 0 {
		log.Debug("endpoint series rebuilt", "endpoints", n, "took", time.Since(start).Round(time.Millisecond))
	}
}
