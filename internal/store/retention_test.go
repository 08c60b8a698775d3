package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func endpoint(t *testing.T) model.Endpoint {
	t.Helper()
	ep, err := model.NewEndpoint("git", "https://github.com/acme/gitops", "main", "prod/web")
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func sha(n int) string { return fmt.Sprintf("%040x", n) }

func count(t *testing.T, st *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Read().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// seedYears stores two years of rollouts of one target with two hosts:
// each month a version is assigned, both hosts go in_progress, one fails
// first on odd months, then both succeed; the last one is still rolling
// out.
func seedYears(t *testing.T, ing *ingest.Service, now time.Time) {
	t.Helper()
	ctx := context.Background()
	for m := 24; m >= 0; m-- {
		at := now.AddDate(0, -m, 0).Add(-48 * time.Hour)
		d := model.Descriptor{Workspace: "acme", Application: "shop", Workload: "web", Environment: "prod", Target: "web-prod",
			Manifests: endpoint(t), Version: fmt.Sprintf("1.%d.0", 24-m), Build: fmt.Sprint(24 - m), Commit: sha(24 - m + 1),
			BuildTime: at.Add(-time.Hour), AssignedAt: at}
		if _, err := ing.ApplyDescriptor(ctx, d); err != nil {
			t.Fatal(err)
		}
		for h, host := range []string{"aks-1", "aks-2"} {
			report := func(status model.Status, after time.Duration) {
				t.Helper()
				r := model.Report{Host: host, Reconciler: "flux-system", ReconcilerType: "flux", Endpoint: endpoint(t),
					Commit: d.Commit, Status: status, Message: string(status), ObservedAt: at.Add(after)}
				if _, err := ing.ApplyReport(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			report(model.StatusInProgress, time.Minute)
			if m == 0 {
				continue
			}
			if h == 1 && m%2 == 1 {
				report(model.StatusFailure, 5*time.Minute)
			}
			report(model.StatusSuccess, time.Duration(10+h)*time.Minute)
		}
	}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRetentionKeepsReports keeps six months of status history out of two
// years: PostgreSQL drops whole months, SQLite deletes rows in chunks, no
// status change older than the retention remains on either, and the
// reports that outlive the history (Environment History, DORA) answer the
// same as before.
func TestRetentionKeepsReports(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		clock := func() time.Time { return now }
		seedYears(t, ingest.New(st, ingest.WithClock(clock)), now)
		rs := reports.New(st, reports.WithClock(clock))
		all := reports.Filter{Since: now.AddDate(-3, 0, 0)}
		history := func() []reports.HistoryRow {
			rows, _, err := rs.History(ctx, all, reports.Page{Limit: reports.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		dora := func() []reports.DORARow {
			rows, _, err := rs.DORA(ctx, all, reports.Page{})
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		historyBefore, doraBefore := history(), dora()
		if len(historyBefore) != 25 || len(doraBefore) != 1 || doraBefore[0].Failed == 0 {
			t.Fatalf("seeded %d History rows and DORA %s; want 25 assignments, one DORA row with failures", len(historyBefore), asJSON(t, doraBefore))
		}

		retention := 183 * 24 * time.Hour
		cutoff := now.Add(-retention)
		total := count(t, st, `SELECT count(*) FROM deployment_history`)
		old := count(t, st, `SELECT count(*) FROM deployment_history WHERE changed_at < $1`, cutoff)
		m, err := st.MaintainHistory(ctx, store.HistoryPolicy{Retention: retention, PruneChunk: 7}, now)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: retention kept %d of %d status changes; dropped partitions %v, deleted %d rows, in %s",
			st.Engine(), count(t, st, `SELECT count(*) FROM deployment_history`), total, m.Dropped, m.RowsDeleted, m.Took)
		if !m.Cutoff.Equal(cutoff) {
			t.Errorf("cutoff %s, want %s", m.Cutoff, cutoff)
		}
		// PostgreSQL drops only whole months: the month that holds the
		// cutoff stays.
		limit := cutoff
		if st.Engine() == "postgres" {
			limit = time.Date(cutoff.Year(), cutoff.Month(), 1, 0, 0, 0, 0, time.UTC)
		}
		if n := count(t, st, `SELECT count(*) FROM deployment_history WHERE changed_at < $1`, limit); n != 0 {
			t.Errorf("%d status changes older than %s remain", n, limit)
		}
		kept := count(t, st, `SELECT count(*) FROM deployment_history`)
		switch st.Engine() {
		case "postgres":
			// (The month that holds the cutoff keeps its older rows, if
			// it has any: none when the cutoff falls at its very start.)
			if len(m.Dropped) < 17 || m.RowsDeleted != 0 || kept < total-old {
				t.Errorf("postgres: dropped %d partitions, deleted %d rows, kept %d of %d (%d older than the cutoff); want whole months dropped, none deleted row by row, every newer one kept",
					len(m.Dropped), m.RowsDeleted, kept, total, old)
			}
		case "sqlite":
			if len(m.Dropped) != 0 || m.RowsDeleted != int64(old) || kept != total-old {
				t.Errorf("sqlite: dropped %v, deleted %d rows, kept %d; want the %d rows older than the cutoff deleted, %d kept",
					m.Dropped, m.RowsDeleted, kept, old, total-old)
			}
		}

		if got := history(); asJSON(t, got) != asJSON(t, historyBefore) {
			t.Errorf("Environment History changed with retention:\nbefore %s\nafter %s", asJSON(t, historyBefore), asJSON(t, got))
		}
		if got := dora(); asJSON(t, got) != asJSON(t, doraBefore) {
			t.Errorf("DORA changed with retention:\nbefore %s\nafter %s", asJSON(t, doraBefore), asJSON(t, got))
		}
	})
}

func TestRetentionRefusesNegative(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	if _, err := st.MaintainHistory(context.Background(), store.HistoryPolicy{Retention: -time.Hour}, time.Now()); err == nil {
		t.Error("a negative retention was accepted")
	}
}
