package dashboards_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tidemark-dev/tidemark/internal/demo"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

// Names that need quoting, in a small fleet beside the demo fleet.
const (
	oddWorkspace   = "o'brien & co"
	oddApplication = "app ünï"
	oddWorkload    = "w'1 — x"
	oddEnvironment = "Pre-Prod (eu)"
	oddTarget      = "t'1 #2"
	oddHost        = "vm o'neil"
)

// Every panel's SQL, with its variables expanded as Grafana expands them,
// runs as a login that is only in the reporting role, and gives the API's
// numbers (reports.Service) on the demo fleet.
func TestPanelsGiveTheReportsNumbers(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dbURL := pg.NewDatabase(t)
	st := testenv.OpenStore(t, "postgres", dbURL)
	now := time.Now()
	if _, err := demo.Load(ctx, st, now); err != nil {
		t.Fatal(err)
	}
	addOddNames(t, ingest.New(st), now)
	conn, err := pgx.Connect(ctx, testenv.ReportingLogin(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	h := &harness{t: t, conn: conn, rep: reports.New(st)}

	ms := func(t time.Time) time.Time { return t.Truncate(time.Millisecond) } // Grafana's times are in ms
	scenarios := []struct {
		name string
		sel  selection
	}{
		{"all values", selection{from: ms(now.Add(-30 * 24 * time.Hour)), to: ms(now)}},
		{"one value each", selection{
			multi: map[string][]string{"workspace": {"payments"}, "application": {"checkout"}, "environment": {"prod"},
				"workload": {"payment-gateway"}, "target": {"eastus"}, "status": {"failure"}},
			from: ms(now.Add(-7 * 24 * time.Hour)), to: ms(now)}},
		{"several values, a promotion order, a week three weeks ago", selection{
			multi: map[string][]string{"workspace": {"catalog"}, "environment": {"prod", "dev"}, "status": {"success", "in_progress"}},
			text:  map[string]string{"promotion_order": "prod, qa", "stale_after": "30m"},
			from:  ms(now.Add(-21 * 24 * time.Hour)), to: ms(now.Add(-14 * 24 * time.Hour))}},
		{"names that need quoting", selection{
			multi: map[string][]string{"workspace": {oddWorkspace}, "application": {oddApplication}, "environment": {oddEnvironment, "qa"},
				"workload": {oddWorkload}},
			text: map[string]string{"host": oddHost},
			from: ms(now.Add(-2 * time.Hour)), to: ms(now)}},
		{"one host", selection{text: map[string]string{"host": "aks-prod-eastus-01", "stale_after": "2d"},
			from: ms(now.Add(-30 * 24 * time.Hour)), to: ms(now)}},
		{"hosts not reported yet", selection{multi: map[string][]string{"environment": {"prod"}, "status": {"not_reported"}},
			from: ms(now.Add(-30 * 24 * time.Hour)), to: ms(now)}},
	}
	ds := loadDashboards(t)
	checked := map[string]bool{}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			h.t = t
			for _, uid := range slices.Sorted(maps.Keys(ds)) {
				d := ds[uid]
				sel := sc.sel
				sel.multi = h.applicable(d, sc.sel.multi)
				for _, v := range d.Templating.List {
					if q, ok := v.Query.(string); ok && v.Type == "query" {
						h.checkVariable(uid, v.Name, sel, q)
						checked["$"+v.Name] = true
					}
				}
				for _, p := range d.Panels {
					key := p.Type + ":" + p.Title
					check, ok := panelChecks[key]
					if !ok {
						t.Errorf("%s: no check for panel %q (%s): add one to panelChecks", uid, p.Title, p.Type)
						continue
					}
					for _, q := range p.Targets {
						rows := h.run(uid+"/"+p.Title, sel, q.RawSQL)
						if sc.name == "all values" && len(rows) == 0 {
							t.Errorf("%s/%s: %d rows for the whole demo fleet: the comparison would prove little", uid, p.Title, len(rows))
						}
						check(h, sel, rows)
					}
					checked[key] = true
				}
			}
		})
	}
	for key := range panelChecks {
		if !checked[key] {
			t.Errorf("check %q matches no panel", key)
		}
	}
}

