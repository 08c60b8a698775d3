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

// doraVariables narrow DORA: a workload in an environment (the metrics add
// up a workload's targets, so there is no target variable).
var doraVariables = []string{"workspace", "application", "environment", "workload"}

// doraSQL is DORA over the dashboard's time range.
var doraSQL = `
SELECT workspace, application, workload, environment, deployments, deployments_per_day, lead_time_seconds,
       changes, failed, change_failure_rate, time_to_restore_seconds
FROM reporting.dora($__timeFrom(), $__timeTo())
WHERE ` + filter(doraVariables...) + `
ORDER BY workspace, application, workload, ` + byEnvironment

// doraTotalsSQL adds DORA up.
var doraTotalsSQL = `
SELECT COALESCE(sum(deployments), 0) AS deployments,
       COALESCE(sum(changes), 0) AS changes,
       COALESCE(sum(failed), 0) AS failed,
       CASE WHEN sum(changes) > 0 THEN sum(failed)::double precision / sum(changes) END AS change_failure_rate
FROM reporting.dora($__timeFrom(), $__timeTo())
WHERE ` + filter(doraVariables...)

// deploymentsPerDaySQL counts rollouts that reached success on every host,
// per day and environment.
var deploymentsPerDaySQL = `
SELECT $__timeGroupAlias(all_succeeded_at, '1d'), environment AS metric, count(*) AS deployments
FROM reporting.environment_history
WHERE ` + filter(doraVariables...) + `
  AND $__timeFilter(all_succeeded_at)
GROUP BY 1, 2
ORDER BY 1`

// dora is the DORA dashboard.
func dora() *dashboard.DashboardBuilder {
	vars := append([]cog.Builder[dashboard.VariableModel]{datasourceVariable(), webURLVariable(), promotionOrderVariable(dashboard.VariableHideHideVariable)},
		targetVariablesOf(doraVariables...)...)
	return newDashboard(UIDDORA, "Tidemark / DORA",
		"The four DORA metrics per workload and environment over the time range: deployment frequency, lead time, change failure rate, time to restore.").
		Time("now-30d", "now").
		Variables(vars).Links(links("dora", "DORA")).
		WithPanel(stat.NewPanelBuilder().Id(1).Title("Changes in the time range").
			Description("Assignments in the time range (changes), those that reached success on every host (deployments), those that failed on any host, and their share.").
			Datasource(datasource).WithTarget(query(formatTable, doraTotalsSQL)).
			Span(24).Height(4).ColorMode(common.BigValueColorModeValue).GraphMode(common.BigValueGraphModeNone).
			TextMode(common.BigValueTextModeValueAndName).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Values(true).Calcs([]string{"lastNotNull"}).Fields("")).
			OverrideByName("deployments", []dashboard.DynamicConfigValue{displayName("Deployments"), fixedColor("green")}).
			OverrideByName("changes", []dashboard.DynamicConfigValue{displayName("Changes")}).
			OverrideByName("failed", []dashboard.DynamicConfigValue{displayName("Failed"), fixedColor("red")}).
			OverrideByName("change_failure_rate", []dashboard.DynamicConfigValue{displayName("Change failure rate"), unit("percentunit"), fixedColor("orange")})).
		WithPanel(table.NewPanelBuilder().Id(2).Title("DORA").
			Description("Per workload and environment: deployments (assignments that reached success on every host) and per day, median lead time (build to success on every host), change failure rate (assignments that failed on any host), median time to restore (first failure to success on every host).").
			Datasource(datasource).WithTarget(query(formatTable, doraSQL)).
			Span(24).Height(12).Filterable(true).
			OverrideByName("deployments_per_day", []dashboard.DynamicConfigValue{{Id: "decimals", Value: 2}}).
			OverrideByName("lead_time_seconds", []dashboard.DynamicConfigValue{unit("dtdurations")}).
			OverrideByName("time_to_restore_seconds", []dashboard.DynamicConfigValue{unit("dtdurations")}).
			OverrideByName("change_failure_rate", []dashboard.DynamicConfigValue{unit("percentunit")}).
			OverrideByName("workload", []dashboard.DynamicConfigValue{linksProperty(
				toDashboard("Deployment history", UIDDeploymentObservability, doraVariables...),
				toWeb("DORA of this workload in Tidemark", "dora", doraVariables...))}).
			WithTransformation(renamed(columnNames))).
		WithPanel(timeseries.NewPanelBuilder().Id(3).Title("Deployments per day").
			Description("Rollouts that reached success on every host of their target, per day and environment.").
			Datasource(datasource).WithTarget(query(formatTimeSeries, deploymentsPerDaySQL)).
			Span(24).Height(8).Unit("short").Decimals(0).DrawStyle(common.GraphDrawStyleBars).FillOpacity(60))
}
