// Package store is Tidemark's relational store of desired and real
// deployment state.
//
// One Store serves every SQL engine. An engine package (postgres, sqlite)
// provides a Driver: connections, transactions, its own schema migrations and
// the translation of Go values to its column types. The queries themselves
// are written once, in the SQL that PostgreSQL and SQLite share ($n
// placeholders, ON CONFLICT, RETURNING, window functions), and every engine
// must pass the conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNoRows is returned by Row.Scan when a query matched nothing.
var ErrNoRows = errors.New("store: no rows")

// Querier runs SQL. Placeholders are $1, $2...; time.Time arguments and
// *time.Time / **time.Time scan targets are translated by the driver.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (rowsAffected int64, err error)
	QueryRow(ctx context.Context, sql string, args ...any) Row
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
}

// Row is the result of QueryRow.
type Row interface {
	Scan(dest ...any) error
}

// Rows is the result of Query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Driver is what an SQL engine provides.
type Driver interface {
	Querier
	// Name is the engine: "postgres" or "sqlite".
	Name() string
	// InTx runs fn in one transaction, committing when fn returns nil.
	InTx(ctx context.Context, fn func(Querier) error) error
	// Retryable reports whether err is a transient conflict (serialization
	// failure, deadlock, busy database) after which the transaction may be
	// run again.
	Retryable(err error) bool
	// Unavailable reports whether err means that the database cannot be
	// reached or does not take work right now (down, restarting, refusing
	// connections, out of connections, busy past its timeout), as opposed
	// to a failure of the request itself: callers answer "try again
	// later" instead of reporting an error.
	Unavailable(err error) bool
	// Migrations are the engine's schema migrations, files named
	// NNNN_description.sql.
	Migrations() fs.FS
	// LockMigrations serializes concurrent migrators inside a transaction.
	LockMigrations(ctx context.Context, q Querier) error
	Ping(ctx context.Context) error
	Close() error
}

// A ReportReader is a Driver with sessions of its own for reads outside
// any transaction (Store.Read on the primary), set up for the reports'
// queries rather than for writes.
type ReportReader interface {
	Reads() Querier
}

// A ValueReader runs reads planned for their values: see
// Store.ReadForValues. PostgreSQL's primary and its replicas are
// ValueReaders; SQLite plans every statement for its values anyway.
type ValueReader interface {
	// ReadForValues runs fn in one read-only transaction whose
	// statements are planned for the values they are given.
	ReadForValues(ctx context.Context, fn func(Querier) error) error
}

// Store is the hub's storage: a primary database, which takes every write,
// and optionally read replicas of it.
type Store struct {
	d        Driver
	reads    Querier     // the primary, for Read
	replicas *replicaSet // nil without replicas
	onRetry  func(err error)
	// seriesWaiting is how many endpoint series waited for their rebuild
	// after the last RebuildSeries (-1: none ran yet): SeriesWaiting.
	seriesWaiting atomic.Int64
}

// New migrates the driver's database to the latest schema and returns a
// Store over it. With WithReplicas, it measures the replicas once before
// returning and then every check interval until Close; the replicas are
// the store's to close, also when New fails.
func New(ctx context.Context, d Driver, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store{d: d, reads: d}
	s.seriesWaiting.Store(-1)
	if r, ok := d.(ReportReader); ok {
		s.reads = r.Reads()
	}
	err := s.migrate(ctx)
	if err == nil && len(o.replicas) > 0 {
		s.replicas, err = newReplicaSet(ctx, d, o)
	}
	if err != nil {
		for _, r := range o.replicas {
			r.Close()
		}
		return nil, err
	}
	return s, nil
}

// Engine names the SQL engine behind the store.
func (s *Store) Engine() string { return s.d.Name() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.d.Ping(ctx) }

// Unavailable reports whether err, returned by the store, means that the
// database cannot be reached right now (see Driver.Unavailable).
func (s *Store) Unavailable(err error) bool { return err != nil && s.d.Unavailable(err) }

// Close stops measuring the replicas and releases the databases.
func (s *Store) Close() error {
	var err error
	if s.replicas != nil {
		err = s.replicas.close()
	}
	return errors.Join(err, s.d.Close())
}

