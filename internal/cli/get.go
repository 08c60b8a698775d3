package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// A report `tidemark get` prints: the API path it reads and how to print
// its rows as a table.
type getReport struct {
	name    string
	aliases []string
	path    string
	about   string
	flags   []string // report-specific flags it takes
	print   func(w io.Writer, page *getPage) error
	atPath  string // the report as it was at a past time (--at), when it has one
}

// getPage is every page of a report, merged.
type getPage struct {
	Environments []string          `json:"environments,omitempty"` // discrepancies only
	Items        []json.RawMessage `json:"items"`
}

var getReports = []getReport{
	{name: "environments", aliases: []string{"environment", "env", "envs", "environment-state"}, path: "/api/v1/reports/environment-state",
		atPath: "/api/v1/reports/environment-state-at",
		about:  "Environment State: per target, the scheduled version and the deployed versions with status and host counts",
		print:  printEnvironmentState},
	{name: "targets", aliases: []string{"target"}, path: "/api/v1/reports/environment-state",
		atPath: "/api/v1/reports/environment-state-at",
		about:  "one line per target: scheduled version and a summary of what its hosts deploy",
		print:  printTargets},
	{name: "hosts", aliases: []string{"host", "host-state"}, path: "/api/v1/reports/host-state",
		atPath: "/api/v1/reports/host-state-at",
		about:  "Host State: per host and target, the deployed version, commit, status and since when",
		print:  printHostState},
	{name: "history", aliases: []string{"environment-history"}, path: "/api/v1/reports/environment-history",
		about: "Environment History: each assignment of each target with its host counts",
		print: printHistory},
	{name: "discrepancies", aliases: []string{"discrepancy", "diff"}, path: "/api/v1/reports/discrepancies", flags: []string{"order"},
		about: "Environment Discrepancies: workloads × environments, scheduled and deployed versions",
		print: printDiscrepancies},
	{name: "drift", path: "/api/v1/reports/drift", flags: []string{"stale-after"},
		about: "Drift: hosts off their scheduled version, failed, unknown commits, stale hosts, targets without hosts",
		print: printDrift},
	{name: "dora", path: "/api/v1/reports/dora",
		about: "DORA per workload and environment: deployment frequency, lead time, change failure rate, time to restore",
		print: printDORA},
}

func findGetReport(name string) (getReport, bool) {
	for _, r := range getReports {
		if r.name == name || slices.Contains(r.aliases, name) {
			return r, true
		}
	}
	return getReport{}, false
}

