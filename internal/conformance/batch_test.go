package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// The batch path stores exactly what one-by-one ingest stores.
func testBatch(t *testing.T, e *env) {
	other := &env{t: t, st: e.open(t), clock: &Clock{t: e.clock.Now()}}
	other.ing = ingest.New(other.st, ingest.WithClock(other.clock.Now))
	var batches [][]model.Report
	hostsN := 6
	add := func(rs ...model.Report) { batches = append(batches, rs) }
	var first []model.Report
	for h := range hostsN {
		first = append(first, report(t, fmt.Sprintf("h%d", h), "drone", "dev", commit(1), model.StatusInProgress))
	}
	add(first...) // new reconcilers: the slow path
	var second []model.Report
	for h := range hostsN {
		r := report(t, fmt.Sprintf("h%d", h), "drone", "dev", commit(1), model.StatusSuccess)
		second = append(second, r, r) // a replay inside the batch
	}
	add(second...)
	var third []model.Report
	for h := range hostsN {
		r := report(t, fmt.Sprintf("h%d", h), "drone", "dev", commit(2), model.StatusInProgress)
		third = append(third, r)
		r.Status, r.Message = model.StatusSuccess, "applied"
		if h == 0 {
			r.Status, r.Message = model.StatusFailure, "crash loop"
		}
		third = append(third, r) // two states of one reconciler in one batch
	}
	third = append(third, report(t, "h1", "drone", "dev", commit(3)[:8], model.StatusSuccess)) // abbreviated: slow path
	add(third...)
	add(report(t, "h2", "drone", "dev", commit(1), model.StatusSuccess)) // back to an older commit
	// Within one batch: back and forth between commits, a failure then a
	// success, and a report older than the one before it. Batch k is
	// applied 1+k+1 minutes after the start (the descriptors take one).
	applied := e.clock.Now().Add(time.Duration(len(batches)+2) * time.Minute)
	var fourth []model.Report
	for _, c := range []struct {
		host   string
		n      int
		status model.Status
		ago    time.Duration
	}{
		{"h3", 2, model.StatusFailure, 50 * time.Second}, {"h3", 1, model.StatusSuccess, 40 * time.Second}, {"h3", 2, model.StatusSuccess, 30 * time.Second},
		{"h4", 1, model.StatusFailure, 20 * time.Second}, {"h4", 2, model.StatusInProgress, 45 * time.Second}, {"h4", 1, model.StatusSuccess, 10 * time.Second},
	} {
		r := report(t, c.host, "drone", "dev", commit(c.n), c.status)
		r.ObservedAt = applied.Add(-c.ago)
		fourth = append(fourth, r)
	}
	// The same status with another message: a change, not a new status.
	for i, msg := range []string{"applied 1/2", "applied 2/2"} {
		r := report(t, "h5", "drone", "dev", commit(2), model.StatusSuccess)
		r.Message, r.ObservedAt = msg, applied.Add(time.Duration(i-2)*time.Second)
		fourth = append(fourth, r)
	}
	add(fourth...)

	for _, x := range []*env{e, other} {
		x.descriptor(descriptor(t, "api", "dev", "drone", "1.0.0", commit(1)))
		x.clock.Advance(time.Minute)
		x.descriptor(descriptor(t, "api", "dev", "drone", "2.0.0", commit(2)))
	}
	for _, b := range batches {
		e.clock.Advance(time.Minute)
		other.clock.Advance(time.Minute)
		res, err := e.ing.ApplyReports(ctx, b)
		if err != nil {
			t.Fatalf("ApplyReports: %v", err)
		}
		for i, r := range b {
			one, err := other.ing.ApplyReport(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if one.Changed != res[i].Changed {
				t.Errorf("report %d of a batch: changed %v, one by one %v", i, res[i].Changed, one.Changed)
			}
		}
	}
	for _, tbl := range tables {
		if a, b := e.count(tbl), other.count(tbl); a != b {
			t.Errorf("%s: %d rows from batches, %d one by one", tbl, a, b)
		}
	}
	if a, b := e.versions(), other.versions(); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("deployed versions differ:\nbatch %v\n one  %v", a, b)
	}
	if a, b := history(e), history(other); !slices.Equal(a, b) {
		t.Errorf("history differs:\nbatch %v\n one  %v", a, b)
	}
	if a, b := deployments(e), deployments(other); !slices.Equal(a, b) {
		t.Errorf("deployments differ:\nbatch %v\n one  %v", a, b)
	}
	// What the fourth batch leaves, on its own: its reports' times, the
	// first failure, a status kept across a new message.
	at := func(d time.Duration) string { return applied.Add(d).Format(time.RFC3339) }
	thirdAt := applied.Add(-2 * time.Minute).Format(time.RFC3339)
	for _, want := range []string{
		"h3 02c0ffee success  " + thirdAt + " " + at(-30*time.Second) + " " + at(-30*time.Second) + " " + at(-50*time.Second) + " 02c0ffee success",
		"h4 01c0ffee success  " + at(-4*time.Minute) + " " + at(-10*time.Second) + " " + at(-10*time.Second) + " " + at(-20*time.Second) + " 01c0ffee success",
		"h5 02c0ffee success applied 2/2 " + thirdAt + " " + thirdAt + " " + at(-time.Second) + " - 02c0ffee success",
	} {
		if got := deployments(e); !slices.Contains(got, want) {
			t.Errorf("deployments lack %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if got := e.versions()["h0/api/drone"]; got != "2.0.0 failure" {
		t.Errorf("h0: %q", got)
	}
}

func history(e *env) []string {
	rows, err := e.st.Read().Query(ctx, `SELECT h.name, d.commit_sha, dh.status, dh.message, dh.changed_at, d.status_since, r.status_since
		FROM deployment_history dh JOIN deployments d ON d.id = dh.deployment_id
		JOIN reconcilers r ON r.id = d.reconciler_id JOIN hosts h ON h.id = r.host_id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var host, sha, st, msg string
		var at, since, rsince time.Time
		if err := rows.Scan(&host, &sha, &st, &msg, &at, &since, &rsince); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, strings.Join([]string{host, sha[:8], st, msg, at.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339), rsince.UTC().Format(time.RFC3339)}, " "))
	}
	slices.Sort(out)
	return out
}

// deployments lists every deployment with its times and its reconciler's
// current commit and status.
func deployments(e *env) []string {
	rows, err := e.st.Read().Query(ctx, `SELECT h.name, d.commit_sha, d.status, d.message, d.first_seen, d.status_since, d.last_changed,
			d.first_failure_at, r.commit_sha, r.status
		FROM deployments d JOIN reconcilers r ON r.id = d.reconciler_id JOIN hosts h ON h.id = r.host_id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var host, sha, st, msg, current, currentStatus string
		var first, since, last time.Time
		var failed *time.Time
		if err := rows.Scan(&host, &sha, &st, &msg, &first, &since, &last, &failed, &current, &currentStatus); err != nil {
			e.t.Fatal(err)
		}
		failure := "-"
		if failed != nil {
			failure = failed.UTC().Format(time.RFC3339)
		}
		out = append(out, strings.Join([]string{host, sha[:8], st, msg, first.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339),
			last.UTC().Format(time.RFC3339), failure, current[:min(8, len(current))], currentStatus}, " "))
	}
	slices.Sort(out)
	return out
}
