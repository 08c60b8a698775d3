package postgres_test

import (
	"context"
	"io/fs"
	"testing"

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
