package postgres_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
	"github.com/tidemark-dev/tidemark/internal/store/sqlite"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// replicatedStore opens a store over a fresh database of the shared
// server with a streaming replica of it, measured every 50 ms.
func replicatedStore(t testing.TB, maxLag time.Duration) (*store.Store, *testenv.Postgres) {
	t.Helper()
	ctx := context.Background()
	pg := testenv.SharedPostgres(t)
	url := pg.NewDatabase(t)
	replica := pg.StartReplica(t)
	d, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := postgres.OpenReplica(replica.DatabaseURL(url))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(ctx, d, store.WithReplicas(rep), store.WithMaxReplicaLag(maxLag),
		store.WithReplicaCheckInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, replica
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func replicaStatus(st *store.Store) store.ReplicaStatus { return st.Replicas()[0] }

func hostStatus(t *testing.T, rs *reports.Service, host string) string {
	t.Helper()
	rows, _, err := rs.HostState(context.Background(), reports.Filter{Host: host}, reports.Page{})
	if err != nil {
		t.Fatalf("Host State: %v", err)
	}
	if len(rows) != 1 {
		t.Fatalf("Host State of %s: %d rows, want 1", host, len(rows))
	}
	return rows[0].Status
}

func primaryStatus(t *testing.T, st *store.Store, host string) string {
	t.Helper()
	var s string
	if err := st.Primary().QueryRow(context.Background(), `SELECT r.status FROM reconcilers r JOIN hosts h ON h.id = r.host_id WHERE h.name = $1`, host).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReadReplica runs reads against a real streaming replica: reports
// come from it (they miss a write it has not replayed, which Primary sees
// at once), a write becomes visible on it, a replica lagging beyond the
// bound or stopped sends reads to the primary, and it comes back when it
// recovers.
func TestReadReplica(t *testing.T) {
	ctx := context.Background()
	const maxLag = 2 * time.Second
	st, replica := replicatedStore(t, maxLag)
	ing := ingest.New(st)
	rs := reports.New(st)
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "prod/web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "web",
		Environment: "prod", Target: "web-prod", Manifests: ep, Version: "1.0.0", Commit: sha(1)}); err != nil {
		t.Fatal(err)
	}
	report := func(status model.Status) {
		t.Helper()
		if _, err := ing.ApplyReport(ctx, model.Report{Host: "aks-1", Reconciler: "flux-system", ReconcilerType: "flux",
			Endpoint: ep, Commit: sha(1), Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	report(model.StatusInProgress)
	replica.WaitReplayed(t)
	took := waitFor(t, "the replica healthy and caught up", func() bool {
		s := replicaStatus(st)
		return s.Healthy && s.LagKnown && s.Lag == 0
	})
	t.Logf("replica healthy with lag 0 after %s", took)
	if got := hostStatus(t, rs, "aks-1"); got != "in_progress" {
		t.Fatalf("Host State from the replica: %s, want in_progress", got)
	}

	// Replay paused: the report is on the primary only. Reports read the
	// replica and miss it; Primary sees it at once.
	replica.PauseReplay(t)
	readsBefore := replicaStatus(st).Reads
	report(model.StatusFailure)
	if got := primaryStatus(t, st, "aks-1"); got != "failure" {
		t.Errorf("Primary right after the write: %s, want failure", got)
	}
	if got := hostStatus(t, rs, "aks-1"); got != "in_progress" {
		t.Errorf("Host State while the replica's replay is paused: %s, want in_progress (read from the replica; its status %+v)", got, replicaStatus(st))
	}
	if s := replicaStatus(st); s.Reads <= readsBefore {
		t.Errorf("replica reads %d, want more than %d", s.Reads, readsBefore)
	}

	// Replay resumed: the write becomes visible through Read.
	replica.ResumeReplay(t)
	took = waitFor(t, "the write visible on the replica", func() bool { return hostStatus(t, rs, "aks-1") == "failure" })
	t.Logf("write visible through Read %s after replay resumed", took)
	fallbacks := st.PrimaryFallbackReads()

	// Paused for longer than the bound: the lag shows, the replica leaves
	// the rotation and reads see the primary.
	replica.PauseReplay(t)
	report(model.StatusSuccess)
	took = waitFor(t, "the replica's lag over the bound", func() bool { return !replicaStatus(st).Healthy })
	s := replicaStatus(st)
	t.Logf("lagging replica left the rotation %s after the write: lag %s, %q", took, s.Lag, s.Error)
	if !s.LagKnown || s.Lag <= maxLag || s.Lag > maxLag+time.Second || !strings.Contains(s.Error, "exceeds the bound") {
		t.Errorf("lagging replica: %+v; want a lag just over %s", s, maxLag)
	}
	if got := hostStatus(t, rs, "aks-1"); got != "success" {
		t.Errorf("Host State with the replica lagging: %s, want success (read from the primary)", got)
	}
	if st.PrimaryFallbackReads() <= fallbacks {
		t.Errorf("primary fallback reads %d, want more than %d", st.PrimaryFallbackReads(), fallbacks)
	}
	replica.ResumeReplay(t)
	waitFor(t, "the replica back in the rotation", func() bool { return replicaStatus(st).Healthy })

	// Stopped: reads in flight go to the primary before the next check
	// notices, and the replica leaves the rotation.
	replica.Halt()
	report(model.StatusFailure)
	for range 5 {
		if got := hostStatus(t, rs, "aks-1"); got != "failure" {
			t.Errorf("Host State with the replica stopped: %s, want failure (from the primary)", got)
		}
	}
	waitFor(t, "the stopped replica out of the rotation", func() bool { return !replicaStatus(st).Healthy })
	t.Logf("stopped replica: %q", replicaStatus(st).Error)

	// Started again: back in the rotation.
	if err := replica.Start(); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, "the restarted replica healthy", func() bool { return replicaStatus(st).Healthy })
	t.Logf("restarted replica healthy after %s", took)
}

// ReadForValues reads from a healthy replica, and from the primary when
// the replica fails under it.
func TestReadForValuesOnReplica(t *testing.T) {
	ctx := context.Background()
	st, replica := replicatedStore(t, 2*time.Second)
	waitFor(t, "the replica healthy", func() bool { return replicaStatus(st).Healthy })
	inRecovery := func() (bool, int) {
		t.Helper()
		var standby bool
		runs := 0
		if err := st.ReadForValues(ctx, func(q store.Querier) error {
			runs++
			return q.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby)
		}); err != nil {
			t.Fatal(err)
		}
		return standby, runs
	}
	reads := replicaStatus(st).Reads
	if standby, runs := inRecovery(); !standby || runs != 1 {
		t.Errorf("ReadForValues with a healthy replica: on a standby %v, %d runs; want the replica, once", standby, runs)
	}
	if got := replicaStatus(st).Reads; got <= reads {
		t.Errorf("replica reads %d, want more than %d", got, reads)
	}
	// Stopped before the next check notices: the read fails over.
	replica.Halt()
	if standby, _ := inRecovery(); standby {
		t.Error("ReadForValues with the replica stopped read a standby, want the primary")
	}
	if err := replica.Start(); err != nil {
		t.Fatal(err)
	}
}

// TestReplicaRoutesWritesToPrimary: Exec through Read runs on the
// primary, while the replica itself refuses writes.
func TestReplicaRoutesWritesToPrimary(t *testing.T) {
	ctx := context.Background()
	pg := testenv.SharedPostgres(t)
	url := pg.NewDatabase(t)
	testenv.OpenStore(t, "postgres", url) // migrated
	replica := pg.StartReplica(t)
	d, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := postgres.OpenReplica(replica.DatabaseURL(url))
	if err != nil {
		t.Fatal(err)
	}
	// The server is shared: other tests write to it, so the replica may
	// be a few records behind when New checks it. Once it has replayed a
	// transaction its lag is known (the age of that replay) and small;
	// before, New found it behind with nothing to date it by.
	for _, sql := range []string{`CREATE TABLE replica_marker ()`, `DROP TABLE replica_marker`} {
		if _, err := d.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	var marker string
	if err := d.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&marker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica to replay the marker", func() bool {
		var done bool
		err := rep.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, marker).Scan(&done)
		return err == nil && done
	})
	// Checked once, at New: what follows relies on reads alone.
	st, err := store.New(ctx, d, store.WithReplicas(rep), store.WithReplicaCheckInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !replicaStatus(st).Healthy {
		t.Fatalf("replica after New: %+v, want healthy", replicaStatus(st))
	}
	if _, err := rep.Exec(ctx, `INSERT INTO environments (name, created_at) VALUES ('qa', now())`); err == nil {
		t.Error("the replica took a write")
	}
	if _, err := st.Read().Exec(ctx, `INSERT INTO environments (name, created_at) VALUES ('dev', now())`); err != nil {
		t.Fatalf("Exec through Read: %v", err)
	}
	if n := count(t, st.Primary(), `SELECT count(*) FROM environments`); n != 1 {
		t.Errorf("%d environments on the primary, want 1", n)
	}

	// The replica stops between checks: the reads it fails run again on
	// the primary, and it leaves the rotation.
	replica.Halt()
	if n := count(t, st.Read(), `SELECT count(*) FROM environments`); n != 1 {
		t.Errorf("QueryRow through Read with the replica stopped: %d environments, want 1 (from the primary)", n)
	}
	rows, err := st.Read().Query(ctx, `SELECT name FROM environments`)
	if err != nil {
		t.Fatalf("Query through Read with the replica stopped: %v", err)
	}
	rows.Close()
	if s := replicaStatus(st); s.Healthy || !strings.HasPrefix(s.Error, "read failed: ") {
		t.Errorf("replica after a failed read: %+v, want out of the rotation", s)
	}
}

// TestReplicasNeedPostgres: an SQLite store refuses read replicas, naming
// what to do.
func TestReplicasNeedPostgres(t *testing.T) {
	ctx := context.Background()
	rep, err := postgres.OpenReplica("postgres://tidemark@127.0.0.1:1/tidemark")
	if err != nil {
		t.Fatal(err)
	}
	d, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tidemark.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, err := store.New(ctx, d, store.WithReplicas(rep))
	if err == nil {
		st.Close()
		t.Fatal("an SQLite store took a read replica")
	}
	if !strings.Contains(err.Error(), "PostgreSQL") {
		t.Errorf("error %q does not say replicas need PostgreSQL", err)
	}
}

// TestReplicaDownAtStart: a replica that does not answer when the hub
// starts is reported unhealthy, and reads go to the primary.
func TestReplicaDownAtStart(t *testing.T) {
	ctx := context.Background()
	url := testenv.SharedPostgres(t).NewDatabase(t)
	d, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := postgres.OpenReplica("postgres://postgres@127.0.0.1:1/tidemark?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(ctx, d, store.WithReplicas(rep), store.WithReplicaCheckInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := replicaStatus(st)
	if s.Healthy || s.Error == "" || s.Name != "127.0.0.1:1/tidemark" {
		t.Errorf("unreachable replica: %+v; want unhealthy, with the error, named host:port/database", s)
	}
	if n := count(t, st.Read(), `SELECT count(*) FROM schema_migrations`); n == 0 {
		t.Error("no migrations read through Read")
	}
	if st.PrimaryFallbackReads() != 1 {
		t.Errorf("primary fallback reads %d, want 1", st.PrimaryFallbackReads())
	}
}
