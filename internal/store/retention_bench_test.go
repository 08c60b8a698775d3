package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// seedHistory writes rows status changes of one deployment, spread evenly
// over the months before now, straight into deployment_history.
func seedHistory(b *testing.B, st *store.Store, months, rows int, now time.Time) {
	b.Helper()
	ctx := context.Background()
	from := now.AddDate(0, -months, 0)
	step := now.Sub(from) / time.Duration(rows)
	setup := []string{
		`INSERT INTO endpoints (key, storage_type, repo, joined, created_at) VALUES ('k', 'git', 'r', false, $1)`,
		`INSERT INTO hosts (name, type, created_at) VALUES ('h', 'cluster', $1)`,
		`INSERT INTO reconcilers (host_id, name, type, endpoint_id, last_report_at, created_at) VALUES (1, 'r', 'flux', 1, $1, $1)`,
		`INSERT INTO deployments (reconciler_id, commit_sha, status, first_seen, status_since, last_changed) VALUES (1, 'c', 'success', $1, $1, $1)`,
	}
	for _, q := range setup {
		if _, err := st.Primary().Exec(ctx, q, now); err != nil {
			b.Fatal(err)
		}
	}
	var err error
	switch st.Engine() {
	case "postgres":
		_, err = st.Primary().Exec(ctx, `INSERT INTO deployment_history (deployment_id, reconciler_id, status, message, changed_at)
			SELECT 1, 1, 'success', 'applied', $1::timestamptz + n * $2::bigint * interval '1 microsecond' FROM generate_series(0, $3::int - 1) AS n`,
			from, step.Microseconds(), rows)
	default:
		_, err = st.Primary().Exec(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $3)
			INSERT INTO deployment_history (deployment_id, reconciler_id, status, message, changed_at) SELECT 1, 1, 'success', 'applied', $1 + i * $2 FROM n`,
			from, step.Microseconds(), rows)
	}
	if err != nil {
		b.Fatal(err)
	}
	// Partitions for the seeded months (PostgreSQL), outside the timing.
	if _, err := st.MaintainHistory(ctx, store.HistoryPolicy{}, now); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHistoryRetention keeps 6 of 12 months of 600,000 status
// changes: PostgreSQL drops 6 partitions, SQLite deletes ~300,000 rows in
// chunks of DefaultHistoryPruneChunk.
func BenchmarkHistoryRetention(b *testing.B) {
	const months, rows = 12, 600_000
	for _, engine := range testenv.Engines {
		b.Run(engine, func(b *testing.B) {
			var removed, dropped int64
			for b.Loop() {
				b.StopTimer()
				st := testenv.NewStore(b, engine)
				now := time.Now()
				seedHistory(b, st, months, rows, now)
				var before int64
				if err := st.Read().QueryRow(context.Background(), `SELECT count(*) FROM deployment_history`).Scan(&before); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				m, err := st.MaintainHistory(context.Background(), store.HistoryPolicy{Retention: 183 * 24 * time.Hour}, now)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				var after int64
				if err := st.Read().QueryRow(context.Background(), `SELECT count(*) FROM deployment_history`).Scan(&after); err != nil {
					b.Fatal(err)
				}
				removed += before - after
				dropped += int64(len(m.Dropped))
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(removed)/float64(b.N), "rows-removed/op")
			b.ReportMetric(float64(dropped)/float64(b.N), "partitions-dropped/op")
		})
	}
}