// addOddNames adds a workload, environment, target and host whose names
// need quoting: the host fails a version, and succeeds with the next one
// (a restore, for DORA).
func addOddNames(t *testing.T, ing *ingest.Service, now time.Time) {
	t.Helper()
	ep, err := model.NewEndpoint("git", "https://github.com/obrien/odd-gitops", "pre-prod", "t1")
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.Repeat("ab", 20)
	if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: oddWorkspace, Application: oddApplication, Workload: oddWorkload,
		Environment: oddEnvironment, Target: oddTarget, Manifests: ep, Version: "1.0.0'rc", Commit: commit, AssignedAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	report := model.Report{Host: oddHost, HostType: model.HostVM, Reconciler: "agent's", ReconcilerType: "agent",
		Endpoint: ep, Commit: commit, Status: model.StatusFailure, Message: `it's "broken"`, ObservedAt: now.Add(-50 * time.Minute)}
	if _, err := ing.ApplyReport(ctx, report); err != nil {
		t.Fatal(err)
	}
	fix := strings.Repeat("cd", 20)
	if _, err := ing.ApplyDescriptor(ctx, model.Descriptor{Workspace: oddWorkspace, Application: oddApplication, Workload: oddWorkload,
		Environment: oddEnvironment, Target: oddTarget, Manifests: ep, Version: "1.0.1", Commit: fix, AssignedAt: now.Add(-40 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	report.Commit, report.Status, report.Message, report.ObservedAt = fix, model.StatusSuccess, "", now.Add(-30*time.Minute)
	if _, err := ing.ApplyReport(ctx, report); err != nil {
		t.Fatal(err)
	}
}

// harness runs panels' SQL and asks the reports for the same numbers.
type harness struct {
	t    *testing.T
	conn *pgx.Conn
	rep  *reports.Service
}

// row is one result row: column -> value (NULL: nil).
type row map[string]any

// applicable keeps the selections of the variables the dashboard has.
func (h *harness) applicable(d provisioned, multi map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, v := range d.Templating.List {
		if vals, ok := multi[v.Name]; ok {
			out[v.Name] = vals
		}
	}
	return out
}

// run expands sql for sel and runs it as the reporting login.
func (h *harness) run(what string, sel selection, raw string) []row {
	h.t.Helper()
	sql, err := sel.sql(raw)
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
	rows, err := h.conn.Query(ctx, sql)
	if err != nil {
		h.t.Fatalf("%s: %v\n%s", what, err, sql)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			h.t.Fatal(err)
		}
		r := row{}
		for i, f := range rows.FieldDescriptions() {
			r[f.Name] = vals[i]
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		h.t.Fatalf("%s: %v\n%s", what, err, sql)
	}
	return out
}

// filters are the API filters a selection stands for: one per combination
// of the selected values (one filter, empty, when everything is All). The
// union of their answers is what the panel shows.
func filters(sel selection, names ...string) []reports.Filter {
	out := []reports.Filter{{Host: sel.text["host"]}}
	for _, name := range names {
		vals, ok := sel.multi[name]
		if !ok {
			continue
		}
		var next []reports.Filter
		for _, f := range out {
			for _, v := range vals {
				g := f
				switch name {
				case "workspace":
					g.Workspace = v
				case "application":
					g.Application = v
				case "environment":
					g.Environment = v
				case "workload":
					g.Workload = v
				case "target":
					g.Target = v
				case "status":
					g.Status = v
				}
				next = append(next, g)
			}
		}
		out = next
	}
	return out
}

func (h *harness) promotion(sel selection) []string {
	var order []string
	for _, e := range strings.Split(sel.text["promotion_order"], ",") {
		if e = strings.TrimSpace(e); e != "" {
			order = append(order, e)
		}
	}
	return order
}

// all reads every page of a report.
func all[T any](h *harness, list func(reports.Page) ([]T, string, error)) []T {
	h.t.Helper()
	var out []T
	p := reports.Page{Limit: reports.MaxLimit}
	for {
		items, next, err := list(p)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, items...)
		if next == "" {
			return out
		}
		p.Cursor = next
	}
}

func (h *harness) environmentState(sel selection) []reports.EnvironmentStateRow {
	var out []reports.EnvironmentStateRow
	for _, f := range filters(sel, "workspace", "application", "environment", "workload", "target") {
		f.Host = ""
		out = append(out, all(h, func(p reports.Page) ([]reports.EnvironmentStateRow, string, error) {
			return h.rep.EnvironmentState(ctx, f, p)
		})...)
	}
	return out
}

func (h *harness) hostState(sel selection) []reports.HostStateRow {
	var out []reports.HostStateRow
	for _, f := range filters(sel, "workspace", "application", "environment", "workload", "target", "status") {
		out = append(out, all(h, func(p reports.Page) ([]reports.HostStateRow, string, error) {
			return h.rep.HostState(ctx, f, p)
		})...)
	}
	return out
}

// history lists assignments, of the selection's time range when inRange.
func (h *harness) history(sel selection, inRange bool, names ...string) []reports.HistoryRow {
	if len(names) == 0 {
		names = []string{"workspace", "application", "environment", "workload", "target"}
	}
	var out []reports.HistoryRow
	for _, f := range filters(sel, names...) {
		f.Host = ""
		if inRange {
			f.Since, f.Until = sel.from, sel.to
		}
		out = append(out, all(h, func(p reports.Page) ([]reports.HistoryRow, string, error) {
			return h.rep.History(ctx, f, p)
		})...)
	}
	return out
}

func (h *harness) drift(sel selection) []reports.DriftRow {
	stale, err := parseInterval(cmpOr(sel.text["stale_after"], "1h"))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []reports.DriftRow
	for _, f := range filters(sel, "workspace", "application", "environment", "workload", "target") {
		out = append(out, all(h, func(p reports.Page) ([]reports.DriftRow, string, error) {
			return h.rep.Drift(ctx, f, stale, p)
		})...)
	}
	return out
}

func (h *harness) dora(sel selection) []reports.DORARow {
	var out []reports.DORARow
	for _, f := range filters(sel, "workspace", "application", "environment", "workload") {
		f.Host = ""
		f.Since, f.Until = sel.from, sel.to
		out = append(out, all(h, func(p reports.Page) ([]reports.DORARow, string, error) {
			return h.rep.DORA(ctx, f, p)
		})...)
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Canonical forms, to compare rows as multisets.

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case *time.Time:
		if x == nil {
			return ""
		}
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return fmt.Sprintf("%.9g", x)
	case *float64:
		if x == nil {
			return ""
		}
		return fmt.Sprintf("%.9g", *x)
	}
	return fmt.Sprint(v)
}

func line(vals ...any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = str(v)
	}
	return strings.Join(parts, " | ")
}

// lines renders rows' columns.
func lines(rows []row, cols ...string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		vals := make([]any, len(cols))
		for j, c := range cols {
			v, ok := r[c]
			if !ok {
				panic("no column " + c)
			}
			vals[j] = number(v)
		}
		out[i] = line(vals...)
	}
	return out
}