func newGetCmd() *cobra.Command {
	var (
		c                               client
		f                               reports.Filter
		since, until, at, output, order string
		staleAfter                      time.Duration
		limit                           int
	)
	var names, long strings.Builder
	for i, r := range getReports {
		if i > 0 {
			names.WriteString("|")
		}
		names.WriteString(r.name)
		fmt.Fprintf(&long, "  %-14s %s\n", r.name, r.about)
	}
	cmd := &cobra.Command{
		Use:   "get " + names.String(),
		Short: "Print a report of the hub: what runs where, history, differences, drift, DORA",
		Long: "Print a report of the hub as a table, JSON or YAML. Every page is fetched\n" +
			"unless --limit bounds the rows.\n\n" + long.String(),
		Example: `  tidemark get environments --environment prod
  tidemark get hosts --target drone --status failure
  tidemark get discrepancies --order dev,qa,staging,prod
  tidemark get drift --stale-after 30m -o json
  tidemark get dora --since 2026-01-01T00:00:00Z
  tidemark get environments --environment prod --at 2026-01-31T02:00:00Z`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("name one report: %s", names.String())
			}
			if _, ok := findGetReport(args[0]); !ok {
				return fmt.Errorf("unknown report %q: use %s", args[0], names.String())
			}
			return nil
		},
		ValidArgs: func() []string {
			var v []string
			for _, r := range getReports {
				v = append(v, r.name)
			}
			return v
		}(),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, _ := findGetReport(args[0])
			for _, flag := range []string{"order", "stale-after"} {
				if cmd.Flags().Changed(flag) && !slices.Contains(rep.flags, flag) {
					return fmt.Errorf("--%s does not apply to %s", flag, rep.name)
				}
			}
			if output != "table" && output != "json" && output != "yaml" {
				return fmt.Errorf("-o %q: use table, json or yaml", output)
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: give a positive number, or 0 for every row", limit)
			}
			q := url.Values{}
			for k, v := range map[string]string{"workspace": f.Workspace, "application": f.Application, "environment": f.Environment,
				"workload": f.Workload, "target": f.Target, "host": f.Host, "status": f.Status} {
				if v != "" {
					q.Set(k, v)
				}
			}
			now := time.Now()
			for _, t := range []struct{ flag, value string }{{"since", since}, {"until", until}} {
				if t.value == "" {
					continue
				}
				at, err := reports.ParseTime(t.value, now)
				if err != nil {
					return fmt.Errorf("--%s: %w", t.flag, err)
				}
				q.Set(t.flag, at.UTC().Format(time.RFC3339))
			}
			path := rep.path
			if at != "" {
				if rep.atPath == "" {
					return fmt.Errorf("--at applies to environments, targets and hosts, not %s", rep.name)
				}
				t, err := reports.ParseTime(at, now)
				if err != nil {
					return fmt.Errorf("--at: %w", err)
				}
				q.Set("at", t.UTC().Format(time.RFC3339Nano))
				path = rep.atPath
			}
			if order != "" {
				q.Set("order", order)
			}
			if staleAfter != 0 {
				q.Set("staleAfter", staleAfter.String())
			}
			c.notes = cmd.ErrOrStderr()
			page, err := fetchReport(cmd.Context(), &c, path, q, limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(page)
			case "yaml":
				b, err := json.Marshal(page)
				if err != nil {
					return err
				}
				y, err := yaml.JSONToYAML(b)
				if err != nil {
					return err
				}
				_, err = out.Write(y)
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			if err := rep.print(tw, page); err != nil {
				return err
			}
			if len(page.Items) == 0 {
				// On stderr, as kubectl does: the table stays a table.
				fmt.Fprintf(cmd.ErrOrStderr(), "no %s rows match the filters\n", rep.name)
			}
			return tw.Flush()
		},
	}
	c.flags(cmd)
	c.retryFlag(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.Workspace, "workspace", "", "only this workspace (team)")
	fl.StringVar(&f.Application, "application", "", "only this application")
	fl.StringVar(&f.Environment, "environment", "", "only this environment")
	fl.StringVar(&f.Workload, "workload", "", "only this workload")
	fl.StringVar(&f.Target, "target", "", "only this deployment target")
	fl.StringVar(&f.Host, "host", "", "only this host")
	fl.StringVar(&f.Status, "status", "", "only this status: success, failure or in_progress")
	fl.StringVar(&since, "since", "", "start of the time range: RFC 3339, 2026-01-31T09:00 (UTC), a date, or a duration ago (24h, 7d)")
	fl.StringVar(&until, "until", "", "end of the time range: RFC 3339, 2026-01-31T09:00 (UTC), a date, or a duration ago (24h, 7d)")
	fl.StringVar(&at, "at", "", "environments, targets, hosts: the fleet as it was at this time (as --since), from history")
	fl.DurationVar(&staleAfter, "stale-after", 0, "drift: a host is stale after this long without a report (default: the hub's)")
	fl.StringVar(&order, "order", "", "discrepancies: the promotion order, e.g. dev,qa,staging,prod (default: the hub's)")
	fl.StringVarP(&output, "output", "o", "table", "table, json or yaml")
	fl.IntVar(&limit, "limit", 0, "at most this many rows (0: every page)")
	return cmd
}

// getPageSize is the number of rows asked for per request.
var getPageSize = 1000

// fetchReport reads a report, following nextCursor until the last page or
// until limit rows (0: no limit).
func fetchReport(ctx context.Context, c *client, path string, q url.Values, limit int) (*getPage, error) {
	all := &getPage{Items: []json.RawMessage{}}
	for cursor := ""; ; {
		size := getPageSize
		if limit > 0 {
			size = min(size, limit-len(all.Items))
		}
		q.Set("limit", strconv.Itoa(size))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			getPage
			NextCursor string `json:"nextCursor"`
		}
		if err := c.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		if all.Environments == nil {
			all.Environments = page.Environments
		}
		all.Items = append(all.Items, page.Items...)
		if page.NextCursor == "" || page.NextCursor == cursor || (limit > 0 && len(all.Items) >= limit) {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// decodeItems decodes a page's items.
func decodeItems[T any](page *getPage) ([]T, error) {
	out := make([]T, len(page.Items))
	for i, raw := range page.Items {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("the hub answered an item this tidemark cannot read: %w", err)
		}
	}
	return out, nil
}

// row writes one tab-separated table row.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		if i > 0 {
			io.WriteString(w, "\t")
		}
		io.WriteString(w, c)
	}
	io.WriteString(w, "\n")
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// formatDuration prints a duration the way people read it: 3d4h, 2h5m,
// 45s.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func formatSeconds(s *float64) string {
	if s == nil {
		return ""
	}
	return formatDuration(time.Duration(*s * float64(time.Second)))
}

