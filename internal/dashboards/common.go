package dashboards

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// datasource is the data source of every panel and variable: the one the
// datasource variable names.
var datasource = common.DataSourceRef{Type: cog.ToPtr(DatasourceType), Uid: cog.ToPtr("${datasource}")}

// sqlQuery is a query of Grafana's PostgreSQL data source, in code mode.
type sqlQuery struct {
	RefID      string               `json:"refId"`
	Datasource common.DataSourceRef `json:"datasource"`
	EditorMode string               `json:"editorMode"`
	Format     string               `json:"format"`
	RawQuery   bool                 `json:"rawQuery"`
	RawSQL     string               `json:"rawSql"`
}

// Query formats.
const (
	formatTable      = "table"
	formatTimeSeries = "time_series"
)

func (sqlQuery) ImplementsDataqueryVariant() {}

func (q sqlQuery) Equals(other variants.Dataquery) bool { return reflect.DeepEqual(q, other) }

func (sqlQuery) DataqueryType() string { return DatasourceType }

func (sqlQuery) Validate() error { return nil }

// sqlBuilder makes a sqlQuery a cog.Builder, as panels take queries.
type sqlBuilder struct{ q sqlQuery }

func (b sqlBuilder) Build() (variants.Dataquery, error) { return b.q, nil }

// query is the panel's query "A".
func query(format, sql string) sqlBuilder {
	return sqlBuilder{sqlQuery{RefID: "A", Datasource: datasource, EditorMode: "code", Format: format, RawQuery: true,
		RawSQL: strings.TrimSpace(sql)}}
}

// in filters column by a multi-value variable: the selected values, or
// anything when "All" is selected (the variable is then AllValue).
func in(column, variable string) string {
	v := "${" + variable + ":sqlstring}"
	return "(" + column + " IN (" + v + ") OR " + AllValue + " IN (" + v + "))"
}

// allSelected is true when "All" is selected in every one of variables.
func allSelected(variables ...string) string {
	conds := make([]string, len(variables))
	for i, v := range variables {
		conds[i] = AllValue + " IN (${" + v + ":sqlstring})"
	}
	return "(" + strings.Join(conds, " AND ") + ")"
}

// targetVariables name a target; their columns have the same names.
var targetVariables = []string{"workspace", "application", "environment", "workload", "target"}

// filter ANDs in() of each variable on the column of the same name.
func filter(variables ...string) string {
	conds := make([]string, len(variables))
	for i, v := range variables {
		conds[i] = in(v, v)
	}
	return strings.Join(conds, "\n  AND ")
}

// hostFilter keeps the host the host variable names, or every row when it
// is empty.
const hostFilter = "(${host:sqlstring} = '' OR host = ${host:sqlstring})"

// byEnvironment orders rows by environment in promotion order.
const byEnvironment = `reporting.environment_rank(environment, ${promotion_order:sqlstring}), environment COLLATE "C"`

// Variables.

func datasourceVariable() cog.Builder[dashboard.VariableModel] {
	return dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type(DatasourceType).
		Description("The PostgreSQL data source of the Tidemark database (a user in the tidemark_reporting role).")
}

// webURLVariable is where the Tidemark web UI is; hidden, set once (the
// Helm chart sets it).
func webURLVariable() cog.Builder[dashboard.VariableModel] {
	return dashboard.NewTextBoxVariableBuilder("tidemark_url").Label("Tidemark URL").Hide(dashboard.VariableHideHideVariable).
		Description("The Tidemark web UI, which links open.").
		DefaultValue(stringOrMap(DefaultWebURL)).Current(option(DefaultWebURL, DefaultWebURL))
}

func promotionOrderVariable(hide dashboard.VariableHide) cog.Builder[dashboard.VariableModel] {
	return dashboard.NewTextBoxVariableBuilder("promotion_order").Label("Promotion order").Hide(hide).
		Description("Environments in promotion order, such as dev,qa,staging,prod; the others follow (pipeline-like names first).").
		DefaultValue(stringOrMap("")).Current(option("", ""))
}

// multiVariable is a multi-value query variable with "All" (AllValue)
// selected.
func multiVariable(name, label, sql string) *dashboard.QueryVariableBuilder {
	sql = strings.TrimSpace(sql)
	return dashboard.NewQueryVariableBuilder(name).Label(label).Datasource(datasource).
		Query(stringOrMap(sql)).Definition(sql).
		Multi(true).IncludeAll(true).AllValue(AllValue).Current(option("All", "$__all")).
		Refresh(dashboard.VariableRefreshOnDashboardLoad).Sort(dashboard.VariableSortDisabled)
}

// targetVariablesOf returns the variables naming targets, each narrowed by
// the ones before it.
func targetVariablesOf(names ...string) []cog.Builder[dashboard.VariableModel] {
	var out []cog.Builder[dashboard.VariableModel]
	for _, n := range names {
		switch n {
		case "workspace":
			out = append(out, multiVariable(n, "Workspace", `SELECT DISTINCT workspace FROM reporting.targets ORDER BY 1`))
		case "application":
			out = append(out, multiVariable(n, "Application", `SELECT DISTINCT application FROM reporting.targets WHERE `+filter("workspace")+` ORDER BY 1`))
		case "environment":
			out = append(out, multiVariable(n, "Environment", `SELECT environment FROM reporting.environments ORDER BY `+byEnvironment))
		case "workload":
			out = append(out, multiVariable(n, "Workload", `SELECT DISTINCT workload FROM reporting.targets WHERE `+filter("workspace", "application")+` ORDER BY 1`))
		case "target":
			out = append(out, multiVariable(n, "Deployment target", `SELECT DISTINCT target FROM reporting.targets WHERE `+filter("workspace", "application", "environment", "workload")+` ORDER BY 1`))
		}
	}
	return out
}

