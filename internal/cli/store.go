package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
	"github.com/tidemark-dev/tidemark/internal/store/sqlite"
)

// defaultDatabase is the embedded store: an SQLite file in the working
// directory.
const defaultDatabase = "tidemark.db"

// openStore opens and migrates the store a --database value names:
// postgres://... or postgresql://... for PostgreSQL; sqlite:PATH or a plain
// file path for SQLite.
func openStore(ctx context.Context, database string, opts ...store.Option) (*store.Store, error) {
	var d store.Driver
	var err error
	switch {
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		d, err = postgres.Open(ctx, database)
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(database, "sqlite://"), "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("--database %q: give a file path, sqlite:PATH or a postgres:// URL", database)
		}
		d, err = sqlite.Open(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	st, err := store.New(ctx, d, opts...)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("migrate %s store: %w", d.Name(), err)
	}
	return st, nil
}

// redactURL hides the password of a database URL, for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return raw
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
