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
	// Migrations are the engine's schema migrations, files named
	// NNNN_description.sql.
	Migrations() fs.FS
	// LockMigrations serializes concurrent migrators inside a transaction.
	LockMigrations(ctx context.Context, q Querier) error
	Ping(ctx context.Context) error
	Close() error
}

// Store is the hub's storage.
type Store struct {
	d       Driver
	onRetry func(err error)
}

// New migrates the driver's database to the latest schema and returns a
// Store over it.
func New(ctx context.Context, d Driver) (*Store, error) {
	s := &Store{d: d}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Engine names the SQL engine behind the store.
func (s *Store) Engine() string { return s.d.Name() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.d.Ping(ctx) }

// Close releases the database.
func (s *Store) Close() error { return s.d.Close() }

// Read returns a Querier outside any transaction, for reads.
func (s *Store) Read() Querier { return s.d }

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