func statusVariable() cog.Builder[dashboard.VariableModel] {
	return dashboard.NewCustomVariableBuilder("status").Label("Status").
		Values(stringOrMap("success,failure,in_progress,not_reported")).
		Multi(true).IncludeAll(true).AllValue(AllValue).Current(option("All", "$__all"))
}

func hostVariable() cog.Builder[dashboard.VariableModel] {
	return dashboard.NewTextBoxVariableBuilder("host").Label("Host").
		Description("One host (cluster or VM) by name; empty for every host.").
		DefaultValue(stringOrMap("")).Current(option("", ""))
}

func staleAfterVariable() cog.Builder[dashboard.VariableModel] {
	return dashboard.NewTextBoxVariableBuilder("stale_after").Label("Stale after").
		Description("A host without a report for this long is stale (1h, 30m, 2d).").
		DefaultValue(stringOrMap("1h")).Current(option("1h", "1h"))
}

func stringOrMap(s string) dashboard.StringOrMap { return dashboard.StringOrMap{String: &s} }

func option(text, value string) dashboard.VariableOption {
	return dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: &text}, Value: dashboard.StringOrArrayOfString{String: &value}}
}

// Links.

// links are a dashboard's links: the other Tidemark dashboards (keeping
// the variables and the time range) and the web UI's page. They show in
// the dashboard's header (no placement), in every Grafana version.
func links(page, title string) []cog.Builder[dashboard.DashboardLink] {
	return []cog.Builder[dashboard.DashboardLink]{
		headerLink{dashboard.DashboardLink{Title: "Tidemark dashboards", Type: dashboard.DashboardLinkTypeDashboards,
			Icon: "dashboard", Tags: []string{Tag}, IncludeVars: true, KeepTime: true}},
		headerLink{dashboard.DashboardLink{Title: title + " in Tidemark", Type: dashboard.DashboardLinkTypeLink,
			Icon: "external link", Tooltip: "Open the Tidemark web UI", Url: cog.ToPtr("${tidemark_url}/" + page),
			Tags: []string{}, TargetBlank: true}},
	}
}

// headerLink builds a dashboard link as given.
type headerLink struct{ l dashboard.DashboardLink }

func (b headerLink) Build() (dashboard.DashboardLink, error) { return b.l, nil }

// link is a data link of a table cell.
type link struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	TargetBlank bool   `json:"targetBlank,omitempty"`
}

// toDashboard links to another Tidemark dashboard, the row's fields as its
// variables; the data source, settings and time range carry over.
func toDashboard(title, uid string, fields ...string) link {
	u := "/d/" + uid + "?var-datasource=${datasource}&var-tidemark_url=${tidemark_url:percentencode}&var-promotion_order=${promotion_order:percentencode}"
	for _, f := range fields {
		u += "&var-" + f + "=${__data.fields." + f + ":percentencode}"
	}
	return link{Title: title, URL: u + "&${__url_time_range}"}
}

// toWeb links to a page of the Tidemark web UI, the row's fields as query
// parameters.
func toWeb(title, page string, fields ...string) link {
	params := make([]string, len(fields))
	for i, f := range fields {
		params[i] = f + "=${__data.fields." + f + ":percentencode}"
	}
	return link{Title: title, URL: "${tidemark_url}/" + page + "?" + strings.Join(params, "&"), TargetBlank: true}
}

// Field overrides: values are plain JSON, as Grafana stores them.

func linksProperty(ls ...link) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "links", Value: ls}
}

func displayName(name string) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "displayName", Value: name}
}

func unit(u string) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "unit", Value: u}
}

func colorText() dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "custom.cellOptions", Value: map[string]any{"type": "color-text"}}
}

// valueColors maps values to display texts and colors; "" maps null.
func valueColors(m map[string][2]string) dashboard.DynamicConfigValue {
	options := map[string]any{}
	var mappings []any
	i := 0
	for _, v := range slices.Sorted(maps.Keys(m)) {
		text, color := m[v][0], m[v][1]
		if v == "" {
			mappings = append(mappings, map[string]any{"type": "special", "options": map[string]any{
				"match": "null", "result": map[string]any{"text": text, "color": color, "index": len(m) - 1}}})
			continue
		}
		options[v] = map[string]any{"text": text, "color": color, "index": i}
		i++
	}
	mappings = append([]any{map[string]any{"type": "value", "options": options}}, mappings...)
	return dashboard.DynamicConfigValue{Id: "mappings", Value: mappings}
}

// statusColors colors deployment statuses.
var statusColors = map[string][2]string{
	"success":      {"success", "green"},
	"failure":      {"failure", "red"},
	"in_progress":  {"in progress", "blue"},
	"not_reported": {"not reported yet", "purple"},
	"":             {"no hosts", "text"},
}

// driftColors colors drift kinds.
var driftColors = map[string][2]string{
	"version":      {"not at the scheduled version", "orange"},
	"failed":       {"failing at the scheduled version", "red"},
	"unknown":      {"unknown commit", "purple"},
	"stale":        {"stale", "yellow"},
	"not_reported": {"not reported yet", "purple"},
	"no_hosts":     {"no hosts", "text"},
	"unplaced":     {"no target", "text"},
}

// yesNo shows booleans as words.
var yesNo = map[string][2]string{"true": {"yes", "green"}, "false": {"no", "orange"}}

// renamed renames columns for display; the fields keep their names, which
// data links use.
func renamed(names map[string]string) dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{"renameByName": names}}
}
