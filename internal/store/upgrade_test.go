package store_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// upgrade is a store on a database of its own, for a test that writes
// data, takes the store back to before one migration and opens it again,
// which applies the migration to that data.
type upgrade struct {
	engine, dsn string
	migration   int // its number on this engine
}

// newUpgrade opens a store for a test of the migration numbered sqlite on
// SQLite and postgres on PostgreSQL.
func newUpgrade(t *testing.T, engine string, sqlite, postgres int) (*store.Store, upgrade) {
	t.Helper()
	u := upgrade{engine: engine, dsn: filepath.Join(t.TempDir(), "tidemark.db"), migration: sqlite}
	if engine == "postgres" {
		u.dsn, u.migration = testenv.SharedPostgres(t).NewDatabase(t), postgres
	}
	return testenv.OpenStore(t, engine, u.dsn), u
}

// reopen runs undo (what the migration changed, the other way), forgets
// that the migration ran, closes st and opens the store again.
func (u upgrade) reopen(t *testing.T, st *store.Store, undo ...string) *store.Store {
	t.Helper()
	for _, q := range append(undo, `DELETE FROM schema_migrations WHERE version = `+strconv.Itoa(u.migration)) {
		if _, err := st.Primary().Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	return testenv.OpenStore(t, u.engine, u.dsn)
}