// Read returns a Querier outside any transaction, for reads that may lag
// the latest write by up to the replica lag bound: a healthy replica,
// round-robin, or the primary when there is none (or no replicas at all).
// A read the replica cannot answer (it went down since its last check)
// runs again on the primary. Exec runs on the primary.
func (s *Store) Read() Querier {
	if m := s.replica(); m != nil {
		return replicaQuerier{m: m, primary: s.reads}
	}
	return s.reads
}

// replica picks the healthy replica a read goes to, nil for the primary
// (counted as a fallback when the store has replicas).
func (s *Store) replica() *member {
	if s.replicas == nil {
		return nil
	}
	m := s.replicas.pick()
	if m == nil {
		s.replicas.fallbacks.Add(1)
	}
	return m
}

// ReadForValues runs fn's reads where Read would, planned for the values
// they are given rather than once per session as the reports' other
// reads are (see the postgres driver): for a statement whose best plan
// follows its values, such as a time range that one value makes empty and
// another makes the whole fleet. fn runs again on the primary when the
// replica fails under it, so it must start from nothing each time.
func (s *Store) ReadForValues(ctx context.Context, fn func(Querier) error) error {
	if m := s.replica(); m != nil {
		if vr, ok := m.r.(ValueReader); ok {
			m.reads.Add(1)
			if err := vr.ReadForValues(ctx, fn); !(replicaQuerier{m: m}).failedOver(ctx, err) {
				return err
			}
		}
	}
	if vr, ok := s.d.(ValueReader); ok {
		return vr.ReadForValues(ctx, fn)
	}
	return fn(s.reads)
}

// Primary returns a Querier on the primary database, outside any
// transaction, for reads that must see the latest write: what ingest
// compares a report with, the rollout gate a pipeline polls right after
// it pushed.
func (s *Store) Primary() Querier { return s.d }

// Replicas returns what the store last measured of each read replica, in
// the order they were given; nil without replicas.
func (s *Store) Replicas() []ReplicaStatus {
	if s.replicas == nil {
		return nil
	}
	return s.replicas.statuses()
}

// PrimaryFallbackReads counts the reads Read sent to the primary because no
// replica was healthy.
func (s *Store) PrimaryFallbackReads() uint64 {
	if s.replicas == nil {
		return 0
	}
	return s.replicas.fallbacks.Load()
}

// OnRetry sets a function that Tx calls each time it runs a transaction
// again after a transient conflict (for metrics). Set it before the store
// is used.
func (s *Store) OnRetry(fn func(err error)) { s.onRetry = fn }

// Tx runs fn in a transaction, running it again (up to 10 times, with
// jittered backoff) when the engine reports a transient conflict, so that
// concurrent writers for the same rows converge. fn must not keep state
// between attempts.
func (s *Store) Tx(ctx context.Context, fn func(Querier) error) error {
	backoff := 2 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.d.InTx(ctx, fn)
		if err == nil || !s.d.Retryable(err) || attempt == 10 {
			return err
		}
		if s.onRetry != nil {
			s.onRetry(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff + rand.N(backoff)):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrate applies, in one transaction, every migration the database has not
// seen, recording each in schema_migrations.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := readMigrations(s.d.Migrations())
	if err != nil {
		return err
	}
	return s.d.InTx(ctx, func(q Querier) error {
		if err := s.d.LockMigrations(ctx, q); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		if _, err := q.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at TEXT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := q.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := q.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := q.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UTC().Format(time.RFC3339)); err != nil {
				return err
			}
		}
		// The maintained state is built from the data the first time, and
		// again when what it means changes.
		var built int
		if err := q.QueryRow(ctx, `SELECT COALESCE(max(built_version), 0) FROM maintained_state`).Scan(&built); err != nil {
			return fmt.Errorf("read maintained state version: %w", err)
		}
		if built < maintainedVersion {
			return Rebuild(ctx, q)
		}
		return nil
	})
}

func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			continue
		}
		num, desc, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %q: name it NNNN_description.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: desc, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("two migrations numbered %d", ms[i].version)
		}
	}
	return ms, nil
}
