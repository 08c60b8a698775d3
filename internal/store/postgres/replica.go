package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// LogPosition implements store.LogPositioner: the primary's current
// write position in its write-ahead log, in bytes.
func (d *Driver) LogPosition(ctx context.Context) (int64, error) {
	var pos int64
	err := d.pool.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&pos)
	if err != nil {
		return 0, fmt.Errorf("primary log position: %w", err)
	}
	return pos, nil
}

// Replica is a store.Replica over a pgx pool connected to a streaming
// replica.
type Replica struct {
	pool *pgxpool.Pool
	name string
}

// OpenReplica prepares a pool for the read replica at url. It does not
// connect: a replica that is down when the hub starts is measured as such
// and reads go to the primary until it answers.
func OpenReplica(url string) (*Replica, error) {
	cfg, err := parseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: read replica URL: %w", err)
	}
	// A replica refuses writes anyway; this says so before it is asked.
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg = readConfig(cfg)
	cc := cfg.ConnConfig
	name := cc.Host + ":" + strconv.Itoa(int(cc.Port)) + "/" + cc.Database
	if strings.HasPrefix(cc.Host, "/") {
		name = cc.Host + "/" + cc.Database // a Unix socket directory
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: read replica %s: %w", name, err)
	}
	return &Replica{pool: pool, name: name}, nil
}

// Name implements store.Replica: host:port/database.
func (r *Replica) Name() string { return r.name }

// Close implements store.Replica.
func (r *Replica) Close() error { r.pool.Close(); return nil }

// ReplayStatus implements store.Replica.
func (r *Replica) ReplayStatus(ctx context.Context) (store.ReplayStatus, error) {
	var st store.ReplayStatus
	var recovering bool
	var pos *int64
	var age *float64
	err := r.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint,
		extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8`).Scan(&recovering, &pos, &age)
	if err != nil {
		return st, fmt.Errorf("replay status: %w", err)
	}
	if !recovering || pos == nil {
		return st, errors.New("not a replica: the server is not replaying a primary's log (promoted, or a primary)")
	}
	st.Position = *pos
	if age != nil {
		st.LastReplayAge, st.Replayed = time.Duration(*age*float64(time.Second)), true
	}
	return st, nil
}

// Unavailable implements store.Replica: connection failures, a server
// shutting down or starting, too many connections, and queries cancelled
// because they conflicted with replay.
func (r *Replica) Unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "57P"), // shutdown, crash, cannot connect now
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources
			pgErr.Code == "40001":                // conflict with recovery
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// ReadForValues implements store.ValueReader on the replica.
func (r *Replica) ReadForValues(ctx context.Context, fn func(store.Querier) error) error {
	return readForValues(ctx, r.pool, fn)
}

// Exec implements store.Querier.
func (r *Replica) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return querier{r.pool}.Exec(ctx, sql, args...)
}

// QueryRow implements store.Querier.
func (r *Replica) QueryRow(ctx context.Context, sql string, args ...any) store.Row {
	return querier{r.pool}.QueryRow(ctx, sql, args...)
}

// Query implements store.Querier.
func (r *Replica) Query(ctx context.Context, sql string, args ...any) (store.Rows, error) {
	return querier{r.pool}.Query(ctx, sql, args...)
}
