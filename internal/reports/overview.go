package reports

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Cell states of the Overview, worst first: a cell takes the worst state
// any of its hosts is in.
const (
	CellFailing  = "failing"     // a host failed
	CellRolling  = "rolling_out" // a host is in progress or has not reported yet
	CellDrifted  = "drifted"     // a host runs another version than scheduled, or an unknown one
	CellNoHosts  = "no_hosts"    // no host reconciles the workload's targets here
	CellUpToDate = "up_to_date"  // every host runs the scheduled version successfully
	CellNone     = ""            // the workload has no target in the environment
)

// Overview is the landing view: the Discrepancies matrix with the state of
// each cell.
type Overview struct {
	Environments []string      `json:"environments"`
	Items        []OverviewRow `json:"items"`
}

// OverviewRow is one workload across environments.
type OverviewRow struct {
	DiscrepancyRow
	States []CellState `json:"states"` // aligned with Cells
}

// CellState counts the host-target pairs of one workload in one
// environment by what they do, and names the cell's state.
type CellState struct {
	State       string `json:"state"`
	Hosts       int    `json:"hosts"`
	UpToDate    int    `json:"upToDate"`
	InProgress  int    `json:"inProgress"`
	NotReported int    `json:"notReported"`
	Failed      int    `json:"failed"`
	// Behind counts hosts that succeeded at another version than the
	// scheduled one; Unknown hosts that run a commit the hub cannot place.
	Behind  int `json:"behind"`
	Unknown int `json:"unknown"`
}

// Headline holds the fleet's numbers shown above the matrix. Each is the
// size of a report it links to.
type Headline struct {
	// Hosts is the number of hosts with a live reconciler that has reported.
	Hosts int `json:"hosts"`
	// FailingHosts is the number of hosts with a failed deployment (Host
	// State filtered by status failure).
	FailingHosts int `json:"failingHosts"`
	// DriftedHosts is the number of hosts in Drift of kind version,
	// unknown or unplaced.
	DriftedHosts int `json:"driftedHosts"`
	// StaleHosts is the number of hosts in Drift of kind stale.
	StaleHosts int `json:"staleHosts"`
	// RolloutsInProgress is the number of targets with a host in progress
	// (Environment State filtered by status in_progress).
	RolloutsInProgress int `json:"rolloutsInProgress"`
}

// DriftedKinds are the Drift kinds the headline counts as drifted.
var DriftedKinds = []string{DriftVersion, DriftUnknown, DriftUnplaced}

// Overview answers the landing view: a page of the Discrepancies matrix
// with each cell's state.
func (s *Service) Overview(ctx context.Context, f Filter, order []string, p Page) (Overview, string, error) {
	d, next, targets, err := s.discrepancies(ctx, f, order, p)
	if err != nil {
		return Overview{}, "", err
	}
	type cellKey struct{ ws, app, wl, env string }
	states := map[cellKey]*CellState{}
	for _, t := range targets {
		for _, r := range t.rows {
			k := cellKey{r.Workspace, r.Application, r.Workload, r.Environment}
			c := states[k]
			if c == nil {
				c = &CellState{}
				states[k] = c
			}
			c.Hosts += r.Hosts
			switch {
			case r.Hosts == 0:
			case r.Status == "failure":
				c.Failed += r.Hosts
			case r.Status == "in_progress":
				c.InProgress += r.Hosts
			case r.Status != "success":
				c.NotReported += r.Hosts
			case r.UpToDate:
				c.UpToDate += r.Hosts
			case !r.DeployedKnown:
				c.Unknown += r.Hosts
			default:
				c.Behind += r.Hosts
			}
		}
	}
	out := Overview{Environments: d.Environments, Items: make([]OverviewRow, 0, len(d.Items))}
	for _, dr := range d.Items {
		row := OverviewRow{DiscrepancyRow: dr, States: make([]CellState, len(dr.Cells))}
		for i, c := range dr.Cells {
			if len(c.Targets) == 0 {
				continue
			}
			st := CellState{}
			if cs := states[cellKey{dr.Workspace, dr.Application, dr.Workload, c.Environment}]; cs != nil {
				st = *cs
			}
			st.State = st.state()
			row.States[i] = st
		}
		out.Items = append(out.Items, row)
	}
	return out, next, nil
}

func (c CellState) state() string {
	switch {
	case c.Failed > 0:
		return CellFailing
	case c.InProgress > 0 || c.NotReported > 0:
		return CellRolling
	case c.Behind > 0 || c.Unknown > 0:
		return CellDrifted
	case c.Hosts == 0:
		return CellNoHosts
	}
	return CellUpToDate
}

