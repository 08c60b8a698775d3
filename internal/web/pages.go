package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// Live update intervals, in seconds: the rollout page is watched during a
// rollout; the others change more slowly.
const (
	refreshRollout = 5
	refreshPage    = 15
)

func yes(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func timeCSV(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func timePtrCSV(t *time.Time) string {
	if t == nil {
		return ""
	}
	return timeCSV(*t)
}

func floatPtrCSV(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func refCSV(t reports.TargetRef) []string {
	return []string{t.Environment, t.Workspace, t.Application, t.Workload, t.Target}
}

var refHeader = []string{"environment", "workspace", "application", "workload", "target"}

// pager links the pages of a paged table.
type pager struct {
	First string // "" on the first page
	Next  string // "" on the last page
}

func newPager(r *http.Request, next string) pager {
	var p pager
	q := r.URL.Query()
	if q.Get("cursor") != "" {
		p.First = link(r.URL.Path, q, "cursor", "")
	}
	if next != "" {
		p.Next = link(r.URL.Path, q, "cursor", next)
	}
	return p
}

// ---- Overview ----

type overviewData struct {
	reports.Overview
	Bar          filterBar
	Pager        pager
	HeadlineLink string // the headline numbers, loaded after the matrix
}

type headlineItem struct {
	Label, Link, Class, Hint string
	Value                    int
}

func (s *Server) overview(r *http.Request) (*view, error) {
	ctx := r.Context()
	empty, err := s.rep.Empty(ctx)
	if err != nil {
		return nil, err
	}
	if empty {
		return &view{Template: "welcome", Title: "Welcome", Nav: "/", Refresh: 10, FullReload: true, Data: r.Host}, nil
	}
	q := r.URL.Query()
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	f = reports.Filter{Workspace: f.Workspace, Application: f.Application, Environment: f.Environment, Workload: f.Workload}
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	o, next, err := s.rep.Overview(ctx, f, nil, p)
	if err != nil {
		return nil, err
	}
	bar, err := s.newFilterBar(r, "/", f, "workspace", "application", "environment", "workload")
	if err != nil {
		return nil, err
	}
	d := overviewData{Overview: o, Bar: bar, Pager: newPager(r, next), HeadlineLink: link("/overview/headline", filterValues(f))}
	header := []string{"workspace", "application", "workload", "environment", "state", "targets", "scheduled", "deployed", "hosts", "upToDate", "inProgress", "notReported", "failed", "behind", "unknown"}
	records := func(row reports.OverviewRow) [][]string {
		var out [][]string
		for i, c := range row.Cells {
			st := row.States[i]
			var dep []string
			for _, v := range c.Deployed {
				dep = append(dep, fmt.Sprintf("%s:%d", orUnknown(v.Version), v.Hosts))
			}
			out = append(out, []string{row.Workspace, row.Application, row.Workload, c.Environment, st.State,
				strings.Join(c.Targets, " "), strings.Join(c.Scheduled, " "), strings.Join(dep, " "),
				strconv.Itoa(st.Hosts), strconv.Itoa(st.UpToDate), strconv.Itoa(st.InProgress), strconv.Itoa(st.NotReported),
				strconv.Itoa(st.Failed), strconv.Itoa(st.Behind), strconv.Itoa(st.Unknown)})
		}
		return out
	}
	return &view{Template: "overview", Title: "Overview", Nav: "/", Refresh: refreshPage, Data: d, Tables: map[string]table{
		"overview": pagedTable("Overview matrix", header, records, func(ctx context.Context, p reports.Page) ([]reports.OverviewRow, string, error) {
			o, next, err := s.rep.Overview(ctx, f, nil, p)
			return o.Items, next, err
		}),
	}}, nil
}

// headline is the fleet's numbers, each a link to the rows it counts. The
// overview loads it after the matrix: counting drift reads every host.
func (s *Server) headline(r *http.Request) (*view, error) {
	f, err := parseFilter(r.URL.Query(), s.rep.Now())
	if err != nil {
		return nil, err
	}
	h, err := s.rep.Headline(r.Context(), f)
	if err != nil {
		return nil, err
	}
	fq := filterValues(reports.Filter{Workspace: f.Workspace, Application: f.Application, Environment: f.Environment, Workload: f.Workload})
	return &view{Template: "headline", Title: "Fleet at a glance", Nav: "/", Data: []headlineItem{
		{"Hosts reporting", link("/hosts", fq), "", "hosts with a reconciler that has reported (hosts registered but silent so far are not counted)", h.Hosts},
		{"Failing", link("/hosts", fq, "status", "failure"), "st-fail", "hosts with a failed deployment", h.FailingHosts},
		{"Drifted", link("/drift", fq, "kind", reports.DriftedKinds), "st-drift", "hosts on another version than scheduled, an unknown commit, or an endpoint no target has", h.DriftedHosts},
		{"Stale", link("/drift", fq, "kind", reports.DriftStale), "st-none", "hosts that stopped reporting", h.StaleHosts},
		{"Rolling out", link("/environments", fq, "status", "in_progress"), "st-prog", "targets with a host in progress", h.RolloutsInProgress},
	}}, nil
}

func orUnknown(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

// ---- Environment State ----

type envStateData struct {
	Groups [][]envStateRow // rows by target
	Bar    filterBar
	Pager  pager
	timeTravel
}

// timeTravel is what a page that travels in time (at=) links to: the
// same view at the present time, and this moment's permalink (at= may be
// a duration ago, which moves with the clock).
type timeTravel struct {
	At             time.Time
	Now, Permalink string
}

func newTimeTravel(r *http.Request, q url.Values, at time.Time) timeTravel {
	tt := timeTravel{At: at, Now: link(r.URL.Path, q, "at", "", "cursor", "")}
	if !at.IsZero() {
		tt.Permalink = link(r.URL.Path, q, "at", at.UTC().Format(time.RFC3339))
	}
	return tt
}

type envStateRow struct {
	reports.EnvironmentStateRow
	First       bool   // the first row of its target
	HostsLink   string // Host State with exactly these hosts
	RolloutLink string // the rollout of the scheduled version
	Repo        string // the target's manifests repository
}

// atParam reads the time travel parameter.
func (s *Server) atParam(q url.Values) (time.Time, error) {
	at, err := timeParam(q, "at", s.rep.Now())
	if err == nil && at.After(s.rep.Now()) {
		return time.Time{}, &inputError{"at", "is in the future: the hub knows the fleet only up to now"}
	}
	return at, err
}

func (s *Server) environmentState(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	at, err := s.atParam(q)
	if err != nil {
		return nil, err
	}
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	report := func(ctx context.Context, p reports.Page) ([]reports.EnvironmentStateRow, string, error) {
		if at.IsZero() {
			return s.rep.EnvironmentState(ctx, f, p)
		}
		return s.rep.EnvironmentStateAt(ctx, f, at, p)
	}
	rows, next, err := report(ctx, p)
	if err != nil {
		return nil, err
	}
	repos, err := s.rep.Repositories(ctx, f)
	if err != nil {
		return nil, err
	}
	bar, err := s.newFilterBar(r, "/environments", f, filterParams...)
	if err != nil {
		return nil, err
	}
	bar.AtOK = true
	d := envStateData{Bar: bar, Pager: newPager(r, next), timeTravel: newTimeTravel(r, q, at)}
	for i, row := range rows {
		er := envStateRow{EnvironmentStateRow: row, Repo: repos.Manifests[row.TargetRef]}
		if i == 0 || rows[i-1].TargetRef != row.TargetRef {
			er.First = true
			d.Groups = append(d.Groups, nil)
		}
		if row.Hosts > 0 {
			hq := targetValues(row.TargetRef)
			for k, v := range map[string]string{"status": row.Status, "at": q.Get("at")} {
				if v != "" {
					hq.Set(k, v)
				}
			}
			if row.DeployedKnown {
				hq.Set("version", row.DeployedVersion)
			} else {
				hq.Set("unknown", "1")
			}
			er.HostsLink = "/hosts?" + hq.Encode()
		}
		if row.Scheduled != nil {
			er.RolloutLink = link("/rollout", targetValues(row.TargetRef), "version", row.Scheduled.Version)
		}
		d.Groups[len(d.Groups)-1] = append(d.Groups[len(d.Groups)-1], er)
	}
	header := append(slices.Clone(refHeader), "scheduledVersion", "scheduledCommit", "scheduledAt", "deployedVersion", "deployedKnown", "status", "hosts", "upToDate")
	v := &view{Template: "environments", Title: "Environment State", Nav: "/environments", Data: d, Tables: map[string]table{
		"environment-state": pagedTable("Environment State", header, one(func(r reports.EnvironmentStateRow) []string {
			sv, sc, sa := "", "", ""
			if r.Scheduled != nil {
				sv, sc, sa = r.Scheduled.Version, r.Scheduled.Commit, timeCSV(r.Scheduled.AssignedAt)
			}
			return append(refCSV(r.TargetRef), sv, sc, sa, r.DeployedVersion, yes(r.DeployedKnown), r.Status, strconv.Itoa(r.Hosts), yes(r.UpToDate))
		}), report),
	}}
	if at.IsZero() {
		v.Refresh = refreshPage
	}
	return v, nil
}

// ---- Host State ----

type hostStateData struct {
	Rows  []hostStateRow
	Bar   filterBar
	Pager pager
	timeTravel
	Deployed reports.Deployed
	Clear    string // the page without the version narrowing
}

type hostStateRow struct {
	reports.HostStateRow
	Repo string
}

func (s *Server) hostState(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	at, err := s.atParam(q)
	if err != nil {
		return nil, err
	}
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	dep := reports.Deployed{Version: q.Get("version"), Unknown: q.Get("unknown") == "1" || q.Get("unknown") == "true"}
	report := func(ctx context.Context, p reports.Page) ([]reports.HostStateRow, string, error) {
		if at.IsZero() {
			return s.rep.HostStateDeploying(ctx, f, dep, p)
		}
		return s.rep.HostStateAtDeploying(ctx, f, at, dep, p)
	}
	rows, next, err := report(ctx, p)
	if err != nil {
		return nil, err
	}
	repos, err := s.rep.Repositories(ctx, f)
	if err != nil {
		return nil, err
	}
	bar, err := s.newFilterBar(r, "/hosts", f, filterParams...)
	if err != nil {
		return nil, err
	}
	bar.AtOK = true
	bar.Hidden = url.Values{}
	for _, k := range []string{"version", "unknown"} {
		if v := q.Get(k); v != "" {
			bar.Hidden.Set(k, v)
		}
	}
	d := hostStateData{Bar: bar, Pager: newPager(r, next), timeTravel: newTimeTravel(r, q, at), Deployed: dep,
		Clear: link(r.URL.Path, q, "version", "", "unknown", "", "cursor", "")}
	for _, row := range rows {
		d.Rows = append(d.Rows, hostStateRow{HostStateRow: row, Repo: repos.Manifests[row.TargetRef]})
	}
	header := []string{"host", "hostType", "reconciler"}
	header = append(header, refHeader...)
	header = append(header, "version", "versionKnown", "commit", "status", "message", "statusSince", "lastReportAt", "scheduledVersion", "upToDate")
	v := &view{Template: "hosts", Title: "Host State", Nav: "/hosts", Data: d, Tables: map[string]table{
		"host-state": pagedTable("Host State", header, one(func(h reports.HostStateRow) []string {
			return append(append([]string{h.Host, h.HostType, h.Reconciler}, refCSV(h.TargetRef)...),
				h.Version, yes(h.VersionKnown), h.Commit, h.Status, h.Message, timeCSV(h.StatusSince), timeCSV(h.LastReportAt), h.Scheduled, yes(h.UpToDate))
		}), report),
	}}
	if at.IsZero() {
		v.Refresh = refreshPage
	}
	return v, nil
}

// ---- Host ----

type hostData struct {
	reports.HostDetail
	Targets []hostStateRow
	Events  []reports.HostEvent
	Pager   pager
	Repos   map[string]string // reconciler → repository
	Status  string
}

func (s *Server) host(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	name := r.PathValue("host")
	h, err := s.rep.Host(ctx, name)
	if errors.Is(err, reports.ErrNotFound) {
		return nil, fmt.Errorf("no host is named %q: %w", name, reports.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	hf := reports.Filter{Status: f.Status, Since: f.Since, Until: f.Until}
	events, next, err := s.rep.HostHistory(ctx, name, hf, p)
	if err != nil {
		return nil, err
	}
	current, _, err := s.rep.HostState(ctx, reports.Filter{Host: name}, reports.Page{Limit: reports.MaxLimit})
	if err != nil {
		return nil, err
	}
	repos, err := s.rep.Repositories(ctx, reports.Filter{})
	if err != nil {
		return nil, err
	}
	d := hostData{HostDetail: h, Events: events, Pager: newPager(r, next), Repos: map[string]string{}, Status: f.Status}
	for _, rc := range h.Reconcilers {
		d.Repos[rc.Name] = rc.Repo
	}
	for _, row := range current {
		d.Targets = append(d.Targets, hostStateRow{HostStateRow: row, Repo: repos.Manifests[row.TargetRef]})
	}
	return &view{Template: "host", Title: "Host " + name, Nav: "/hosts", Refresh: refreshPage, Data: d, Tables: map[string]table{
		"reconcilers": listTable("Reconcilers", []string{"reconciler", "type", "storageType", "repo", "branch", "path", "targets", "commit", "status", "message", "statusSince", "lastReportAt", "retiredAt"},
			one(func(rc reports.ReconcilerDetail) []string {
				var ts []string
				for _, t := range rc.Targets {
					ts = append(ts, t.Environment+"/"+t.Workload+"/"+t.Target)
				}
				return []string{rc.Name, rc.Type, rc.StorageType, rc.Repo, rc.Branch, rc.Path, strings.Join(ts, " "), rc.Commit, rc.Status, rc.Message,
					timePtrCSV(rc.StatusSince), timeCSV(rc.LastReportAt), timePtrCSV(rc.RetiredAt)}
			}), h.Reconcilers),
		"history": pagedTable("Deployment history", []string{"at", "reconciler", "commit", "status", "message", "versions"},
			one(func(e reports.HostEvent) []string {
				var vs []string
				for _, v := range e.Versions {
					vs = append(vs, v.Environment+"/"+v.Workload+"/"+v.Target+"="+orUnknown(v.Version))
				}
				return []string{timeCSV(e.At), e.Reconciler, e.Commit, e.Status, e.Message, strings.Join(vs, " ")}
			}), func(ctx context.Context, p reports.Page) ([]reports.HostEvent, string, error) {
				return s.rep.HostHistory(ctx, name, hf, p)
			}),
	}}, nil
}

// ---- Environment History ----

type historyData struct {
	Rows     []historyRow
	Bar      filterBar
	Pager    pager
	Timeline []timelineLane
}

type historyRow struct {
	reports.HistoryRow
	Repo        string
	RolloutLink string
	Outcome     string
	LeadSeconds *float64 // assignment → all hosts succeeded
}

func (s *Server) history(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	rows, next, err := s.rep.History(ctx, f, p)
	if err != nil {
		return nil, err
	}
	repos, err := s.rep.Repositories(ctx, f)
	if err != nil {
		return nil, err
	}
	bar, err := s.newFilterBar(r, "/history", f, "workspace", "application", "environment", "workload", "target", "status", "since", "until")
	if err != nil {
		return nil, err
	}
	bar.Assigned = true
	d := historyData{Bar: bar, Pager: newPager(r, next)}
	for _, row := range rows {
		hr := historyRow{HistoryRow: row, Repo: repos.Manifests[row.TargetRef], Outcome: outcome(row),
			RolloutLink: link("/rollout", targetValues(row.TargetRef), "version", row.Version)}
		if row.AllSucceededAt != nil {
			lead := row.AllSucceededAt.Sub(row.AssignedAt).Seconds()
			hr.LeadSeconds = &lead
		}
		d.Rows = append(d.Rows, hr)
	}
	d.Timeline = timeline(d.Rows, f.Since, s.rep.Now())
	header := append(slices.Clone(refHeader), "version", "commit", "assignedAt", "buildTime", "success", "failure", "inProgress", "notReported", "firstSuccessAt", "allSucceededAt")
	return &view{Template: "history", Title: "Environment History", Nav: "/history", Refresh: refreshPage, Data: d, Tables: map[string]table{
		"environment-history": pagedTable("Environment History", header, one(func(h reports.HistoryRow) []string {
			return append(refCSV(h.TargetRef), h.Version, h.Commit, timeCSV(h.AssignedAt), timeCSV(h.BuildTime), strconv.Itoa(h.Success), strconv.Itoa(h.Failure),
				strconv.Itoa(h.InProgress), strconv.Itoa(h.NotReported), timePtrCSV(h.FirstSuccessAt), timePtrCSV(h.AllSucceededAt))
		}), func(ctx context.Context, p reports.Page) ([]reports.HistoryRow, string, error) {
			return s.rep.History(ctx, f, p)
		}),
	}}, nil
}

// outcome names how an assignment fared, as a status.
func outcome(h reports.HistoryRow) string {
	switch {
	case h.Failure > 0:
		return "failure"
	case h.InProgress > 0:
		return "in_progress"
	case h.AllSucceededAt != nil:
		return "success"
	case h.Success > 0:
		// Some hosts succeeded and the others have moved on or not
		// reported.
		return "partial"
	}
	return "not_reported"
}

// timelineLane is one target's assignments along the time axis.
type timelineLane struct {
	Label string // in full, as the lane's tooltip
	Short string // what fits beside the bars (timelineLabelRunes)
	Link  string
	Y     int
	Bars  []timelineBar
}

type timelineBar struct {
	X, W  float64
	Class string
	Label string
	Title string
	Link  string
}

// Timeline geometry, in the SVG's user units.
const (
	timelineWidth = 1000.0
	timelineLabel = 220.0
	timelineRow   = 28
	// timelineLabelRunes is how many characters of a lane's label fit in
	// timelineLabel units at the label's 12px (about 6.6 units a
	// character, and a gap before the first bar).
	timelineLabelRunes = 30
)

// timeline lays out the page's assignments per target: each lasts from its
// assignment to the next one of its target (or now).
func timeline(rows []historyRow, since, now time.Time) []timelineLane {
	if len(rows) == 0 {
		return nil
	}
	start := since
	for _, r := range rows {
		if start.IsZero() || r.AssignedAt.Before(start) {
			start = r.AssignedAt
		}
	}
	span := now.Sub(start).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 {
		return timelineLabel + (timelineWidth-timelineLabel)*max(0, t.Sub(start).Seconds())/span
	}
	var lanes []timelineLane
	index := map[reports.TargetRef]int{}
	for i, r := range rows {
		li, ok := index[r.TargetRef]
		if !ok {
			li = len(lanes)
			index[r.TargetRef] = li
			label := r.Environment + " · " + r.Workload + " · " + r.Target
			lanes = append(lanes, timelineLane{Label: label, Short: ellipsis(label, timelineLabelRunes),
				Link: link("/history", targetValues(r.TargetRef)), Y: li * timelineRow})
		}
		end := now
		// Rows are newest first within a target: the previous row of the
		// same target is the next assignment.
		for j := i - 1; j >= 0; j-- {
			if rows[j].TargetRef == r.TargetRef {
				end = rows[j].AssignedAt
				break
			}
		}
		x0, x1 := x(r.AssignedAt), x(end)
		lanes[li].Bars = append(lanes[li].Bars, timelineBar{X: x0, W: max(2, x1-x0-1), Class: statusOf(r.Outcome).Class, Label: r.Version,
			Title: fmt.Sprintf("%s assigned %s: %d succeeded, %d failed, %d in progress, %d not reported", r.Version, absTime(r.AssignedAt), r.Success, r.Failure, r.InProgress, r.NotReported),
			Link:  r.RolloutLink})
	}
	return lanes
}

// ---- Discrepancies ----

type discrepanciesData struct {
	reports.Discrepancies
	Bar   filterBar
	Pager pager
}

func (s *Server) discrepancies(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	f = reports.Filter{Workspace: f.Workspace, Application: f.Application, Environment: f.Environment, Workload: f.Workload, Target: f.Target}
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	d, next, err := s.rep.Discrepancies(ctx, f, nil, p)
	if err != nil {
		return nil, err
	}
	bar, err := s.newFilterBar(r, "/discrepancies", f, "workspace", "application", "environment", "workload", "target")
	if err != nil {
		return nil, err
	}
	header := []string{"workspace", "application", "workload", "differs", "environment", "targets", "scheduled", "deployed"}
	return &view{Template: "discrepancies", Title: "Environment Discrepancies", Nav: "/discrepancies", Refresh: refreshPage,
		Data: discrepanciesData{Discrepancies: d, Bar: bar, Pager: newPager(r, next)}, Tables: map[string]table{
			"discrepancies": pagedTable("Discrepancies", header, func(row reports.DiscrepancyRow) [][]string {
				var out [][]string
				for _, c := range row.Cells {
					var dep []string
					for _, v := range c.Deployed {
						dep = append(dep, fmt.Sprintf("%s:%d", orUnknown(v.Version), v.Hosts))
					}
					out = append(out, []string{row.Workspace, row.Application, row.Workload, yes(row.Differs), c.Environment,
						strings.Join(c.Targets, " "), strings.Join(c.Scheduled, " "), strings.Join(dep, " ")})
				}
				return out
			}, func(ctx context.Context, p reports.Page) ([]reports.DiscrepancyRow, string, error) {
				d, next, err := s.rep.Discrepancies(ctx, f, nil, p)
				return d.Items, next, err
			}),
		}}, nil
}

// ---- Drift ----

type driftData struct {
	Rows       []driftRow
	Bar        filterBar
	Pager      pager
	Kinds      []string
	AllKinds   []string
	StaleAfter string
}

type driftRow struct {
	reports.DriftRow
	Repo string
}

func (s *Server) drift(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	kinds := slices.DeleteFunc(slices.Clone(q["kind"]), func(k string) bool { return k == "" })
	for _, k := range kinds {
		if err := reports.ValidDriftKind(k); err != nil {
			return nil, &inputError{"kind", err.Error()}
		}
	}
	var stale time.Duration
	staleText := q.Get("staleAfter")
	if staleText != "" {
		if stale, err = reports.ParseAgo(staleText); err != nil {
			return nil, &inputError{"staleAfter", fmt.Sprintf("%q is not a duration such as 30m, 2h or 1d", staleText)}
		}
	} else if s.opts.StaleAfter > 0 {
		staleText = s.opts.StaleAfter.String()
	} else {
		staleText = reports.DefaultStaleAfter.String()
	}
	report := func(ctx context.Context, p reports.Page) ([]reports.DriftRow, string, error) {
		return s.rep.DriftOfKinds(ctx, f, kinds, stale, p)
	}
	rows, next, err := report(ctx, p)
	if err != nil {
		return nil, err
	}
	repos, err := s.rep.Repositories(ctx, f)
	if err != nil {
		return nil, err
	}
	bar, err := s.newFilterBar(r, "/drift", f, filterParams...)
	if err != nil {
		return nil, err
	}
	d := driftData{Bar: bar, Pager: newPager(r, next), Kinds: kinds, AllKinds: reports.DriftKinds, StaleAfter: strings.TrimSuffix(strings.TrimSuffix(staleText, "0s"), "0m")}
	for _, row := range rows {
		d.Rows = append(d.Rows, driftRow{DriftRow: row, Repo: repos.Manifests[row.TargetRef]})
	}
	header := append([]string{"kind", "host", "reconciler"}, refHeader...)
	header = append(header, "scheduledVersion", "deployedVersion", "commit", "status", "message", "since", "forSeconds")
	return &view{Template: "drift", Title: "Drift", Nav: "/drift", Refresh: refreshPage, Data: d, Tables: map[string]table{
		"drift": pagedTable("Drift", header, one(func(d reports.DriftRow) []string {
			return append(append([]string{d.Kind, d.Host, d.Reconciler}, refCSV(d.TargetRef)...),
				d.Scheduled, d.Deployed, d.Commit, d.Status, d.Message, timeCSV(d.Since), strconv.FormatFloat(d.For, 'f', 0, 64))
		}), report),
	}}, nil
}

// ---- DORA ----

type doraData struct {
	Rows         []doraRow
	Bar          filterBar
	Pager        pager
	Since, Until time.Time
}

type doraRow struct {
	reports.DORARow
	Link string // the assignments behind the numbers
}

func (s *Server) dora(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	f.Host, f.Status = "", ""
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	// The range the report uses, made explicit so that drill-down links
	// show the same assignments.
	if f.Until.IsZero() {
		f.Until = s.rep.Now().Truncate(time.Minute).Add(time.Minute)
	}
	if f.Since.IsZero() {
		f.Since = f.Until.Add(-reports.DefaultDORAWindow)
	}
	report := func(ctx context.Context, p reports.Page) ([]reports.DORARow, string, error) {
		return s.rep.DORA(ctx, f, p)
	}
	rows, next, err := report(ctx, p)
	if err != nil {
		return nil, err
	}
	bar, err := s.newFilterBar(r, "/dora", f, "workspace", "application", "environment", "workload", "target", "since", "until")
	if err != nil {
		return nil, err
	}
	bar.Assigned = true
	d := doraData{Bar: bar, Pager: newPager(r, next), Since: f.Since, Until: f.Until}
	for _, row := range rows {
		d.Rows = append(d.Rows, doraRow{DORARow: row, Link: link("/history", "workspace", row.Workspace, "application", row.Application,
			"workload", row.Workload, "environment", row.Environment, "target", f.Target,
			"since", f.Since.UTC().Format(time.RFC3339), "until", f.Until.UTC().Format(time.RFC3339))})
	}
	header := []string{"workspace", "application", "workload", "environment", "deployments", "deploymentsPerDay", "leadTimeSeconds", "changes", "failed", "changeFailureRate", "timeToRestoreSeconds"}
	return &view{Template: "dora", Title: "DORA metrics", Nav: "/dora", Data: d, Tables: map[string]table{
		"dora": pagedTable("DORA", header, one(func(d reports.DORARow) []string {
			return []string{d.Workspace, d.Application, d.Workload, d.Environment, strconv.Itoa(d.Deployments), strconv.FormatFloat(d.PerDay, 'f', 3, 64),
				floatPtrCSV(d.LeadTimeSeconds), strconv.Itoa(d.Changes), strconv.Itoa(d.Failed), floatPtrCSV(d.ChangeFailureRate), floatPtrCSV(d.TimeToRestoreSeconds)}
		}), report),
	}}, nil
}

// ---- Rollout ----

type rolloutData struct {
	Query      reports.GateQuery
	Gate       *reports.Gate
	Repo       string
	SourceRepo string
	Build      string
	Problem    string
	Choices    []rolloutChoice
	Names      reports.Names
}

type rolloutChoice struct {
	reports.TargetRef
	Link string
}

func (s *Server) rollout(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	gq := reports.GateQuery{Target: q.Get("target"), Endpoint: q.Get("endpoint"), Workload: q.Get("workload"), Application: q.Get("application"),
		Workspace: q.Get("workspace"), Environment: q.Get("environment"), Version: q.Get("version"), Commit: q.Get("commit")}
	names, err := s.rep.Names(ctx)
	if err != nil {
		return nil, err
	}
	d := rolloutData{Query: gq, Names: names}
	v := &view{Template: "rollout", Title: "Rollout", Nav: "", Data: &d}
	if gq.Target == "" && gq.Endpoint == "" {
		return v, nil // the form
	}
	g, err := s.rep.Gate(ctx, gq)
	var ge *reports.GateError
	if errors.As(err, &ge) {
		d.Problem = ge.Problem
		v.Status = http.StatusBadRequest
		if ge.NotFound {
			v.Status = http.StatusNotFound
		}
		if ge.Param == "workload" && gq.Target != "" {
			// Several targets have the name: offer each.
			rows, _, err := s.rep.EnvironmentState(ctx, reports.Filter{Target: gq.Target, Workload: gq.Workload, Application: gq.Application,
				Workspace: gq.Workspace, Environment: gq.Environment}, reports.Page{Limit: 50})
			if err != nil {
				return nil, err
			}
			seen := map[reports.TargetRef]bool{}
			for _, row := range rows {
				if !seen[row.TargetRef] {
					seen[row.TargetRef] = true
					d.Choices = append(d.Choices, rolloutChoice{row.TargetRef, link("/rollout", targetValues(row.TargetRef), "version", gq.Version, "commit", gq.Commit)})
				}
			}
		}
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	d.Gate = &g
	repos, err := s.rep.Repositories(ctx, reports.Filter{Workspace: g.Workspace, Application: g.Application, Environment: g.Environment, Workload: g.Workload, Target: g.Target})
	if err != nil {
		return nil, err
	}
	d.Repo = repos.Manifests[g.TargetRef]
	d.SourceRepo = repos.Source[g.WorkloadRef()]
	d.Build = repos.Builds[g.WorkloadRef()][g.Version]
	v.Title = fmt.Sprintf("Rollout of %s %s to %s/%s", g.Workload, orUnknown(g.Version), g.Environment, g.Target)
	v.Refresh = refreshRollout
	v.Tables = map[string]table{
		"rollout-hosts": listTable("Hosts", []string{"host", "reconciler", "state", "version", "commit", "message", "since"}, one(func(h reports.GateHost) []string {
			return []string{h.Host, h.Reconciler, h.State, h.Version, h.Commit, h.Message, timeCSV(h.Since)}
		}), g.Hosts),
	}
	return v, nil
}

// ---- Search ----

type searchData struct {
	Query  string
	Result *reports.SearchResult
	Groups []searchGroup
	Repos  reports.Repositories
	Pager  pager
}

// searchGroup is what matched in one environment.
type searchGroup struct {
	Environment string
	Assignments []reports.SearchAssignment
	Hosts       []reports.SearchHost
}

// searchLimit is what a search page lists of assignments, and of hosts,
// when the URL names no limit.
const searchLimit = 200

func (s *Server) search(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	query := strings.TrimSpace(q.Get("q"))
	d := searchData{Query: query}
	v := &view{Template: "search", Title: "Search", Data: &d}
	if query == "" {
		return v, nil
	}
	v.Title = "Search: " + query
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	if q.Get("limit") == "" {
		p.Limit = searchLimit
	}
	res, next, err := s.rep.Search(ctx, query, p)
	if err != nil {
		return nil, err
	}
	d.Result, d.Pager = &res, newPager(r, next)
	if d.Repos, err = s.rep.Repositories(ctx, reports.Filter{}); err != nil {
		return nil, err
	}
	index := map[string]int{}
	group := func(env string) *searchGroup {
		i, ok := index[env]
		if !ok {
			i = len(d.Groups)
			index[env] = i
			d.Groups = append(d.Groups, searchGroup{Environment: env})
		}
		return &d.Groups[i]
	}
	for _, a := range res.Assignments {
		g := group(a.Environment)
		g.Assignments = append(g.Assignments, a)
	}
	for _, h := range res.Hosts {
		g := group(h.Environment)
		g.Hosts = append(g.Hosts, h)
	}
	header := append(slices.Clone(refHeader), "matchedBy", "version", "commit", "buildCommit", "assignedAt", "scheduled", "success", "failure", "inProgress", "notReported", "allSucceededAt", "lagSeconds")
	v.Tables = map[string]table{
		"assignments": listTable("Assignments", header, one(func(a reports.SearchAssignment) []string {
			return append(refCSV(a.TargetRef), a.MatchedBy, a.Version, a.Commit, a.BuildCommit, timeCSV(a.AssignedAt), yes(a.Scheduled),
				strconv.Itoa(a.Success), strconv.Itoa(a.Failure), strconv.Itoa(a.InProgress), strconv.Itoa(a.NotReported), timePtrCSV(a.AllSucceededAt), floatPtrCSV(a.LagSeconds))
		}), res.Assignments),
		"hosts": listTable("Hosts", append(append([]string{"host", "reconciler"}, refHeader...), "version", "versionKnown", "commit", "status", "message", "statusSince"),
			one(func(h reports.SearchHost) []string {
				return append(append([]string{h.Host, h.Reconciler}, refCSV(h.TargetRef)...), h.Version, yes(h.VersionKnown), h.Commit, h.Status, h.Message, timeCSV(h.StatusSince))
			}), res.Hosts),
	}
	return v, nil
}

// ---- Compare ----

type compareData struct {
	reports.Comparison
	Bar          filterBar
	Pager        pager
	Environments []string
	Rows         []compareRow
	Differing    int
}

type compareRow struct {
	reports.ComparisonRow
	FromScheduled string // the versions scheduled, each once
	ToScheduled   string
	GitOpsCompare string // the forge's comparison of the deployed GitOps commits
	SourceCompare string // ... of the build commits
}

func (s *Server) compare(r *http.Request) (*view, error) {
	ctx, q := r.Context(), r.URL.Query()
	f, err := parseFilter(q, s.rep.Now())
	if err != nil {
		return nil, err
	}
	f = reports.Filter{Workspace: f.Workspace, Application: f.Application, Workload: f.Workload, Target: f.Target}
	p, err := pageParam(q)
	if err != nil {
		return nil, err
	}
	envs, err := s.rep.Environments(ctx, nil)
	if err != nil {
		return nil, err
	}
	from, to := q.Get("from"), q.Get("to")
	if from == "" && to == "" && len(envs) >= 2 {
		// The last step of the promotion: what production lacks.
		from, to = envs[len(envs)-2], envs[len(envs)-1]
	}
	bar, err := s.newFilterBar(r, "/compare", f, "workspace", "application", "workload", "target")
	if err != nil {
		return nil, err
	}
	d := compareData{Bar: bar, Environments: envs, Comparison: reports.Comparison{From: from, To: to}}
	v := &view{Template: "compare", Title: "Compare environments", Nav: "/compare", Data: &d}
	if from == "" || to == "" || from == to {
		if from != "" || to != "" {
			return nil, &inputError{"to", "choose two different environments to compare"}
		}
		return v, nil
	}
	c, next, err := s.rep.Compare(ctx, f, from, to, p)
	if err != nil {
		return nil, err
	}
	d.Comparison, d.Pager = c, newPager(r, next)
	v.Title = "Compare " + from + " and " + to
	v.Refresh = refreshPage
	for _, row := range c.Items {
		cr := compareRow{ComparisonRow: row, FromScheduled: scheduledList(row.From), ToScheduled: scheduledList(row.To)}
		if row.Differs {
			d.Differing++
		}
		// What "to" lacks of "from": from to's scheduled commits to from's.
		if a, b := mainScheduled(row.From), mainScheduled(row.To); a != nil && b != nil {
			if a.ManifestsRepo == b.ManifestsRepo {
				cr.GitOpsCompare = compareURL(a.ManifestsRepo, b.Commit, a.Commit, s.opts.Forges)
			}
			if row.SourceRepo != "" && a.BuildCommit != b.BuildCommit {
				cr.SourceCompare = compareURL(row.SourceRepo, b.BuildCommit, a.BuildCommit, s.opts.Forges)
			}
		}
		d.Rows = append(d.Rows, cr)
	}
	side := func(sd reports.ComparisonSide) (string, string) {
		var vs, cs []string
		for _, dc := range sd.Deployed {
			if dc.NotReported() {
				// No commit: "-" keeps the two lists aligned entry by entry.
				vs, cs = append(vs, fmt.Sprintf("%s:%d", reports.StatusNotReported, dc.Hosts)), append(cs, "-")
				continue
			}
			vs = append(vs, fmt.Sprintf("%s:%d", orUnknown(dc.Version), dc.Hosts))
			cs = append(cs, dc.Commit)
		}
		return strings.Join(vs, " "), strings.Join(cs, " ")
	}
	v.Tables = map[string]table{
		"compare": pagedTable("Comparison", []string{"workspace", "application", "workload", "differs", from + "Deployed", from + "Commits", to + "Deployed", to + "Commits"},
			one(func(row reports.ComparisonRow) []string {
				fv, fc := side(row.From)
				tv, tc := side(row.To)
				return []string{row.Workspace, row.Application, row.Workload, yes(row.Differs), fv, fc, tv, tc}
			}), func(ctx context.Context, p reports.Page) ([]reports.ComparisonRow, string, error) {
				c, next, err := s.rep.Compare(ctx, f, from, to, p)
				return c.Items, next, err
			}),
	}
	return v, nil
}

// mainScheduled is a side's latest scheduled assignment, or nil.
func mainScheduled(sd reports.ComparisonSide) *reports.ScheduledCommit {
	var best *reports.ScheduledCommit
	for i := range sd.Scheduled {
		if sc := &sd.Scheduled[i]; best == nil || sc.AssignedAt.After(best.AssignedAt) {
			best = sc
		}
	}
	return best
}

// scheduledList lists the versions scheduled on a side, each once.
func scheduledList(sd reports.ComparisonSide) string {
	var vs []string
	for _, sc := range sd.Scheduled {
		if !slices.Contains(vs, sc.Version) {
			vs = append(vs, sc.Version)
		}
	}
	return strings.Join(vs, ", ")
}
