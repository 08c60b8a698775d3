package testenv

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
	"github.com/tidemark-dev/tidemark/internal/store/sqlite"
)

// Engines are the store engines every store-backed test runs on.
var Engines = []string{"sqlite", "postgres"}

// NewStore returns a fresh, migrated store of the engine, closed when the
// test ends. PostgreSQL databases live on the binary's shared server: call
// Main (or StopShared) from TestMain.
func NewStore(t testing.TB, engine string) *store.Store {
	t.Helper()
	switch engine {
	case "sqlite":
		return OpenStore(t, engine, filepath.Join(t.TempDir(), "tidemark.db"))
	case "postgres":
		return OpenStore(t, engine, SharedPostgres(t).NewDatabase(t))
	}
	t.Fatalf("unknown engine %q", engine)
	return nil
}

// OpenStore opens and migrates the store at dsn (an SQLite path or a
// PostgreSQL URL), closed when the test ends.
func OpenStore(t testing.TB, engine, dsn string) *store.Store {
	t.Helper()
	ctx := context.Background()
	var d store.Driver
	var err error
	switch engine {
	case "sqlite":
		d, err = sqlite.Open(ctx, dsn)
	case "postgres":
		d, err = postgres.Open(ctx, dsn)
	default:
		t.Fatalf("unknown engine %q", engine)
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// EachStore runs fn as a subtest per engine, each with a fresh store.
func EachStore(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	for _, engine := range Engines {
		t.Run(engine, func(t *testing.T) { fn(t, NewStore(t, engine)) })
	}
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Testdata returns a path under the repository's testdata directory.
func Testdata(elem ...string) string {
	return filepath.Join(append([]string{RepoRoot(), "testdata"}, elem...)...)
}

// SharedFixtures is ../shared/fixtures/kalypso-samples beside the
// repository, or "" when it is not there.
func SharedFixtures() string {
	p := filepath.Join(RepoRoot(), "..", "shared", "fixtures", "kalypso-samples")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// Main runs a test binary's tests, then stops the servers they started:
// call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}
