package storemetrics_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
	"github.com/tidemark-dev/tidemark/internal/store/storemetrics"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A real streaming replica, measured, and one that does not answer: the
// metrics say which serves reads, the lag of the one measured, the reads
// each served and those that fell back to the primary.
func TestCollector(t *testing.T) {
	ctx := context.Background()
	pg := testenv.SharedPostgres(t)
	url := pg.NewDatabase(t)
	testenv.OpenStore(t, "postgres", url) // migrated before the replica copies it
	replica := pg.StartReplica(t)
	d, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	up, err := postgres.OpenReplica(replica.DatabaseURL(url))
	if err != nil {
		t.Fatal(err)
	}
	down, err := postgres.OpenReplica("postgres://postgres@127.0.0.1:1/tidemark?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(ctx, d, store.WithReplicas(up, down), store.WithReplicaCheckInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// What the primary wrote after the base backup (a checkpoint,
	// autovacuum) can leave the first check without a measure of the
	// fresh replica (the replica then looks unhealthy); the next ones
	// have one.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if slices.ContainsFunc(st.Replicas(), func(r store.ReplicaStatus) bool { return r.Name == up.Name() && r.Healthy }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica never became healthy: %+v", st.Replicas())
		}
	}
	var n int
	for range 3 {
		if err := st.Read().QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}

	c := storemetrics.NewCollector(st)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	upName := replica.DatabaseURL(url)[len("postgres://postgres@"):]
	upName = upName[:strings.Index(upName, "?")]
	want := `
# HELP tidemark_store_replica_healthy 1 when the read replica serves reads (reachable, replaying, lag within the bound), else 0.
# TYPE tidemark_store_replica_healthy gauge
tidemark_store_replica_healthy{replica="127.0.0.1:1/tidemark"} 0
tidemark_store_replica_healthy{replica="` + upName + `"} 1
# HELP tidemark_store_replica_reads_total Reads the read replica served.
# TYPE tidemark_store_replica_reads_total counter
tidemark_store_replica_reads_total{replica="127.0.0.1:1/tidemark"} 0
tidemark_store_replica_reads_total{replica="` + upName + `"} 3
# HELP tidemark_store_replica_fallback_reads_total Reads sent to the primary because no read replica was healthy.
# TYPE tidemark_store_replica_fallback_reads_total counter
tidemark_store_replica_fallback_reads_total 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"tidemark_store_replica_healthy", "tidemark_store_replica_reads_total", "tidemark_store_replica_fallback_reads_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "tidemark_store_replica_lag_seconds"); n != 1 {
		t.Errorf("%d lag series, want 1 (the replica measured)", n)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Errorf("register: %v", err)
	}
}
