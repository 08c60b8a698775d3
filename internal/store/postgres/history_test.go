package postgres_test

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// monthStart is the first instant (UTC) of the month of t, moved by n
// months.
func monthStart(t time.Time, n int) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, n, 0)
}

func partitionOf(t time.Time) string {
	return fmt.Sprintf("deployment_history_p%04d_%02d", t.Year(), int(t.Month()))
}

func partitionNames(t *testing.T, st *store.Store) []string {
	t.Helper()
	ps, err := st.HistoryPartitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, p := range ps {
		names = append(names, p.Name)
		if !p.To.Equal(p.From.AddDate(0, 1, 0)) || p.Name != partitionOf(p.From) || (i > 0 && !ps[i-1].From.Before(p.From)) {
			t.Errorf("partition %+v: want a month named after its start, oldest first", p)
		}
	}
	return names
}

func count(t *testing.T, q store.Querier, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// reportAt is one status report of host's reconciler for target prod/web
// at commit sha.
func reportAt(t *testing.T, host, sha string, status model.Status, at time.Time) model.Report {
	t.Helper()
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "prod/web")
	if err != nil {
		t.Fatal(err)
	}
	return model.Report{Host: host, Reconciler: "flux-system", ReconcilerType: "flux", Endpoint: ep,
		Commit: sha, Status: status, ObservedAt: at}
}

func sha(n int) string { return fmt.Sprintf("%040x", n+1) }

func TestHistoryPartitionsOnAFreshStore(t *testing.T) {
	st := testenv.NewStore(t, "postgres")
	now := time.Now()
	var want []string
	for i := 0; i <= store.DefaultHistoryMonthsAhead; i++ {
		want = append(want, partitionOf(monthStart(now, i)))
	}
	if got := partitionNames(t, st); !slices.Equal(got, want) {
		t.Errorf("partitions after migration: %v, want this month and the next %d: %v", got, store.DefaultHistoryMonthsAhead, want)
	}
	// The default partition takes what no month holds yet.
	if n := count(t, st.Read(), `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'deployment_history'::regclass AND c.relname = 'deployment_history_default'`); n != 1 {
		t.Errorf("default partition: %d, want 1", n)
	}
	// Each partition has the table's indexes, (deployment_id, changed_at)
	// and (reconciler_id, changed_at, id), and no primary key (0035).
	rows, err := st.Read().Query(context.Background(), `SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexdef`, want[0])
	if err != nil {
		t.Fatal(err)
	}
	var defs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		defs = append(defs, d[strings.Index(d, " USING "):])
	}
	rows.Close()
	if wantDefs := []string{" USING btree (deployment_id, changed_at)", " USING btree (reconciler_id, changed_at, id)"}; !slices.Equal(defs, wantDefs) {
		t.Errorf("indexes of %s: %q, want %q", want[0], defs, wantDefs)
	}
}

