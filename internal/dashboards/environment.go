package dashboards

//lint:file-ignore SA1019 Grafana provisions the classic dashboard JSON (package dashboard) from files in every version; the v2 schema needs Grafana 12's dashboard API.

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The dashboards' uids: stable, so that links and bookmarks survive
// re-provisioning.
const (
	UIDEnvironmentState        = "tidemark-environment-state"
	UIDHostState               = "tidemark-host-state"
	UIDDeploymentObservability = "tidemark-deployment-observability"
	UIDDrift                   = "tidemark-drift"
	UIDDORA                    = "tidemark-dora"
)

// columnNames are the tables' column headers.
var columnNames = map[string]string{
	"environment": "Environment", "workspace": "Workspace", "application": "Application", "workload": "Workload",
	"target": "Deployment target", "scheduled": "Scheduled", "deployed": "Deployed", "status": "Status", "hosts": "Hosts",
	"up_to_date": "At scheduled version", "assigned_at": "Assigned", "version": "Version", "commit": "GitOps commit",
	"success": "Success", "failure": "Failure", "in_progress": "In progress", "not_reported": "Not reported",
	"first_success_at": "First success", "all_succeeded_at": "All hosts succeeded", "host": "Host", "host_type": "Type",
	"status_since": "Since", "last_report_at": "Last report", "message": "Message", "reconciler": "Reconciler",
	"kind": "Drift", "since": "Since", "for_seconds": "For",
	"deployments": "Deployments", "deployments_per_day": "Per day", "lead_time_seconds": "Lead time (median)",
	"changes": "Changes", "failed": "Failed", "change_failure_rate": "Change failure rate",
	"time_to_restore_seconds": "Time to restore (median)", "targets": "Targets", "differs": "Environments differ",
}

// newDashboard starts a Tidemark dashboard.
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).Uid(uid).Description(description).Tags([]string{Tag}).
		Editable().Timezone(common.TimeZoneBrowser).Time("now-7d", "now").Refresh("1m").
		Tooltip(dashboard.DashboardCursorSyncCrosshair)
}

// environmentStateSQL is Environment State: per target, its scheduled
// version and its hosts by deployed version and status.
var environmentStateSQL = `
SELECT environment, workspace, application, workload, target,
       scheduled_version AS scheduled,
       CASE WHEN hosts = 0 OR status = 'not_reported' THEN NULL WHEN deployed_known THEN deployed_version ELSE 'unknown' END AS deployed,
       status, hosts, up_to_date
FROM reporting.environment_state
WHERE ` + filter(targetVariables...) + `
ORDER BY ` + byEnvironment + `, workspace, application, workload, target, hosts DESC, deployed, status`

// environmentStateTable is the Environment State table of the mockups.
func environmentStateTable(id uint32, title string) *table.PanelBuilder {
	return table.NewPanelBuilder().Id(id).Title(title).
		Description("Per deployment target: the scheduled version (its latest assignment) and how many live hosts deploy which version in which status; several rows when hosts disagree. The current state: the time range does not apply.").
		Datasource(datasource).WithTarget(query(formatTable, environmentStateSQL)).
		Span(24).Height(10).Filterable(true).
		OverrideByName("status", []dashboard.DynamicConfigValue{valueColors(statusColors), colorText()}).
		OverrideByName("up_to_date", []dashboard.DynamicConfigValue{valueColors(yesNo), colorText()}).
		OverrideByName("hosts", []dashboard.DynamicConfigValue{linksProperty(
			toDashboard("Hosts of this target", UIDHostState, targetVariables...),
			toWeb("Hosts of this target in Tidemark", "hosts", targetVariables...))}).
		OverrideByName("target", []dashboard.DynamicConfigValue{linksProperty(
			toDashboard("Drift of this target", UIDDrift, targetVariables...),
			toWeb("This target in Tidemark", "environments", targetVariables...))}).
		WithTransformation(renamed(columnNames))
}

// environmentHistorySQL is Environment History: each assignment in the
// time range, with how its target's hosts fared.
var environmentHistorySQL = `
SELECT assigned_at, environment, workspace, application, workload, target, version, commit,
       success, failure, in_progress, not_reported, first_success_at, all_succeeded_at
FROM reporting.environment_history
WHERE ` + filter(targetVariables...) + `
  AND $__timeFilter(assigned_at)
ORDER BY assigned_at DESC, ` + byEnvironment + `, workspace, application, workload, target`

