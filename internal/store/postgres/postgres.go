// Package postgres is the PostgreSQL driver of the store, on a pgx
// connection pool.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidemark-dev/tidemark/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Driver is a store.Driver over a pgx pool, with a second pool of the
// same size for the reports' reads (Reads).
type Driver struct {
	pool, reads *pgxpool.Pool
}

// Open connects to the database at url (postgres://...). Pool settings come
// from the URL (pool_max_conns, ...) and apply to each of the two pools.
func Open(ctx context.Context, url string) (*Driver, error) {
	cfg, err := parseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	// Connects when first asked.
	reads, err := pgxpool.NewWithConfig(ctx, readConfig(cfg.Copy()))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Driver{pool: pool, reads: reads}, nil
}

// readConfig makes cfg a configuration for sessions that only read the
// reports' queries: PostgreSQL plans each prepared statement once per
// session (a generic plan) unless the URL sets plan_cache_mode. By
// default it plans a statement's first five runs for their values, and
// planning a report's joins took longer than running them (Host State of
// one environment: 10-20 ms to plan, 10 ms to run), so those runs were the
// slowest of every report; the reports' plans follow the query's shape,
// not its values. The writers keep the default: their batches vary in
// size, and ingest ran 20 % slower on generic plans.
func readConfig(cfg *pgxpool.Config) *pgxpool.Config {
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	return cfg
}

// Reads implements store.ReportReader: the pool for reads outside any
// transaction, on generic plans (readConfig).
func (d *Driver) Reads() store.Querier { return querier{d.reads} }

// ReadForValues implements store.ValueReader on the pool for reads.
func (d *Driver) ReadForValues(ctx context.Context, fn func(store.Querier) error) error {
	return readForValues(ctx, d.reads, fn)
}

// readForValues runs fn in a read-only transaction on pool whose
// statements get plans made for their values (custom plans): the
// sessions' generic plans size a range between two parameters at half a
// percent of the table, which made Drift over a time range hash and sort
// every stale reconciler (235 ms at 10,000 hosts; 15 ms so).
func readForValues(ctx context.Context, pool *pgxpool.Pool, fn func(store.Querier) error) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
			return err
		}
		return fn(querier{tx})
	})
}

// parseConfig reads a database URL. The hub's sessions run without JIT
// compilation unless the URL sets jit: its statements are short, and
// when the planner's cost estimate crosses PostgreSQL's JIT thresholds
// (the estimates move with the tables' statistics) compiling and
// optimizing a report's query took 300-800 ms of a 10-30 ms read, on
// every execution.
func parseConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["jit"]; !ok {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	return cfg, nil
}

// Name implements store.Driver.
func (d *Driver) Name() string { return "postgres" }

// Migrations implements store.Driver.
func (d *Driver) Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// LockMigrations takes a transaction-scoped advisory lock so that replicas
// starting together migrate one at a time.
func (d *Driver) LockMigrations(ctx context.Context, q store.Querier) error {
	_, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock(7457386110)`)
	return err
}

// Ping implements store.Driver.
func (d *Driver) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Close implements store.Driver.
func (d *Driver) Close() error {
	d.pool.Close()
	if d.reads != nil {
		d.reads.Close()
	}
	return nil
}

// Pool exposes the pool, for tools that need PostgreSQL-only features.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// InTx implements store.Driver.
func (d *Driver) InTx(ctx context.Context, fn func(store.Querier) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(querier{tx}) })
}

// Retryable implements store.Driver: serialization failures, deadlocks and
// unique violations from racing inserts, and lost connections.
func (d *Driver) Retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", "23505", "57P01", "57P02", "57P03":
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, pgx.ErrTxClosed)
}

// Unavailable implements store.Driver: the server cannot be reached (no
// connection, a connection refused, reset or closed under the query), is
// shutting down or starting (57P01-57P03), has no connection or resource
// to spare (class 53, such as 53300 too many connections), lost the
// connection (class 08), or is a read-only standby during a failover
// (25006).
func (d *Driver) Unavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "53"):
			return true
		}
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "25006":
			return true
		}
		return false
	}
	// A network error, but not a deadline: context.DeadlineExceeded is a
	// net.Error too, and a request that ran out of time is not an outage.
	if ne := net.Error(nil); errors.As(err, &ne) && !ne.Timeout() {
		return true
	}
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, syscall.ETIMEDOUT} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// Exec implements store.Querier.
func (d *Driver) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return querier{d.pool}.Exec(ctx, sql, args...)
}

// QueryRow implements store.Querier.
func (d *Driver) QueryRow(ctx context.Context, sql string, args ...any) store.Row {
	return querier{d.pool}.QueryRow(ctx, sql, args...)
}

// Query implements store.Querier.
func (d *Driver) Query(ctx context.Context, sql string, args ...any) (store.Rows, error) {
	return querier{d.pool}.Query(ctx, sql, args...)
}

type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type querier struct{ q pgxQuerier }

func (q querier) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

func (q querier) QueryRow(ctx context.Context, sql string, args ...any) store.Row {
	return row{q.q.QueryRow(ctx, sql, args...)}
}

func (q querier) Query(ctx context.Context, sql string, args ...any) (store.Rows, error) {
	r, err := q.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error {
	if err := r.r.Scan(dest...); errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNoRows
	} else {
		return err
	}
}
