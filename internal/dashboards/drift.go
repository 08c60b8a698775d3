package dashboards

//lint:file-ignore SA1019 Grafana provisions the classic dashboard JSON (package dashboard) from files in every version; the v2 schema needs Grafana 12's dashboard API.

import (
	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// driftFrom is Drift with the dashboard's filters, as the API applies them:
// reconcilers that no target has show only when no target variable
// narrows; a host shows only its own rows.
var driftFrom = `
FROM reporting.drift(${stale_after:sqlstring}::interval)
WHERE ((kind <> 'unplaced' AND ` + filter(targetVariables...) + `)
       OR (kind = 'unplaced' AND ` + allSelected(targetVariables...) + `))
  AND ` + hostFilter

// driftSQL lists Drift, longest first.
var driftSQL = `
SELECT kind, since, for_seconds, environment, workspace, application, workload, target, host, reconciler,
       scheduled_version AS scheduled, deployed_version AS deployed, commit, status, message` + driftFrom + `
ORDER BY since, host, kind`

// driftKindsSQL counts Drift by kind.
var driftKindsSQL = `
SELECT count(*) FILTER (WHERE kind = 'version') AS version,
       count(*) FILTER (WHERE kind = 'failed') AS failed,
       count(*) FILTER (WHERE kind = 'unknown') AS unknown,
       count(*) FILTER (WHERE kind = 'stale') AS stale,
       count(*) FILTER (WHERE kind = 'not_reported') AS not_reported,
       count(*) FILTER (WHERE kind = 'no_hosts') AS no_hosts,
       count(*) FILTER (WHERE kind = 'unplaced') AS unplaced` + driftFrom

// driftByEnvironmentSQL counts Drift by environment and kind.
var driftByEnvironmentSQL = `
SELECT environment,
       count(*) FILTER (WHERE kind = 'version') AS version,
       count(*) FILTER (WHERE kind = 'failed') AS failed,
       count(*) FILTER (WHERE kind = 'unknown') AS unknown,
       count(*) FILTER (WHERE kind = 'stale') AS stale,
       count(*) FILTER (WHERE kind = 'not_reported') AS not_reported,
       count(*) FILTER (WHERE kind = 'no_hosts') AS no_hosts
FROM reporting.drift(${stale_after:sqlstring}::interval)
WHERE kind <> 'unplaced' AND ` + filter(targetVariables...) + `
  AND ` + hostFilter + `
GROUP BY environment
ORDER BY ` + byEnvironment

// driftKindNames are the drift kinds' display names.
var driftKindNames = map[string]string{
	"version": "Not at the scheduled version", "failed": "Failing at the scheduled version", "unknown": "Unknown commit",
	"stale": "Stale", "not_reported": "Not reported yet", "no_hosts": "Targets without hosts", "unplaced": "Reconcilers without a target",
}

func driftKindOverrides(kinds ...string) []cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	var out []cog.Builder[dashboard.DashboardFieldConfigSourceOverrides]
	for _, k := range kinds {
		out = append(out, dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
			Matcher(dashboard.MatcherConfig{Id: "byName", Options: k}).
			Properties([]dashboard.DynamicConfigValue{displayName(driftKindNames[k]), fixedColor(driftColors[k][1])}))
	}
	return out
}

// drift is the Drift dashboard.
func drift() *dashboard.DashboardBuilder {
	vars := append([]cog.Builder[dashboard.VariableModel]{datasourceVariable(), webURLVariable(), promotionOrderVariable(dashboard.VariableHideHideVariable)},
		targetVariablesOf(targetVariables...)...)
	vars = append(vars, hostVariable(), staleAfterVariable())
	return newDashboard(UIDDrift, "Tidemark / Drift",
		"Where reality differs from the desired state, since when, and why.").
		Variables(vars).Links(links("drift", "Drift")).
		WithPanel(stat.NewPanelBuilder().Id(1).Title("Drift").
			Description("Drift by kind: hosts not at their target's scheduled version, failing at it, reporting a commit the hub cannot place, silent for longer than Stale after, registered but not reported yet; targets no host reconciles; reconcilers whose endpoint no target has.").
			Datasource(datasource).WithTarget(query(formatTable, driftKindsSQL)).
			Span(24).Height(4).ColorMode(common.BigValueColorModeValue).GraphMode(common.BigValueGraphModeNone).
			TextMode(common.BigValueTextModeValueAndName).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Values(true).Calcs([]string{"lastNotNull"}).Fields("")).
			Overrides(driftKindOverrides("version", "failed", "unknown", "stale", "not_reported", "no_hosts", "unplaced"))).
		WithPanel(barchart.NewPanelBuilder().Id(2).Title("Drift by environment").
			Description("Drift of each environment, by kind.").
			Datasource(datasource).WithTarget(query(formatTable, driftByEnvironmentSQL)).
			Span(24).Height(8).XField("environment").Stacking(common.StackingModeNormal).ShowValue(common.VisibilityModeAuto).
			Overrides(driftKindOverrides("version", "failed", "unknown", "stale", "not_reported", "no_hosts"))).
		WithPanel(table.NewPanelBuilder().Id(3).Title("Drift").
			Description("Every drift, longest first: what differs, since when and for how long, and the host's report. The current state: the time range does not apply.").
			Datasource(datasource).WithTarget(query(formatTable, driftSQL)).
			Span(24).Height(16).Filterable(true).
			OverrideByName("kind", []dashboard.DynamicConfigValue{valueColors(driftColors), colorText()}).
			OverrideByName("status", []dashboard.DynamicConfigValue{valueColors(statusColors), colorText()}).
			OverrideByName("for_seconds", []dashboard.DynamicConfigValue{unit("dtdurations")}).
			OverrideByName("host", []dashboard.DynamicConfigValue{linksProperty(
				toDashboard("Host State of this host", UIDHostState, "host"),
				toWeb("This host in Tidemark", "hosts", "host"))}).
			OverrideByName("target", []dashboard.DynamicConfigValue{linksProperty(
				toDashboard("Environment State of this target", UIDEnvironmentState, targetVariables...),
				toWeb("Drift of this target in Tidemark", "drift", targetVariables...))}).
			WithTransformation(renamed(columnNames)))
}