// number turns the database's integers and floats into Go's.
func number(v any) any {
	switch x := v.(type) {
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case float32:
		return float64(x)
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return nil
		}
		return f.Float64
	}
	return v
}

// sameLines fails the test unless got and want hold the same lines, in
// any order.
func (h *harness) sameLines(what string, got, want []string) {
	h.t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if slices.Equal(g, w) {
		return
	}
	var missing, extra []string
	for _, x := range w {
		if !slices.Contains(g, x) {
			missing = append(missing, x)
		}
	}
	for _, x := range g {
		if !slices.Contains(w, x) {
			extra = append(extra, x)
		}
	}
	h.t.Errorf("%s: %d rows, the API %d\nonly in the panel:\n  %s\nonly in the API:\n  %s", what, len(got), len(want),
		strings.Join(first(extra, 10), "\n  "), strings.Join(first(missing, 10), "\n  "))
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }

// checkVariable compares a variable's options with the API's.
func (h *harness) checkVariable(uid, name string, sel selection, raw string) {
	h.t.Helper()
	rows := h.run(uid+"/$"+name, sel, raw)
	var got []string
	for _, r := range rows {
		for _, v := range r {
			got = append(got, str(v))
		}
	}
	if name == "environment" {
		want, err := h.rep.Environments(ctx, h.promotion(sel))
		if err != nil {
			h.t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			h.t.Errorf("%s: $environment options %q, the API's environments in promotion order %q", uid, got, want)
		}
		return
	}
	narrowing := map[string][]string{
		"workspace": nil, "application": {"workspace"}, "workload": {"workspace", "application"},
		"target": {"workspace", "application", "environment", "workload"},
	}[name]
	set := map[string]bool{}
	for _, r := range h.environmentState(selection{multi: pick(sel.multi, narrowing...)}) {
		set[map[string]string{"workspace": r.Workspace, "application": r.Application, "workload": r.Workload, "target": r.Target}[name]] = true
	}
	h.sameLines(uid+"/$"+name, got, slices.Collect(maps.Keys(set)))
}

