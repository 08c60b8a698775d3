package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// historyMaintenanceLock is the advisory lock one hub holds while it
// changes the partitions of deployment_history; other hubs skip their pass.
const historyMaintenanceLock = 7457386111

// partitionLockTimeout bounds how long partition DDL waits for the locks
// it needs: writers that arrive meanwhile queue behind it, so it gives up
// soon and tries again (partitionLockAttempts times, then at the next
// pass) rather than hold ingest behind a long transaction.
const (
	partitionLockTimeout  = "1s"
	partitionLockAttempts = 3
)

// partitionName matches the monthly partitions that
// deployment_history_add_partition creates.
var partitionName = regexp.MustCompile(`^deployment_history_p(\d{4})_(\d{2})$`)

// partitionMonth is the first instant of the month of a monthly partition
// named name; false for the default partition.
func partitionMonth(name string) (time.Time, bool) {
	m := partitionName.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	year, _ := strconv.Atoi(m[1])
	month, _ := strconv.Atoi(m[2])
	return time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC), true
}

// HistoryPartitions implements store.HistoryPartitioner: the monthly
// partitions of deployment_history, oldest first, with their row counts
// as PostgreSQL estimates them. The default partition is not listed.
func (d *Driver) HistoryPartitions(ctx context.Context) ([]store.HistoryPartition, error) {
	parts, _, err := d.HistoryLayout(ctx, querier{d.pool})
	return parts, err
}

// HistoryLayout implements store.HistoryPartitioner: the monthly
// partitions, oldest first, and whether the default partition holds rows
// (the maintenance moves them into their month's partition). One
// statement.
func (d *Driver) HistoryLayout(ctx context.Context, q store.Querier) ([]store.HistoryPartition, bool, error) {
	rows, err := q.Query(ctx, `SELECT EXISTS (SELECT 1 FROM deployment_history_default), c.relname, greatest(c.reltuples, 0)::bigint
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'deployment_history'::regclass`)
	if err != nil {
		return nil, false, fmt.Errorf("list history partitions: %w", err)
	}
	defer rows.Close()
	var out []store.HistoryPartition
	waiting := false
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&waiting, &name, &n); err != nil {
			return nil, false, err
		}
		if from, ok := partitionMonth(name); ok { // not the default partition
			out = append(out, store.HistoryPartition{Name: name, From: from, To: from.AddDate(0, 1, 0), EstimatedRows: n})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	slices.SortFunc(out, func(a, b store.HistoryPartition) int { return a.From.Compare(b.From) })
	return out, waiting, nil
}

// PartitionDropped implements store.HistoryPartitioner: undefined_table,
// which a statement naming a partition gets once the partition is gone.
func (d *Driver) PartitionDropped(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

// MaintainHistoryPartitions implements store.HistoryPartitioner. It
// creates the partitions of the month of now and of the monthsAhead months
// after it, and of every month that has rows waiting in the default
// partition (moving them in); then, when cutoff is not zero, it drops the
// partitions that end at or before cutoff, whole. Each partition is changed
// in a transaction of its own. One hub at a time does this: when another
// holds the lock, the pass is skipped.
func (d *Driver) MaintainHistoryPartitions(ctx context.Context, now time.Time, monthsAhead int, cutoff time.Time) (store.PartitionChanges, error) {
	var ch store.PartitionChanges
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return ch, err
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, historyMaintenanceLock).Scan(&locked); err != nil {
		return ch, fmt.Errorf("history maintenance lock: %w", err)
	}
	if !locked {
		ch.Skipped = true
		return ch, nil
	}
	defer func() {
		// A session lock outlives transactions: release it before the
		// connection goes back to the pool, or drop the connection.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, historyMaintenanceLock); err != nil {
			_ = conn.Hijack().Close(context.Background())
		}
	}()

	months, err := waitingMonths(ctx, conn)
	if err != nil {
		return ch, err
	}
	start := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i <= monthsAhead; i++ {
		months = append(months, start.AddDate(0, i, 0))
	}
	slices.SortFunc(months, func(a, b time.Time) int { return a.Compare(b) })
	months = slices.CompactFunc(months, func(a, b time.Time) bool { return a.Equal(b) })
	for _, m := range months {
		var name *string
		err := inLockedTx(ctx, conn, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT deployment_history_add_partition($1)`, m).Scan(&name)
		})
		if err != nil {
			return ch, fmt.Errorf("create history partition for %s: %w", m.Format("2006-01"), err)
		}
		if name != nil {
			ch.Created = append(ch.Created, *name)
		}
	}

	if cutoff.IsZero() {
		return ch, nil
	}
	parts, _, err := d.HistoryLayout(ctx, querier{conn})
	if err != nil {
		return ch, err
	}
	for _, p := range parts {
		if p.To.After(cutoff) {
			break // oldest first: every later one ends after the cutoff too
		}
		err := inLockedTx(ctx, conn, func(tx pgx.Tx) error {
			// The name comes from the catalog and matched partitionName;
			// DDL takes no parameters.
			_, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{p.Name}.Sanitize())
			return err
		})
		if err != nil {
			return ch, fmt.Errorf("drop history partition %s: %w", p.Name, err)
		}
		ch.Dropped = append(ch.Dropped, p.Name)
	}
	return ch, nil
}

// waitingMonths lists the months (UTC) of the rows in the default
// partition.
func waitingMonths(ctx context.Context, conn *pgxpool.Conn) ([]time.Time, error) {
	rows, err := conn.Query(ctx, `SELECT DISTINCT date_trunc('month', changed_at AT TIME ZONE 'UTC') FROM deployment_history_default`)
	if err != nil {
		return nil, fmt.Errorf("read the default history partition: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var m time.Time
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		out = append(out, time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC))
	}
	return out, rows.Err()
}

// inLockedTx runs fn in a transaction on conn whose lock waits are
// bounded, again after a pause when a lock was not granted in time.
func inLockedTx(ctx context.Context, conn *pgxpool.Conn, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+partitionLockTimeout+`'`); err != nil {
				return err
			}
			return fn(tx)
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" || attempt == partitionLockAttempts { // lock_not_available
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
}
