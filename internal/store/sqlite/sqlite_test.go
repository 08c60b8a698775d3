package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

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
