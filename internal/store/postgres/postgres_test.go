package postgres_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestConcurrentMigrators(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	url := pg.NewDatabase(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			d, err := postgres.Open(context.Background(), url)
			if err == nil {
				var st *store.Store
				st, err = store.New(context.Background(), d)
				if err == nil {
					st.Close()
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("replica start: %v", err)
		}
	}
	st := testenv.OpenStore(t, "postgres", url)
	var n int
	if err := st.Read().QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob((&postgres.Driver{}).Migrations(), "*.sql")
	if err != nil || len(files) < 2 {
		t.Fatalf("migration files: %v, %v", files, err)
	}
	if n != len(files) {
		t.Errorf("schema_migrations has %d rows, want one per migration (%d)", n, len(files))
	}
}

// TestJITOff: the hub's sessions run without JIT compilation (it cost a
// report's query hundreds of milliseconds whenever the planner's estimate
// crossed the thresholds), unless the database URL asks for it.
func TestJITOff(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	url := pg.NewDatabase(t)
	for _, c := range []struct{ url, want string }{{url, "off"}, {url + sep(url) + "jit=on", "on"}} {
		d, err := postgres.Open(context.Background(), c.url)
		if err != nil {
			t.Fatal(err)
		}
		var jit string
		if err := d.Pool().QueryRow(context.Background(), "SHOW jit").Scan(&jit); err != nil {
			t.Fatal(err)
		}
		d.Close()
		if jit != c.want {
			t.Errorf("%s: jit = %s, want %s", c.url, jit, c.want)
		}
	}
}

// The reports read on sessions that plan each statement once (generic
// plans); the writers keep PostgreSQL's default, and a URL that sets
// plan_cache_mode sets it for both.
func TestReadsOnGenericPlans(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	url := pg.NewDatabase(t)
	st := testenv.OpenStore(t, "postgres", url)
	if got := planCacheMode(t, st.Read()); got != "force_generic_plan" {
		t.Errorf("reads: plan_cache_mode = %s, want force_generic_plan", got)
	}
	if got := planCacheMode(t, st.Primary()); got != "auto" {
		t.Errorf("writers: plan_cache_mode = %s, want auto", got)
	}
	d, err := postgres.Open(context.Background(), url+sep(url)+"plan_cache_mode=force_custom_plan")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := planCacheMode(t, d.Reads()); got != "force_custom_plan" {
		t.Errorf("reads with the URL's plan_cache_mode: %s, want force_custom_plan", got)
	}
}

// GenericPlans holds for the rest of its transaction, not after it: the
// session goes back to the pool as it was.
func TestGenericPlansInOneTransaction(t *testing.T) {
	st := testenv.OpenStore(t, "postgres", testenv.SharedPostgres(t).NewDatabase(t))
	ctx := context.Background()
	err := st.Tx(ctx, func(q store.Querier) error {
		if got := planCacheMode(t, q); got != "auto" {
			t.Errorf("before: %s, want auto", got)
		}
		if err := store.GenericPlans(ctx, q, "postgres"); err != nil {
			return err
		}
		if got := planCacheMode(t, q); got != "force_generic_plan" {
			t.Errorf("in the transaction: %s, want force_generic_plan", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := planCacheMode(t, st.Primary()); got != "auto" {
		t.Errorf("after the transaction: %s, want auto", got)
	}
}

// planCacheMode is the plan_cache_mode of q's session.
func planCacheMode(t *testing.T, q store.Querier) string {
	t.Helper()
	var m string
	if err := q.QueryRow(context.Background(), "SHOW plan_cache_mode").Scan(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sep is what joins another parameter to a URL.
func sep(url string) string {
	if strings.Contains(url, "?") {
		return "&"
	}
	return "?"
}

// Unavailable tells an outage (the server stopped, connections terminated
// by an administrator, no connection slot left) from a failed request,
// on the errors a real server returns.
func TestUnavailable(t *testing.T) {
	// A server of its own: this test stops it.
	pg, err := testenv.StartPostgres()
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(pg.Stop)
	ctx := context.Background()
	url := pg.NewDatabase(t)
	d, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	// Failed requests: the server is fine.
	if _, err := d.Exec(ctx, `CREATE TABLE names (name TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	for what, run := range map[string]func() error{
		"NUL in text": func() error { _, err := d.Exec(ctx, `INSERT INTO names VALUES ($1)`, "a\x00b"); return err },
		"duplicate key": func() error {
			_, err := d.Exec(ctx, `INSERT INTO names VALUES ('x'), ('x')`)
			return err
		},
		"syntax error":      func() error { _, err := d.Exec(ctx, `SELEC 1`); return err },
		"deadline exceeded": func() error { _, err := d.Exec(short, `SELECT pg_sleep(5)`); return err },
	} {
		if err := run(); err == nil || d.Unavailable(err) {
			t.Errorf("%s: %v: Unavailable = %v, want an error that is not an outage", what, err, d.Unavailable(err))
		}
	}

	// An administrator terminates the connection under a request: 57P01.
	conn, err := d.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SELECT 1`)
	conn.Release()
	if err == nil || !d.Unavailable(err) {
		t.Errorf("terminated connection: %v: Unavailable = false", err)
	}

	// No connection slot left for the role: 53300 when the pool connects.
	if _, err := d.Exec(ctx, `CREATE ROLE limited LOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = d.Exec(context.Background(), `DROP ROLE IF EXISTS limited`) })
	if _, err := d.Exec(ctx, `ALTER ROLE limited CONNECTION LIMIT 0`); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, strings.Replace(url, "postgres@", "limited@", 1))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "53300" || !d.Unavailable(err) {
		t.Errorf("too many connections: %v: Unavailable = %v, want a 53300 outage", err, d.Unavailable(err))
	}

	// The server stops under a running query, then refuses connections.
	running := make(chan error, 1)
	go func() { _, err := d.Exec(ctx, `SELECT pg_sleep(30)`); running <- err }()
	time.Sleep(200 * time.Millisecond)
	pg.Halt()
	if err := <-running; err == nil || !d.Unavailable(err) {
		t.Errorf("query during shutdown: %v: Unavailable = false", err)
	}
	for range 3 { // pooled connections first, then new ones
		if _, err := d.Exec(ctx, `SELECT 1`); err == nil || !d.Unavailable(err) {
			t.Errorf("server down: %v: Unavailable = false", err)
		}
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(ctx, `SELECT 1`); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}
