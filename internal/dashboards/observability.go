package dashboards

//lint:file-ignore SA1019 Grafana provisions the classic dashboard JSON (package dashboard) from files in every version; the v2 schema needs Grafana 12's dashboard API.

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// discrepanciesSQL is Environment Discrepancies: one row per workload and
// environment (a cell of the matrix) with the targets' scheduled versions
// and the deployed versions with host counts, most hosts first (hosts not
// reported yet deploy none); differs is true when the workload's
// environments deploy different versions. The
// matrix transformation puts environments in columns, in the order rows
// come: promotion order.
var discrepanciesSQL = `
WITH s AS (
  SELECT * FROM reporting.environment_state
  WHERE ` + filter(targetVariables...) + `
), versions AS (
  SELECT workspace, application, workload, environment, deployed_version, sum(hosts) AS hosts
  FROM s WHERE hosts > 0 AND status <> 'not_reported'
  GROUP BY workspace, application, workload, environment, deployed_version
), cells AS (
  SELECT s.workspace, s.application, s.workload, s.environment,
         string_agg(DISTINCT s.target, ', ') AS targets,
         string_agg(DISTINCT s.scheduled_version, ', ') AS scheduled,
         COALESCE(sum(s.hosts) FILTER (WHERE s.status <> 'not_reported'), 0) AS hosts,
         (SELECT string_agg(CASE WHEN v.deployed_version = '' THEN 'unknown' ELSE v.deployed_version END || ' ×' || v.hosts, ', '
                            ORDER BY v.hosts DESC, v.deployed_version COLLATE "C")
          FROM versions v
          WHERE v.workspace = s.workspace AND v.application = s.application AND v.workload = s.workload AND v.environment = s.environment) AS deployed,
         COALESCE((SELECT array_agg(v.deployed_version ORDER BY v.deployed_version COLLATE "C")
          FROM versions v
          WHERE v.workspace = s.workspace AND v.application = s.application AND v.workload = s.workload AND v.environment = s.environment), '{}') AS deployed_set
  FROM s
  GROUP BY s.workspace, s.application, s.workload, s.environment
), rows AS (
  SELECT c.*,
         (SELECT count(DISTINCT o.deployed_set) FROM cells o
          WHERE o.workspace = c.workspace AND o.application = c.application AND o.workload = c.workload) > 1 AS differs
  FROM cells c
)
SELECT workspace || ' / ' || application || ' / ' || workload || CASE WHEN differs THEN ' ≠' ELSE '' END AS row,
       environment,
       COALESCE(scheduled, '–') || ' → ' || COALESCE(deployed, 'no hosts') AS cell,
       workspace, application, workload, targets, scheduled, deployed, hosts, differs
FROM rows
ORDER BY ` + byEnvironment + `, workspace, application, workload`

// deploymentObservability is the Deployment Observability dashboard of the
// mockup: Environment State, Environment Discrepancies, history.
func deploymentObservability() *dashboard.DashboardBuilder {
	vars := append([]cog.Builder[dashboard.VariableModel]{datasourceVariable(), webURLVariable(), promotionOrderVariable(dashboard.VariableHideDontHide)},
		targetVariablesOf(targetVariables...)...)
	return newDashboard(UIDDeploymentObservability, "Tidemark / Deployment Observability",
		"Environments at a glance: what is scheduled and deployed where, how environments differ, and the deployment history.").
		Variables(vars).Links(links("environments", "Environments")).
		WithPanel(environmentStateTable(1, "Environments State")).
		WithPanel(table.NewPanelBuilder().Id(2).Title("Environment Discrepancies").
			Description("Workloads × environments: in each cell the scheduled version(s) → the deployed versions × hosts. ≠ marks a workload whose environments deploy different versions. Columns are the environments in the data, in promotion order (the Promotion order variable, then pipeline-like names).").
			Datasource(datasource).WithTarget(query(formatTable, discrepanciesSQL)).
			Span(24).Height(10).
			WithTransformation(dashboard.DataTransformerConfig{Id: "groupingToMatrix", Options: map[string]any{
				"rowField": "row", "columnField": "environment", "valueField": "cell", "emptyValue": "empty"}}).
			WithTransformation(renamed(map[string]string{"row\\environment": "Workspace / Application / Workload"}))).
		WithPanel(environmentHistoryTable(3)).
		WithPanel(rolloutsPanel(4))
}
