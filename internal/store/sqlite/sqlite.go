// Package sqlite is the embedded SQLite driver of the store (modernc.org/sqlite,
// pure Go, WAL mode).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tidemark-dev/tidemark/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Driver is a store.Driver over an SQLite file.
type Driver struct {
	db *sql.DB
}

// Open opens (creating if needed) the SQLite database at path, in WAL mode
// with foreign keys on. Write transactions take the lock when they begin,
// so concurrent writers queue instead of failing on lock upgrade.
func Open(ctx context.Context, path string) (*Driver, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if strings.Contains(path, ":memory:") || strings.Contains(path, "mode=memory") {
		db.SetMaxOpenConns(1) // each connection would have its own database
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Driver{db: db}, nil
}

// Name implements store.Driver.
func (d *Driver) Name() string { return "sqlite" }

// Migrations implements store.Driver.
func (d *Driver) Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// LockMigrations is a no-op: an immediate transaction already holds the
// database's write lock.
func (d *Driver) LockMigrations(context.Context, store.Querier) error { return nil }

// Ping implements store.Driver.
func (d *Driver) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// Close implements store.Driver.
func (d *Driver) Close() error { return d.db.Close() }

// InTx implements store.Driver.
func (d *Driver) InTx(ctx context.Context, fn func(store.Querier) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(querier{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Retryable implements store.Driver: a busy or locked database.
func (d *Driver) Retryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// Unavailable implements store.Driver: the database stayed busy or locked
// past the busy timeout (another process holds the write lock), or its
// file cannot be opened, read or written (an I/O error, a full disk).
func (d *Driver) Unavailable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return true
		}
	}
	return errors.Is(err, sql.ErrConnDone)
}

// Exec implements store.Querier.
func (d *Driver) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return querier{d.db}.Exec(ctx, q, args...)
}

// QueryRow implements store.Querier.
func (d *Driver) QueryRow(ctx context.Context, q string, args ...any) store.Row {
	return querier{d.db}.QueryRow(ctx, q, args...)
}

// Query implements store.Querier.
func (d *Driver) Query(ctx context.Context, q string, args ...any) (store.Rows, error) {
	return querier{d.db}.Query(ctx, q, args...)
}

type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type querier struct{ q sqlQuerier }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(ctx, query, toDB(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) store.Row {
	return row{q.q.QueryRowContext(ctx, query, toDB(args)...)}
}

func (q querier) Query(ctx context.Context, query string, args ...any) (store.Rows, error) {
	r, err := q.q.QueryContext(ctx, query, toDB(args)...)
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error {
	conv := fromDB(dest)
	if err := r.r.Scan(conv.dest...); errors.Is(err, sql.ErrNoRows) {
		return store.ErrNoRows
	} else if err != nil {
		return err
	}
	conv.finish()
	return nil
}

type rows struct{ r *sql.Rows }

func (r rows) Next() bool { return r.r.Next() }
func (r rows) Err() error { return r.r.Err() }
func (r rows) Close()     { _ = r.r.Close() }
func (r rows) Scan(dest ...any) error {
	conv := fromDB(dest)
	if err := r.r.Scan(conv.dest...); err != nil {
		return err
	}
	conv.finish()
	return nil
}

// Times are stored as INTEGER microseconds since the epoch.

func toDB(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case time.Time:
			out[i] = v.UnixMicro()
		case *time.Time:
			if v == nil {
				out[i] = nil
			} else {
				out[i] = v.UnixMicro()
			}
		default:
			out[i] = a
		}
	}
	return out
}

type scanConv struct {
	dest  []any
	after []func()
}

func fromDB(dest []any) *scanConv {
	c := &scanConv{dest: make([]any, len(dest))}
	for i, d := range dest {
		switch v := d.(type) {
		case *time.Time:
			var n int64
			c.dest[i] = &n
			c.after = append(c.after, func() { *v = time.UnixMicro(n).UTC() })
		case **time.Time:
			var n sql.NullInt64
			c.dest[i] = &n
			c.after = append(c.after, func() {
				if !n.Valid {
					*v = nil
					return
				}
				t := time.UnixMicro(n.Int64).UTC()
				*v = &t
			})
		default:
			c.dest[i] = d
		}
	}
	return c
}

func (c *scanConv) finish() {
	for _, f := range c.after {
		f()
	}
}