func environmentHistoryTable(id uint32) *table.PanelBuilder {
	return table.NewPanelBuilder().Id(id).Title("Environment History").
		Description("Each assignment of a version to a target in the time range, newest first, with its target's live hosts by their latest report of a commit that resolves to it: success, failure, in progress, or not reported yet.").
		Datasource(datasource).WithTarget(query(formatTable, environmentHistorySQL)).
		Span(24).Height(10).Filterable(true).
		OverrideByName("success", []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "green"}}, colorText()}).
		OverrideByName("failure", []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}}, colorText()}).
		OverrideByName("in_progress", []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "blue"}}, colorText()}).
		OverrideByName("version", []dashboard.DynamicConfigValue{linksProperty(
			toWeb("History of this target in Tidemark", "history", targetVariables...))}).
		WithTransformation(renamed(columnNames))
}

// rolloutsSQL counts per day the assignments made and those that reached
// success on every host.
var rolloutsSQL = `
SELECT $__timeGroupAlias(assigned_at, '1d'), 'assigned' AS metric, count(*) AS rollouts
FROM reporting.environment_history
WHERE ` + filter(targetVariables...) + `
  AND $__timeFilter(assigned_at)
GROUP BY 1
UNION ALL
SELECT $__timeGroupAlias(all_succeeded_at, '1d'), 'succeeded on every host' AS metric, count(*) AS rollouts
FROM reporting.environment_history
WHERE ` + filter(targetVariables...) + `
  AND $__timeFilter(all_succeeded_at)
GROUP BY 1
ORDER BY 1`

func rolloutsPanel(id uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Id(id).Title("Rollouts per day").
		Description("Versions assigned to targets per day, and rollouts that reached success on every host of their target per day.").
		Datasource(datasource).WithTarget(query(formatTimeSeries, rolloutsSQL)).
		Span(24).Height(8).Unit("short").Decimals(0).DrawStyle(common.GraphDrawStyleBars).FillOpacity(60)
}

// fleetSQL sums Environment State.
var fleetSQL = `
SELECT count(DISTINCT target_id) AS targets,
       COALESCE(sum(hosts), 0) AS hosts,
       COALESCE(sum(hosts) FILTER (WHERE up_to_date), 0) AS at_scheduled_version,
       COALESCE(sum(hosts) FILTER (WHERE status = 'failure'), 0) AS failing,
       COALESCE(sum(hosts) FILTER (WHERE status = 'in_progress'), 0) AS in_progress,
       COALESCE(sum(hosts) FILTER (WHERE status = 'not_reported'), 0) AS not_reported,
       count(*) FILTER (WHERE hosts = 0) AS targets_without_hosts
FROM reporting.environment_state
WHERE ` + filter(targetVariables...)

func fleetPanel(id uint32) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Id(id).Title("Fleet").
		Description("Targets and their live hosts (host × target), as Environment State counts them.").
		Datasource(datasource).WithTarget(query(formatTable, fleetSQL)).
		Span(24).Height(4).ColorMode(common.BigValueColorModeValue).GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeValueAndName).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Values(true).Calcs([]string{"lastNotNull"}).Fields("")).
		OverrideByName("targets", []dashboard.DynamicConfigValue{displayName("Targets")}).
		OverrideByName("hosts", []dashboard.DynamicConfigValue{displayName("Hosts")}).
		OverrideByName("at_scheduled_version", []dashboard.DynamicConfigValue{displayName("At scheduled version"), fixedColor("green")}).
		OverrideByName("failing", []dashboard.DynamicConfigValue{displayName("Failing"), fixedColor("red")}).
		OverrideByName("in_progress", []dashboard.DynamicConfigValue{displayName("In progress"), fixedColor("blue")}).
		OverrideByName("not_reported", []dashboard.DynamicConfigValue{displayName("Not reported yet"), fixedColor("purple")}).
		OverrideByName("targets_without_hosts", []dashboard.DynamicConfigValue{displayName("Targets without hosts"), fixedColor("orange")})
}

func fixedColor(c string) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": c}}
}

// environmentState is the Environment State dashboard.
func environmentState() *dashboard.DashboardBuilder {
	vars := append([]cog.Builder[dashboard.VariableModel]{datasourceVariable(), webURLVariable(), promotionOrderVariable(dashboard.VariableHideHideVariable)},
		targetVariablesOf(targetVariables...)...)
	return newDashboard(UIDEnvironmentState, "Tidemark / Environment State",
		"Which version of each workload runs on which hosts, per deployment target, and the assignments in the time range.").
		Variables(vars).Links(links("environments", "Environments")).
		WithPanel(fleetPanel(1)).
		WithPanel(environmentStateTable(2, "Environment State")).
		WithPanel(environmentHistoryTable(3))
}