// deployedVersion is a host's version as the tables print it: "-" for a
// host that has not reported yet (it runs no version the hub knows of),
// "<unknown>" for a commit the hub cannot place.
func deployedVersion(version string, known bool, status string) string {
	switch {
	case status == reports.StatusNotReported:
		return "-"
	case !known:
		return "<unknown>"
	}
	return version
}

func printEnvironmentState(w io.Writer, page *getPage) error {
	rows, err := decodeItems[reports.EnvironmentStateRow](page)
	if err != nil {
		return err
	}
	row(w, "ENVIRONMENT", "WORKSPACE", "APPLICATION", "WORKLOAD", "TARGET", "SCHEDULED", "DEPLOYED", "STATUS", "HOSTS")
	var last reports.TargetRef
	for i, r := range rows {
		sched := ""
		if r.Scheduled != nil {
			sched = r.Scheduled.Version
		}
		ref := []string{r.Environment, r.Workspace, r.Application, r.Workload, r.Target, sched}
		if i > 0 && r.TargetRef == last {
			// A target whose hosts disagree: its further rows show only
			// the deployed versions, as the Environment State mockup does.
			ref = slices.Repeat([]string{" "}, len(ref))
		}
		last = r.TargetRef
		deployed, status := deployedVersion(r.DeployedVersion, r.DeployedKnown, r.Status), r.Status
		if r.Hosts == 0 {
			deployed, status = "", "no hosts"
		}
		row(w, append(ref, deployed, status, strconv.Itoa(r.Hosts))...)
	}
	return nil
}

func printTargets(w io.Writer, page *getPage) error {
	rows, err := decodeItems[reports.EnvironmentStateRow](page)
	if err != nil {
		return err
	}
	type target struct {
		first    reports.EnvironmentStateRow
		hosts    int
		upToDate int
		deployed []string
	}
	var targets []*target
	byRef := map[reports.TargetRef]*target{}
	for _, r := range rows {
		t := byRef[r.TargetRef]
		if t == nil {
			t = &target{first: r}
			byRef[r.TargetRef] = t
			targets = append(targets, t)
		}
		if r.Hosts == 0 {
			continue
		}
		t.hosts += r.Hosts
		if r.UpToDate && r.Status == "success" {
			t.upToDate += r.Hosts
		}
		t.deployed = append(t.deployed, fmt.Sprintf("%s %s %d", deployedVersion(r.DeployedVersion, r.DeployedKnown, r.Status), r.Status, r.Hosts))
	}
	row(w, "ENVIRONMENT", "WORKSPACE", "APPLICATION", "WORKLOAD", "TARGET", "SCHEDULED", "COMMIT", "ASSIGNED", "UP-TO-DATE", "DEPLOYED")
	for _, t := range targets {
		r := t.first
		var sched, commit, assigned string
		if r.Scheduled != nil {
			sched, commit, assigned = r.Scheduled.Version, shortSHA(r.Scheduled.Commit), formatTime(r.Scheduled.AssignedAt)
			if r.Scheduled.Commit == "" {
				commit = "(pending)"
			}
		}
		deployed := strings.Join(t.deployed, ", ")
		if t.hosts == 0 {
			deployed = "no hosts"
		}
		row(w, r.Environment, r.Workspace, r.Application, r.Workload, r.Target, sched, commit, assigned,
			fmt.Sprintf("%d/%d", t.upToDate, t.hosts), deployed)
	}
	return nil
}

func printHostState(w io.Writer, page *getPage) error {
	rows, err := decodeItems[reports.HostStateRow](page)
	if err != nil {
		return err
	}
	row(w, "HOST", "ENVIRONMENT", "WORKSPACE", "APPLICATION", "WORKLOAD", "TARGET", "VERSION", "COMMIT", "STATUS", "SINCE", "SCHEDULED")
	for _, r := range rows {
		row(w, r.Host, r.Environment, r.Workspace, r.Application, r.Workload, r.Target,
			deployedVersion(r.Version, r.VersionKnown, r.Status), shortSHA(r.Commit), r.Status, formatTime(r.StatusSince), r.Scheduled)
	}
	return nil
}