// TestHistoryMaintenance drives the partition pass: a month prepared ahead
// as time passes, rows that landed in the default partition moved into a
// partition of their own, whole months dropped by retention, and an insert
// for a dropped month still accepted.
func TestHistoryMaintenance(t *testing.T) {
	ctx := context.Background()
	st := testenv.NewStore(t, "postgres")
	ing := ingest.New(st)
	now := time.Now().UTC()
	old := monthStart(now, -14).Add(36 * time.Hour) // in the month 14 months ago
	future := monthStart(now, 30).Add(time.Hour)    // a host whose clock is far ahead
	for i, at := range []time.Time{old, old.Add(time.Hour), now, future} {
		status := model.StatusSuccess
		if i == 0 {
			status = model.StatusFailure
		}
		if _, err := ing.ApplyReport(ctx, reportAt(t, "aks-"+strconv.Itoa(i%3), sha(i), status, at)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history_default`); n != 3 {
		t.Fatalf("%d rows in the default partition, want 3 (two old, one future)", n)
	}

	// Next year: a pass prepares the months ahead and adopts the waiting rows.
	later := monthStart(now, 12).Add(time.Hour)
	m, err := st.MaintainHistory(ctx, store.HistoryPolicy{}, later)
	if err != nil {
		t.Fatal(err)
	}
	wantCreated := []string{partitionOf(old)}
	for i := 0; i <= store.DefaultHistoryMonthsAhead; i++ {
		wantCreated = append(wantCreated, partitionOf(monthStart(later, i)))
	}
	wantCreated = append(wantCreated, partitionOf(future))
	if !slices.Equal(m.Created, wantCreated) || len(m.Dropped) > 0 || m.Skipped {
		t.Errorf("pass: created %v dropped %v skipped %v, want created %v", m.Created, m.Dropped, m.Skipped, wantCreated)
	}
	t.Logf("partition pass creating %d partitions (moving 3 rows) took %s", len(m.Created), m.Took)
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history_default`); n != 0 {
		t.Errorf("%d rows left in the default partition, want 0", n)
	}
	if n := count(t, st.Read(), `SELECT count(*) FROM `+partitionOf(old)); n != 2 {
		t.Errorf("%d rows in %s, want the 2 old ones", n, partitionOf(old))
	}
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history`); n != 4 {
		t.Errorf("%d history rows, want 4: moving rows loses none", n)
	}
	// A second pass has nothing to do.
	if m, err := st.MaintainHistory(ctx, store.HistoryPolicy{}, later); err != nil || len(m.Created)+len(m.Dropped) > 0 {
		t.Errorf("second pass: %+v, %v; want nothing done", m.PartitionChanges, err)
	}

	// Retention of 6 months at now drops every month that ended 6 months
	// ago, whole: the old one, never the current or later ones.
	before := partitionNames(t, st)
	m, err = st.MaintainHistory(ctx, store.HistoryPolicy{Retention: 183 * 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	var wantDropped []string
	for _, p := range before {
		if p < partitionOf(monthStart(now, -6)) {
			wantDropped = append(wantDropped, p)
		}
	}
	if !slices.Equal(m.Dropped, wantDropped) || len(wantDropped) == 0 || m.RowsDeleted != 0 {
		t.Errorf("retention dropped %v (deleted %d rows), want %v", m.Dropped, m.RowsDeleted, wantDropped)
	}
	t.Logf("retention pass dropping %d partitions took %s", len(m.Dropped), m.Took)
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history WHERE changed_at < $1`, m.Cutoff); n != 0 {
		t.Errorf("%d history rows before the cutoff remain", n)
	}
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history`); n != 2 {
		t.Errorf("%d history rows, want the 2 recent ones", n)
	}
	// A late report for a dropped month is still stored (in the default
	// partition), and the next pass puts it in a partition of its own
	// and drops that one too.
	if _, err := ing.ApplyReport(ctx, reportAt(t, "aks-9", sha(9), model.StatusSuccess, old)); err != nil {
		t.Fatalf("insert into a dropped month: %v", err)
	}
	m, err = st.MaintainHistory(ctx, store.HistoryPolicy{Retention: 183 * 24 * time.Hour}, now)
	if err != nil || !slices.Equal(m.Created, []string{partitionOf(old)}) || !slices.Equal(m.Dropped, []string{partitionOf(old)}) {
		t.Errorf("pass after a late report: %+v, %v; want %s created and dropped", m.PartitionChanges, err, partitionOf(old))
	}
}

// TestHistoryMaintenanceConcurrent runs passes from several hubs at once:
// none fails, and the months are created once.
func TestHistoryMaintenanceConcurrent(t *testing.T) {
	ctx := context.Background()
	url := testenv.SharedPostgres(t).NewDatabase(t)
	stores := []*store.Store{testenv.OpenStore(t, "postgres", url), testenv.OpenStore(t, "postgres", url), testenv.OpenStore(t, "postgres", url)}
	at := monthStart(time.Now(), 24)
	var wg sync.WaitGroup
	results := make([]store.HistoryMaintenance, len(stores))
	errs := make([]error, len(stores))
	for i, st := range stores {
		wg.Go(func() { results[i], errs[i] = st.MaintainHistory(ctx, store.HistoryPolicy{Retention: time.Hour}, at) })
	}
	wg.Wait()
	created := map[string]int{}
	for i := range stores {
		if errs[i] != nil {
			t.Errorf("hub %d: %v", i, errs[i])
		}
		for _, n := range results[i].Created {
			created[n]++
		}
	}
	for i := 0; i <= store.DefaultHistoryMonthsAhead; i++ {
		if n := created[partitionOf(monthStart(at, i))]; n > 1 {
			t.Errorf("%s created %d times", partitionOf(monthStart(at, i)), n)
		}
	}
	got := partitionNames(t, stores[0])
	for i := 0; i <= store.DefaultHistoryMonthsAhead; i++ {
		if !slices.Contains(got, partitionOf(monthStart(at, i))) {
			t.Errorf("partitions %v lack %s", got, partitionOf(monthStart(at, i)))
		}
	}
}

// TestHistoryMigrationKeepsRows converts a database that has history from
// before partitioning: every row is kept with its id, each month with data
// gets its partition, and new rows continue the ids.
// unpartitionedDatabase creates a database with the schema as it was
// before history was partitioned (migrations up to 0009, recorded as
// applied) and rows history rows of one deployment, every interval from
// 2023-01-15 on, then deletes every seventh (ids with gaps).
func unpartitionedDatabase(tb testing.TB, rows int, interval time.Duration) (string, *pgx.Conn) {
	tb.Helper()
	ctx := context.Background()
	url := testenv.SharedPostgres(tb).NewDatabase(tb)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(ctx) })
	migrations := (&postgres.Driver{}).Migrations()
	files, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	for _, f := range files {
		v, err := strconv.Atoi(f[:4])
		if err != nil || v >= 10 {
			continue
		}
		body, err := fs.ReadFile(migrations, f)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(body)); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations VALUES ($1, $2, 'test')`, v, f); err != nil {
			tb.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO endpoints (key, storage_type, repo, joined, created_at) VALUES ('k', 'git', 'r', false, now())`,
		`INSERT INTO hosts (name, type, created_at) VALUES ('h', 'cluster', now())`,
		`INSERT INTO reconcilers (host_id, name, type, endpoint_id, last_report_at, created_at) VALUES (1, 'r', 'flux', 1, now(), now())`,
		`INSERT INTO deployments (reconciler_id, commit_sha, status, first_seen, status_since, last_changed) VALUES (1, 'c', 'success', now(), now(), now())`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO deployment_history (deployment_id, status, message, changed_at)
			SELECT 1, 'success', 'row ' || n, timestamptz '2023-01-15 12:00:00+00' + n * $2::bigint * interval '1 microsecond' FROM generate_series(1, $1::int) AS n`,
		rows, interval.Microseconds()); err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM deployment_history WHERE id % 7 = 0`); err != nil {
		tb.Fatal(err)
	}
	return url, conn
}

func TestHistoryMigrationKeepsRows(t *testing.T) {
	ctx := context.Background()
	url, conn := unpartitionedDatabase(t, 60, 10*24*time.Hour)
	var wantRows, wantMaxID int
	var wantSum string
	if err := conn.QueryRow(ctx, `SELECT count(*), max(id), md5(string_agg(id || message || changed_at, ',' ORDER BY id)) FROM deployment_history`).Scan(&wantRows, &wantMaxID, &wantSum); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	st := testenv.OpenStore(t, "postgres", url)
	t.Logf("migrating %d history rows took %s", wantRows, time.Since(start))
	var rows, maxID int
	var sum string
	if err := st.Read().QueryRow(ctx, `SELECT count(*), max(id), md5(string_agg(id || message || changed_at, ',' ORDER BY id)) FROM deployment_history`).Scan(&rows, &maxID, &sum); err != nil {
		t.Fatal(err)
	}
	if rows != wantRows || maxID != wantMaxID || sum != wantSum {
		t.Errorf("after migration: %d rows, max id %d, digest %s; want %d, %d, %s", rows, maxID, sum, wantRows, wantMaxID, wantSum)
	}
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history h JOIN deployments d ON d.id = h.deployment_id WHERE h.reconciler_id = d.reconciler_id`); n != rows {
		t.Errorf("%d of %d migrated rows name their deployment's reconciler", n, rows)
	}
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history_default`); n != 0 {
		t.Errorf("%d migrated rows in the default partition, want 0: every month with data gets its partition", n)
	}
	got := partitionNames(t, st)
	for _, month := range []string{"2023_01", "2023_06", "2024_08"} {
		if !slices.Contains(got, "deployment_history_p"+month) {
			t.Errorf("partitions %v lack %s", got, month)
		}
	}
	// New rows take ids after the migrated ones.
	var id int
	if err := st.Primary().QueryRow(ctx, `INSERT INTO deployment_history (deployment_id, reconciler_id, status, changed_at) VALUES (1, 1, 'failure', now()) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id <= wantMaxID {
		t.Errorf("new history id %d, want more than %d", id, wantMaxID)
	}
}

