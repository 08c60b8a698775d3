package dashboards

//lint:file-ignore SA1019 Grafana provisions the classic dashboard JSON (package dashboard) from files in every version; the v2 schema needs Grafana 12's dashboard API.

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// hostFilters are Host State's filters: the target variables, status and
// host.
var hostFilters = filter(targetVariables...) + `
  AND ` + in("status", "status") + `
  AND ` + hostFilter

// hostStateSQL is Host State: what each live host deploys for each target.
var hostStateSQL = `
SELECT host, host_type, environment, workspace, application, workload, target,
       CASE WHEN version_known THEN version WHEN status = 'not_reported' THEN NULL ELSE 'unknown' END AS version,
       commit, status, status_since, last_report_at, scheduled_version AS scheduled, up_to_date, message, reconciler
FROM reporting.host_state
WHERE ` + hostFilters + `
ORDER BY host, reconciler, target_id`

// hostStatusSQL counts Host State's rows by status.
var hostStatusSQL = `
SELECT count(*) AS hosts,
       count(*) FILTER (WHERE status = 'success') AS success,
       count(*) FILTER (WHERE status = 'failure') AS failure,
       count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
       count(*) FILTER (WHERE status = 'not_reported') AS not_reported,
       count(*) FILTER (WHERE NOT up_to_date) AS not_at_scheduled_version
FROM reporting.host_state
WHERE ` + hostFilters

// hostState is the Host (Cluster) State dashboard.
func hostState() *dashboard.DashboardBuilder {
	vars := append([]cog.Builder[dashboard.VariableModel]{datasourceVariable(), webURLVariable(), promotionOrderVariable(dashboard.VariableHideHideVariable)},
		targetVariablesOf(targetVariables...)...)
	vars = append(vars, statusVariable(), hostVariable())
	return newDashboard(UIDHostState, "Tidemark / Host State",
		"What each host (cluster or VM) deploys for each deployment target: version, GitOps commit, status and since when.").
		Variables(vars).Links(links("hosts", "Hosts")).
		WithPanel(stat.NewPanelBuilder().Id(1).Title("Hosts").
			Description("Host × target rows of Host State, by the status of their current report.").
			Datasource(datasource).WithTarget(query(formatTable, hostStatusSQL)).
			Span(24).Height(4).ColorMode(common.BigValueColorModeValue).GraphMode(common.BigValueGraphModeNone).
			TextMode(common.BigValueTextModeValueAndName).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Values(true).Calcs([]string{"lastNotNull"}).Fields("")).
			OverrideByName("hosts", []dashboard.DynamicConfigValue{displayName("Hosts")}).
			OverrideByName("success", []dashboard.DynamicConfigValue{displayName("Success"), fixedColor("green")}).
			OverrideByName("failure", []dashboard.DynamicConfigValue{displayName("Failure"), fixedColor("red")}).
			OverrideByName("in_progress", []dashboard.DynamicConfigValue{displayName("In progress"), fixedColor("blue")}).
			OverrideByName("not_reported", []dashboard.DynamicConfigValue{displayName("Not reported yet"), fixedColor("purple")}).
			OverrideByName("not_at_scheduled_version", []dashboard.DynamicConfigValue{displayName("Not at the scheduled version"), fixedColor("orange")})).
		WithPanel(table.NewPanelBuilder().Id(2).Title("Host State").
			Description("Per host and deployment target: the deployed version (resolved from the GitOps commit the host reports; unknown when the hub cannot place it; empty for a host registered but not reported yet), commit, status, since when, the last report and the scheduled version. The current state: the time range does not apply.").
			Datasource(datasource).WithTarget(query(formatTable, hostStateSQL)).
			Span(24).Height(16).Filterable(true).
			OverrideByName("status", []dashboard.DynamicConfigValue{valueColors(statusColors), colorText()}).
			OverrideByName("up_to_date", []dashboard.DynamicConfigValue{valueColors(yesNo), colorText()}).
			OverrideByName("host", []dashboard.DynamicConfigValue{linksProperty(
				toDashboard("Drift of this host", UIDDrift, "host"),
				toWeb("This host in Tidemark", "hosts", "host"))}).
			OverrideByName("target", []dashboard.DynamicConfigValue{linksProperty(
				toDashboard("Environment State of this target", UIDEnvironmentState, targetVariables...),
				toWeb("This target in Tidemark", "environments", targetVariables...))}).
			WithTransformation(renamed(columnNames)))
}