func pick(m map[string][]string, names ...string) map[string][]string {
	out := map[string][]string{}
	for _, n := range names {
		if v, ok := m[n]; ok {
			out[n] = v
		}
	}
	return out
}

// panelChecks compare each panel's rows with the reports' numbers, by
// "type:title".
var panelChecks = map[string]func(h *harness, sel selection, rows []row){
	"stat:Fleet": func(h *harness, sel selection, rows []row) {
		targets := map[reports.TargetRef]bool{}
		var hosts, atScheduled, failing, inProgress, notReported, idle int
		for _, r := range h.environmentState(sel) {
			targets[r.TargetRef] = true
			hosts += r.Hosts
			if r.UpToDate {
				atScheduled += r.Hosts
			}
			switch r.Status {
			case "failure":
				failing += r.Hosts
			case "in_progress":
				inProgress += r.Hosts
			case reports.StatusNotReported:
				notReported += r.Hosts
			}
			if r.Hosts == 0 {
				idle++
			}
		}
		h.sameLines("Fleet", lines(rows, "targets", "hosts", "at_scheduled_version", "failing", "in_progress", "not_reported", "targets_without_hosts"),
			[]string{line(int64(len(targets)), int64(hosts), int64(atScheduled), int64(failing), int64(inProgress), int64(notReported), int64(idle))})
	},
	"table:Environment State":  checkEnvironmentState,
	"table:Environments State": checkEnvironmentState,
	"table:Environment History": func(h *harness, sel selection, rows []row) {
		var want []string
		for _, r := range h.history(sel, true) {
			want = append(want, line(r.AssignedAt, r.Environment, r.Workspace, r.Application, r.Workload, r.Target, r.Version, r.Commit,
				int64(r.Success), int64(r.Failure), int64(r.InProgress), int64(r.NotReported), r.FirstSuccessAt, r.AllSucceededAt))
		}
		h.sameLines("Environment History", lines(rows, "assigned_at", "environment", "workspace", "application", "workload", "target", "version", "commit",
			"success", "failure", "in_progress", "not_reported", "first_success_at", "all_succeeded_at"), want)
	},
	"timeseries:Rollouts per day": func(h *harness, sel selection, rows []row) {
		counts := map[string]int64{}
		for _, r := range h.history(sel, false) {
			if inRange(sel, r.AssignedAt) {
				counts[line(day(r.AssignedAt), "assigned")]++
			}
			if r.AllSucceededAt != nil && inRange(sel, *r.AllSucceededAt) {
				counts[line(day(*r.AllSucceededAt), "succeeded on every host")]++
			}
		}
		h.sameLines("Rollouts per day", lines(rows, "time", "metric", "rollouts"), countLines(counts))
	},
	"stat:Hosts": func(h *harness, sel selection, rows []row) {
		var total, success, failure, inProgress, notReported, behind int64
		for _, r := range h.hostState(sel) {
			total++
			switch r.Status {
			case "success":
				success++
			case "failure":
				failure++
			case "in_progress":
				inProgress++
			case reports.StatusNotReported:
				notReported++
			}
			if !r.UpToDate {
				behind++
			}
		}
		h.sameLines("Hosts", lines(rows, "hosts", "success", "failure", "in_progress", "not_reported", "not_at_scheduled_version"),
			[]string{line(total, success, failure, inProgress, notReported, behind)})
	},
	"table:Host State": func(h *harness, sel selection, rows []row) {
		var want []string
		for _, r := range h.hostState(sel) {
			var version any = r.Version
			switch {
			case r.Status == reports.StatusNotReported:
				version = nil
			case !r.VersionKnown:
				version = "unknown"
			}
			want = append(want, line(r.Host, r.HostType, r.Environment, r.Workspace, r.Application, r.Workload, r.Target, version, r.Commit,
				r.Status, r.StatusSince, r.LastReportAt, r.Scheduled, r.UpToDate, r.Message, r.Reconciler))
		}
		h.sameLines("Host State", lines(rows, "host", "host_type", "environment", "workspace", "application", "workload", "target", "version", "commit",
			"status", "status_since", "last_report_at", "scheduled", "up_to_date", "message", "reconciler"), want)
	},
	"table:Environment Discrepancies": checkDiscrepancies,
	"stat:Drift": func(h *harness, sel selection, rows []row) {
		n := map[string]int64{}
		for _, r := range h.drift(sel) {
			n[r.Kind]++
		}
		h.sameLines("Drift by kind", lines(rows, "version", "failed", "unknown", "stale", "not_reported", "no_hosts", "unplaced"),
			[]string{line(n["version"], n["failed"], n["unknown"], n["stale"], n["not_reported"], n["no_hosts"], n["unplaced"])})
	},
	"barchart:Drift by environment": func(h *harness, sel selection, rows []row) {
		n := map[string]map[string]int64{}
		for _, r := range h.drift(sel) {
			if r.Kind == reports.DriftUnplaced {
				continue
			}
			if n[r.Environment] == nil {
				n[r.Environment] = map[string]int64{}
			}
			n[r.Environment][r.Kind]++
		}
		var want []string
		for env, k := range n {
			want = append(want, line(env, k["version"], k["failed"], k["unknown"], k["stale"], k["not_reported"], k["no_hosts"]))
		}
		h.sameLines("Drift by environment", lines(rows, "environment", "version", "failed", "unknown", "stale", "not_reported", "no_hosts"), want)
		h.inPromotionOrder("Drift by environment", sel, rows)
	},
	"table:Drift": func(h *harness, sel selection, rows []row) {
		var want []string
		for _, r := range h.drift(sel) {
			want = append(want, line(r.Kind, r.Since, r.Environment, r.Workspace, r.Application, r.Workload, r.Target, r.Host, r.Reconciler,
				r.Scheduled, r.Deployed, r.Commit, r.Status, r.Message))
		}
		h.sameLines("Drift", lines(rows, "kind", "since", "environment", "workspace", "application", "workload", "target", "host", "reconciler",
			"scheduled", "deployed", "commit", "status", "message"), want)
		for _, r := range rows {
			since := r["since"].(time.Time)
			if d := r["for_seconds"].(float64) - time.Since(since).Seconds(); math.Abs(d) > 120 {
				h.t.Errorf("Drift: for_seconds %v, since %v", r["for_seconds"], since)
			}
		}
	},
	"stat:Changes in the time range": func(h *harness, sel selection, rows []row) {
		var deployments, changes, failed int64
		for _, r := range h.dora(sel) {
			deployments += int64(r.Deployments)
			changes += int64(r.Changes)
			failed += int64(r.Failed)
		}
		var rate any
		if changes > 0 {
			rate = float64(failed) / float64(changes)
		}
		h.sameLines("DORA totals", lines(rows, "deployments", "changes", "failed", "change_failure_rate"),
			[]string{line(deployments, changes, failed, rate)})
	},
	"table:DORA": func(h *harness, sel selection, rows []row) {
		var want []string
		for _, r := range h.dora(sel) {
			if r.Workload == oddWorkload && r.TimeToRestoreSeconds == nil && inRange(sel, time.Now().Add(-40*time.Minute)) {
				h.t.Errorf("DORA of %s: no time to restore; the test fleet restores a failure", oddWorkload)
			}
			want = append(want, line(r.Workspace, r.Application, r.Workload, r.Environment, int64(r.Deployments), r.PerDay, r.LeadTimeSeconds,
				int64(r.Changes), int64(r.Failed), r.ChangeFailureRate, r.TimeToRestoreSeconds))
		}
		h.sameLines("DORA", lines(rows, "workspace", "application", "workload", "environment", "deployments", "deployments_per_day", "lead_time_seconds",
			"changes", "failed", "change_failure_rate", "time_to_restore_seconds"), want)
	},
	"timeseries:Deployments per day": func(h *harness, sel selection, rows []row) {
		counts := map[string]int64{}
		for _, r := range h.history(sel, false, "workspace", "application", "environment", "workload") {
			if r.AllSucceededAt != nil && inRange(sel, *r.AllSucceededAt) {
				counts[line(day(*r.AllSucceededAt), r.Environment)]++
			}
		}
		h.sameLines("Deployments per day", lines(rows, "time", "metric", "deployments"), countLines(counts))
	},
}

