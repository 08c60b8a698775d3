package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// The group role dashboards use reads the reporting schema, and nothing
// else: not the tables behind it, and it cannot write.
func TestReportingRole(t *testing.T) {
	ctx := context.Background()
	pg := testenv.SharedPostgres(t)
	// Two databases on one server: the second migration finds the role.
	for i := range 2 {
		dbURL := pg.NewDatabase(t)
		testenv.OpenStore(t, "postgres", dbURL)
		admin, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		reader := testenv.ReportingLogin(t, dbURL)
		conn, err := pgx.Connect(ctx, reader)
		if err != nil {
			t.Fatalf("connect as the reporting login: %v", err)
		}
		defer conn.Close(ctx)

		relations := names(t, admin, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'reporting' ORDER BY 1`)
		if len(relations) < 6 {
			t.Fatalf("database %d: reporting schema has only %v", i, relations)
		}
		for _, r := range relations {
			if _, err := conn.Exec(ctx, "SELECT * FROM reporting."+r+" LIMIT 1"); err != nil {
				t.Errorf("database %d: the reporting role cannot read reporting.%s: %v", i, r, err)
			}
		}
		for _, q := range []string{
			`SELECT * FROM reporting.drift('1 hour')`,
			`SELECT * FROM reporting.dora(now() - interval '30 days', now())`,
			`SELECT reporting.environment_rank('prod', 'dev,prod')`,
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Errorf("database %d: the reporting role cannot run %s: %v", i, q, err)
			}
		}

		tables := names(t, admin, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`)
		if !slices.Contains(tables, "reconcilers") || !slices.Contains(tables, "schema_migrations") {
			t.Fatalf("raw tables %v", tables)
		}
		for _, tb := range tables {
			denied(t, conn, "SELECT * FROM "+tb+" LIMIT 1")
		}
		for _, q := range []string{
			// reporting.environments is a simple, hence updatable, view:
			// only the missing privilege stops these.
			`INSERT INTO reporting.environments (environment, created_at) VALUES ('x', now())`,
			`UPDATE reporting.environments SET environment = 'x'`,
			`DELETE FROM reporting.environments`,
			`INSERT INTO environments (name, created_at) VALUES ('x', now())`,
			`UPDATE reconcilers SET status = 'failure'`,
			`CREATE TABLE reporting.x (id int)`,
			`CREATE TABLE x (id int)`,
			`DROP VIEW reporting.targets`,
			`CREATE OR REPLACE FUNCTION reporting.drift(stale_after interval) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1'`,
		} {
			denied(t, conn, q)
		}
	}
}

// denied runs q and fails the test unless PostgreSQL refuses it for lack
// of privilege.
func denied(t *testing.T, conn *pgx.Conn, q string) {
	t.Helper()
	_, err := conn.Exec(context.Background(), q)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%q as the reporting role: %v; want permission denied (42501)", q, err)
	}
}

func names(t *testing.T, conn *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// reporting.environment_rank sorts environments as reports.OrderEnvironments.
func TestEnvironmentRank(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.SharedPostgres(t).NewDatabase(t)
	testenv.OpenStore(t, "postgres", dbURL)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	envs := []string{"prod", "Production", "dev", "DEV-2", "qa", "uat", "staging", "stage-eu", "pre-prod", "preprod", "int",
		"ci", "sandbox", "live", "perf", "dr", "canary", "zeta", "Alpha", "test", "testing", "functional", "développement", "", " dev "}
	for _, order := range [][]string{nil, {"prod", "qa"}, {"zeta", "dev", "nope"}, {"Alpha"}} {
		want := reports.OrderEnvironments(envs, order)
		rows, err := conn.Query(ctx, `SELECT e FROM unnest($1::text[]) e
			ORDER BY reporting.environment_rank(e, $2), e COLLATE "C"`, envs, " "+strings.Join(order, " , ")+", ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("order %q:\n got %q\nwant %q", order, got, want)
		}
	}
}