func printHistory(w io.Writer, page *getPage) error {
	rows, err := decodeItems[reports.HistoryRow](page)
	if err != nil {
		return err
	}
	row(w, "ENVIRONMENT", "WORKSPACE", "APPLICATION", "WORKLOAD", "TARGET", "VERSION", "COMMIT", "ASSIGNED", "SUCCESS", "FAILED", "IN-PROGRESS", "NOT-REPORTED")
	for _, r := range rows {
		commit := shortSHA(r.Commit)
		if r.Commit == "" {
			commit = "(pending)"
		}
		row(w, r.Environment, r.Workspace, r.Application, r.Workload, r.Target, r.Version, commit, formatTime(r.AssignedAt),
			strconv.Itoa(r.Success), strconv.Itoa(r.Failure), strconv.Itoa(r.InProgress), strconv.Itoa(r.NotReported))
	}
	return nil
}

func printDiscrepancies(w io.Writer, page *getPage) error {
	rows, err := decodeItems[reports.DiscrepancyRow](page)
	if err != nil {
		return err
	}
	head := []string{"WORKSPACE", "APPLICATION", "WORKLOAD"}
	for _, env := range page.Environments {
		head = append(head, strings.ToUpper(env))
	}
	row(w, append(head, "DIFFERS")...)
	for _, r := range rows {
		cells := []string{r.Workspace, r.Application, r.Workload}
		byEnv := map[string]reports.DiscrepancyCell{}
		for _, c := range r.Cells {
			byEnv[c.Environment] = c
		}
		for _, env := range page.Environments {
			cells = append(cells, discrepancyCell(byEnv[env]))
		}
		differs := "no"
		if r.Differs {
			differs = "yes"
		}
		row(w, append(cells, differs)...)
	}
	return nil
}

// discrepancyCell prints the deployed versions with host counts, and the
// scheduled version when it is not what the hosts run: "1.1.5 (8), 1.1.4
// (40) [scheduled 1.1.5]".
func discrepancyCell(c reports.DiscrepancyCell) string {
	var parts []string
	deployed := map[string]bool{}
	for _, d := range c.Deployed {
		v := d.Version
		if v == "" {
			v = "<unknown>"
		}
		deployed[d.Version] = true
		parts = append(parts, fmt.Sprintf("%s (%d)", v, d.Hosts))
	}
	s := strings.Join(parts, ", ")
	if len(c.Scheduled) > 0 && (len(c.Deployed) != 1 || !deployed[c.Scheduled[0]] || len(c.Scheduled) > 1) {
		if s != "" {
			s += " "
		}
		s += "[scheduled " + strings.Join(c.Scheduled, ", ") + "]"
	}
	return s
}

func printDrift(w io.Writer, page *getPage) error {
	rows, err := decodeItems[reports.DriftRow](page)
	if err != nil {
		return err
	}
	row(w, "KIND", "ENVIRONMENT", "WORKSPACE", "APPLICATION", "WORKLOAD", "TARGET", "HOST", "SCHEDULED", "DEPLOYED", "STATUS", "FOR")
	for _, r := range rows {
		deployed := r.Deployed
		if r.Kind == reports.DriftUnknown || r.Kind == reports.DriftUnplaced {
			deployed = "<unknown " + shortSHA(r.Commit) + ">"
		}
		row(w, r.Kind, r.Environment, r.Workspace, r.Application, r.Workload, r.Target, r.Host, r.Scheduled, deployed, r.Status,
			formatDuration(time.Duration(r.For*float64(time.Second))))
	}
	return nil
}

func printDORA(w io.Writer, page *getPage) error {
	rows, err := decodeItems[reports.DORARow](page)
	if err != nil {
		return err
	}
	row(w, "ENVIRONMENT", "WORKSPACE", "APPLICATION", "WORKLOAD", "DEPLOYMENTS", "PER-DAY", "LEAD-TIME", "CHANGE-FAILURE-RATE", "TIME-TO-RESTORE")
	for _, r := range rows {
		cfr := ""
		if r.ChangeFailureRate != nil {
			cfr = fmt.Sprintf("%.0f%% (%d/%d)", *r.ChangeFailureRate*100, r.Failed, r.Changes)
		}
		row(w, r.Environment, r.Workspace, r.Application, r.Workload, strconv.Itoa(r.Deployments), strconv.FormatFloat(r.PerDay, 'f', 2, 64),
			formatSeconds(r.LeadTimeSeconds), cfr, formatSeconds(r.TimeToRestoreSeconds))
	}
	return nil
}