// Headline counts the fleet's hosts, failing hosts, drifted and stale hosts
// (as Drift counts them) and targets rolling out (as Environment State
// does), for the filter's workspace, application, environment, workload,
// target and host. It reads the maintained state: a few indexed counts
// (the whole fleet's hosts, failing and stale hosts: one row per host).
func (s *Service) Headline(ctx context.Context, f Filter) (Headline, error) {
	f = Filter{Workspace: f.Workspace, Application: f.Application, Environment: f.Environment, Workload: f.Workload, Target: f.Target, Host: f.Host}
	var h Headline
	byTarget := f.Workspace != "" || f.Application != "" || f.Environment != "" || f.Workload != "" || f.Target != ""
	// Hosts, failing and stale hosts: from the maintained host_counts for
	// the whole fleet, from the reconcilers of the targets a filter names.
	stale := s.now().UTC().Add(-s.staleAfter)
	joins := " JOIN hosts h ON h.id = r.host_id"
	var err error
	if byTarget {
		w := reconcilerFilter(Filter{Host: f.Host})
		w.add("r.status <> ''")
		joins += " JOIN targets t ON t.endpoint_id = r.endpoint_id" + targetJoins
		w.targetFilter(f)
		err = s.st.Read().QueryRow(ctx, `SELECT count(DISTINCT r.host_id), count(DISTINCT CASE WHEN r.status = 'failure' THEN r.host_id END),
				count(DISTINCT CASE WHEN r.last_report_at < `+w.bind("?", stale)+` THEN r.host_id END)
			FROM reconcilers r`+joins+` WHERE `+w.sql(), w.args...).Scan(&h.Hosts, &h.FailingHosts, &h.StaleHosts)
	} else {
		w := &where{}
		if f.Host != "" {
			w.add("h.name = ?", f.Host)
		}
		err = s.st.Read().QueryRow(ctx, `SELECT count(*), COALESCE(sum(CASE WHEN c.failing > 0 THEN 1 ELSE 0 END), 0),
				COALESCE(sum(CASE WHEN c.oldest_report_at < `+w.bind("?", stale)+` THEN 1 ELSE 0 END), 0)
			FROM host_counts c JOIN hosts h ON h.id = c.host_id WHERE `+w.sql(), w.args...).Scan(&h.Hosts, &h.FailingHosts, &h.StaleHosts)
	}
	if err != nil {
		return h, err
	}
	// Targets rolling out: a host in progress.
	tw := &where{}
	tw.targetFilter(f)
	if f.Host != "" {
		tw.conds = append(tw.conds, reconcilerExists(Filter{Host: f.Host, Status: "in_progress"}, tw))
	} else {
		tw.add("EXISTS (SELECT 1 FROM endpoint_counts c WHERE c.endpoint_id = t.endpoint_id AND c.status = 'in_progress')")
	}
	if err := s.st.Read().QueryRow(ctx, `SELECT count(*) FROM targets t`+targetJoins+` WHERE `+tw.sql(), tw.args...).Scan(&h.RolloutsInProgress); err != nil {
		return h, err
	}
	// Drifted hosts (maintained).
	dw := &where{}
	dw.add("dr.kind IN ('version', 'unknown', 'unplaced')")
	if f.Host != "" {
		dw.add("h.name = ?", f.Host)
	}
	if byTarget {
		dw.targetFilter(f)
	}
	err = s.st.Read().QueryRow(ctx, `SELECT count(DISTINCT r.host_id) FROM drift dr
		JOIN reconcilers r ON r.id = dr.reconciler_id JOIN hosts h ON h.id = r.host_id
		LEFT JOIN targets t ON t.id = dr.target_id
		LEFT JOIN workloads wl ON wl.id = t.workload_id LEFT JOIN applications app ON app.id = wl.application_id
		LEFT JOIN workspaces ws ON ws.id = app.workspace_id LEFT JOIN environments env ON env.id = t.environment_id
		WHERE `+dw.sql(), dw.args...).Scan(&h.DriftedHosts)
	return h, err
}

// DriftOfKinds is Drift narrowed to some kinds (none: every kind).
func (s *Service) DriftOfKinds(ctx context.Context, f Filter, kinds []string, staleAfter time.Duration, p Page) ([]DriftRow, string, error) {
	return s.drift(ctx, f, kinds, staleAfter, p)
}

// DriftKinds are the kinds of Drift rows, in the order the UI lists them.
var DriftKinds = []string{DriftVersion, DriftFailed, DriftUnknown, DriftUnplaced, DriftStale, DriftNotReported, DriftNoHosts}

// ValidDriftKind checks a Drift kind filter.
func ValidDriftKind(k string) error {
	if slices.Contains(DriftKinds, k) {
		return nil
	}
	return fmt.Errorf("kind %q: use one of %s", k, strings.Join(DriftKinds, ", "))
}
