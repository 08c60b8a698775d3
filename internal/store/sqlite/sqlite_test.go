package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/store/sqlite"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tidemark.db")
	st := testenv.OpenStore(t, "sqlite", path)
	if _, err := st.Read().Exec(context.Background(), `INSERT INTO environments (name, created_at) VALUES ('dev', 0)`); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = testenv.OpenStore(t, "sqlite", path) // migrations run again: nothing to do
	var n, versions int
	if err := st.Read().QueryRow(context.Background(), `SELECT count(*) FROM environments`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := st.Read().QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if n != 1 || versions < 1 {
		t.Errorf("after reopen: %d environments, %d migrations recorded", n, versions)
	}
}

// Unavailable tells an outage (the database locked by another process
// past the busy timeout, a file that cannot be opened) from a failed
// request, on the errors SQLite returns.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tidemark.db")
	d, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Exec(ctx, `CREATE TABLE names (name TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for what, query := range map[string]string{
		"duplicate key": `INSERT INTO names VALUES ('x'), ('x')`,
		"syntax error":  `SELEC 1`,
		"no such table": `SELECT * FROM nothing`,
	} {
		if _, err := d.Exec(ctx, query); err == nil || d.Unavailable(err) {
			t.Errorf("%s: %v: Unavailable = %v, want an error that is not an outage", what, err, d.Unavailable(err))
		}
	}

	// Another process holds the write lock; a writer that waits no longer
	// than its busy timeout (here 50 ms, the hub's is 10 s) gets SQLITE_BUSY.
	holder, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	waiter, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(50)")
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	_, err = waiter.ExecContext(ctx, `INSERT INTO names VALUES ('y')`)
	if err == nil || !d.Unavailable(err) {
		t.Errorf("database locked: %v: Unavailable = false", err)
	}
	if d.Unavailable(errors.New("database is locked")) {
		t.Error("an error that only says so is taken for SQLite's (Unavailable looks at the error code)")
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}

	// A database file that cannot be opened.
	_, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "missing", "dir", "tidemark.db"))
	if err == nil || !d.Unavailable(err) {
		t.Errorf("file cannot be opened: %v: Unavailable = false", err)
	}
}