// BenchmarkHistoryMigration converts 1,000,000 status changes over three
// years (one every 95 s) to the partitioned table: the time an upgrade
// holds the migration lock.
func BenchmarkHistoryMigration(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		url, _ := unpartitionedDatabase(b, 1_000_000, 95*time.Second)
		b.StartTimer()
		d, err := postgres.Open(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.New(context.Background(), d)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}

var shared *testenv.Postgres

// logLines counts the lines of the shared server's log that contain substr.
func logLines(substr string) int {
	if log := shared.Log(substr); log != "" {
		return strings.Count(log, "\n") + 1
	}
	return 0
}

// TestHistoryMaintenanceDuringIngest prepares partitions, adopting rows
// from the default partition month by month, while reports stream in for
// those very months: every report is stored, in its month's partition once
// the last pass ran, and neither side fails.
func TestHistoryMaintenanceDuringIngest(t *testing.T) {
	ctx := context.Background()
	st := testenv.NewStore(t, "postgres")
	shared = testenv.SharedPostgres(t)
	deadlocks := logLines("deadlock detected")
	ing := ingest.New(st)
	now := time.Now().UTC()
	start := monthStart(now, -12)
	const reports = 360
	done := make(chan error, 1)
	go func() {
		for i := range reports {
			// Months 12 to 1 ago, round and round: most land in the
			// default partition until a pass creates their month.
			at := start.AddDate(0, i%12, 0).Add(time.Duration(i) * time.Minute)
			r := reportAt(t, "aks-"+strconv.Itoa(i), sha(i), model.StatusSuccess, at)
			if _, err := ing.ApplyReport(ctx, r); err != nil {
				done <- fmt.Errorf("report %d: %w", i, err)
				return
			}
		}
		done <- nil
	}()
	passes := 0
	for ingesting := true; ingesting; passes++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			ingesting = false
		default:
		}
		// Each pass is a month later, from a year ago: it creates that
		// month's partition (and the next three) as reports arrive for it.
		at := start.AddDate(0, passes%13, 0)
		if _, err := st.MaintainHistory(ctx, store.HistoryPolicy{}, at); err != nil {
			t.Fatalf("pass %d: %v", passes, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := logLines("deadlock detected"); n != deadlocks {
		t.Errorf("%d deadlocks during the test: partition DDL must take its locks in the writers' order", n-deadlocks)
	}
	if _, err := st.MaintainHistory(ctx, store.HistoryPolicy{}, now); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d passes during ingest of %d reports", passes, reports)
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history`); n != reports {
		t.Errorf("%d history rows, want %d", n, reports)
	}
	if n := count(t, st.Read(), `SELECT count(*) FROM deployment_history_default`); n != 0 {
		t.Errorf("%d rows left in the default partition, want 0", n)
	}
	for m := range 12 {
		if n := count(t, st.Read(), `SELECT count(*) FROM `+partitionOf(start.AddDate(0, m, 0))); n != reports/12 {
			t.Errorf("%s holds %d rows, want %d", partitionOf(start.AddDate(0, m, 0)), n, reports/12)
		}
	}
}

// Time travel reads the same whether the history waits in the default
// partition or lies in monthly ones; in the second case the history's
// floor (the oldest month) lets each probe leave the default partition
// out, and a row arriving in the default partition lifts the floor again.
func TestTimeTravelOverPartitions(t *testing.T) {
	ctx := context.Background()
	st := testenv.NewStore(t, "postgres")
	// Three hosts a year ago, before every partition of the fresh store:
	// each reports sha(1) in progress and then succeeding, an hour apart.
	old := monthStart(time.Now(), -12).Add(24 * time.Hour)
	clock := old.Add(-time.Hour)
	ing := ingest.New(st, ingest.WithClock(func() time.Time { return clock }))
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "prod/web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "web",
		Environment: "prod", Target: "web", Manifests: ep, Version: "1.0.0", Commit: sha(1)}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		host := "aks-" + strconv.Itoa(i)
		for j, status := range []model.Status{model.StatusInProgress, model.StatusSuccess} {
			clock = old.Add(time.Duration(2*i+j) * time.Hour)
			if _, err := ing.ApplyReport(ctx, reportAt(t, host, sha(1), status, clock)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// aks-0 fails three months on, so at the last time below, two months
	// on, its state is in the history: neither that month nor the one
	// before has a change of it, so the probe goes back month by month.
	later := old.AddDate(0, 2, 0)
	clock = old.AddDate(0, 3, 0)
	if _, err := ing.ApplyReport(ctx, reportAt(t, "aks-0", sha(1), model.StatusFailure, clock)); err != nil {
		t.Fatal(err)
	}
	rep := reports.New(st)
	times := []time.Time{old.Add(30 * time.Minute), old.Add(150 * time.Minute), old.Add(10 * time.Hour), later}
	state := func() []string {
		var out []string
		for _, at := range times {
			rows, _, err := rep.EnvironmentStateAt(ctx, reports.Filter{}, at, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				out = append(out, fmt.Sprintf("%s %s %s %d", at.Sub(old), r.DeployedVersion, r.Status, r.Hosts))
			}
		}
		return out
	}
	waitingRows := func() bool {
		_, waiting, err := st.HistoryLayout(ctx, st.Read())
		if err != nil {
			t.Fatal(err)
		}
		return waiting
	}
	if !waitingRows() {
		t.Fatal("the layout says no rows wait in the default partition; the reports above went there")
	}
	waiting := state()
	want := []string{"30m0s 1.0.0 in_progress 1", "2h30m0s 1.0.0 in_progress 1", "2h30m0s 1.0.0 success 1", "10h0m0s 1.0.0 success 3",
		fmt.Sprintf("%s 1.0.0 success 3", later.Sub(old))}
	if !slices.Equal(waiting, want) {
		t.Errorf("time travel over the default partition:\n%q\nwant\n%q", waiting, want)
	}
	if _, err := st.MaintainHistory(ctx, store.HistoryPolicy{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The months between have partitions too, as on a hub that ran all
	// along.
	for m := 1; m < 3; m++ {
		if _, err := st.Primary().Exec(ctx, `SELECT deployment_history_add_partition($1)`, old.AddDate(0, m, 0)); err != nil {
			t.Fatal(err)
		}
	}
	parts, held, err := st.HistoryLayout(ctx, st.Read())
	if err != nil {
		t.Fatal(err)
	}
	if held || len(parts) == 0 || !parts[0].From.Equal(monthStart(old, 0)) {
		t.Errorf("layout once every row lies in a month: waiting %v, partitions %v; want none waiting, the oldest from %s", held, parts, monthStart(old, 0))
	}
	if got := state(); !slices.Equal(got, waiting) {
		t.Errorf("time travel over monthly partitions:\n%q\nwant what it read before\n%q", got, waiting)
	}
	// A report from a clock years behind waits in the default partition.
	clock = old.Add(-time.Hour)
	if _, err := ing.ApplyReport(ctx, reportAt(t, "aks-old", sha(1), model.StatusSuccess, old.AddDate(-5, 0, 0))); err != nil {
		t.Fatal(err)
	}
	if !waitingRows() {
		t.Error("the layout says no rows wait in the default partition; aks-old's report went there")
	}
	if got := state(); !slices.Contains(got, "30m0s 1.0.0 success 1") {
		t.Errorf("time travel with the waiting row: %q, want aks-old's success counted", got)
	}
}