func checkEnvironmentState(h *harness, sel selection, rows []row) {
	var want []string
	for _, r := range h.environmentState(sel) {
		var scheduled, deployed, status any
		if r.Scheduled != nil {
			scheduled = r.Scheduled.Version
		}
		switch {
		case r.Hosts == 0, r.Status == reports.StatusNotReported:
		case !r.DeployedKnown:
			deployed = "unknown"
		default:
			deployed = r.DeployedVersion
		}
		if r.Status != "" {
			status = r.Status
		}
		want = append(want, line(r.Environment, r.Workspace, r.Application, r.Workload, r.Target, scheduled, deployed, status, int64(r.Hosts), r.UpToDate))
	}
	h.sameLines("Environment State", lines(rows, "environment", "workspace", "application", "workload", "target", "scheduled", "deployed", "status", "hosts", "up_to_date"), want)
	h.inPromotionOrder("Environment State", sel, rows)
}

// checkDiscrepancies compares the matrix's cells with the API's. With
// several environments selected the API answers per environment, so the
// "differs" flag is recomputed over the selected cells as the API does.
func checkDiscrepancies(h *harness, sel selection, rows []row) {
	envs := sel.multi["environment"]
	others := pick(sel.multi, "workspace", "application", "workload", "target")
	var want []string
	for _, f := range filters(selection{multi: others}, "workspace", "application", "workload", "target") {
		f.Host = ""
		d, _, err := h.rep.Discrepancies(ctx, f, h.promotion(sel), reports.Page{Limit: reports.MaxLimit})
		if err != nil {
			h.t.Fatal(err)
		}
		for _, item := range d.Items {
			var cells []reports.DiscrepancyCell
			for _, c := range item.Cells {
				if len(c.Targets) > 0 && (envs == nil || slices.Contains(envs, c.Environment)) {
					cells = append(cells, c)
				}
			}
			differs := item.Differs
			if envs != nil {
				sets := map[string]bool{}
				for _, c := range cells {
					var vs []string
					for _, v := range c.Deployed {
						vs = append(vs, v.Version)
					}
					sort.Strings(vs)
					sets[strings.Join(vs, "\x00")] = true
				}
				differs = len(sets) > 1
			}
			for _, c := range cells {
				var deployed []string
				hosts := 0
				for _, v := range c.Deployed {
					name := v.Version
					if name == "" {
						name = "unknown"
					}
					deployed = append(deployed, fmt.Sprintf("%s ×%d", name, v.Hosts))
					hosts += v.Hosts
				}
				var dep, sched any
				if len(deployed) > 0 {
					dep = strings.Join(deployed, ", ")
				}
				if len(c.Scheduled) > 0 {
					sched = strings.Join(slices.Sorted(slices.Values(c.Scheduled)), ", ")
				}
				want = append(want, line(item.Workspace, item.Application, item.Workload, c.Environment,
					strings.Join(slices.Sorted(slices.Values(c.Targets)), ", "), sched, dep, int64(hosts), differs))
			}
		}
	}
	h.sameLines("Environment Discrepancies", lines(rows, "workspace", "application", "workload", "environment", "targets", "scheduled", "deployed", "hosts", "differs"), want)
	h.inPromotionOrder("Environment Discrepancies", sel, rows)
}

// inPromotionOrder fails unless rows come by environment in the API's
// promotion order (the matrix takes its columns in that order).
func (h *harness) inPromotionOrder(what string, sel selection, rows []row) {
	h.t.Helper()
	order, err := h.rep.Environments(ctx, h.promotion(sel))
	if err != nil {
		h.t.Fatal(err)
	}
	last := -1
	for _, r := range rows {
		i := slices.Index(order, r["environment"].(string))
		if i < last {
			h.t.Errorf("%s: environment %v comes after %s: not in promotion order %v", what, r["environment"], order[last], order)
			return
		}
		last = i
	}
}

func inRange(sel selection, t time.Time) bool { return !t.Before(sel.from) && !t.After(sel.to) }

// day is the start of t's day in epoch seconds, as $__timeGroupAlias(t, '1d').
func day(t time.Time) float64 { return math.Floor(float64(t.UnixMicro())/1e6/86400) * 86400 }

func countLines(counts map[string]int64) []string {
	var out []string
	for k, n := range counts {
		out = append(out, k+" | "+str(n))
	}
	return out
}
