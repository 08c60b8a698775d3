// Package dashboards builds Tidemark's Grafana dashboards as code, with the
// Grafana Foundation SDK, and writes them as JSON where the Helm chart
// provisions them from (charts/tidemark/dashboards; `go generate` in this
// package).
//
// The dashboards are portable: they read a PostgreSQL data source chosen
// by a variable (no fixed uid), filter by variables filled from the data
// (workspace, application, environment in promotion order, workload,
// target), and query only the reporting schema's views and functions
// (migration 0020_reporting), which give the numbers of the hub's reports.
package dashboards

//lint:file-ignore SA1019 Grafana provisions the classic dashboard JSON (package dashboard) from files in every version; the v2 schema needs Grafana 12's dashboard API.

//go:generate go run ./gen -out ../../charts/tidemark/dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// DatasourceType is the plugin id of Grafana's PostgreSQL data source.
const DatasourceType = "grafana-postgresql-datasource"

// AllValue is what a multi-value variable expands to when "All" is
// selected: a quoted SQL literal, passed unformatted by Grafana, that
// every filter accepts as "do not filter" (see in). So "All" also covers
// values the variable's options do not list, and rows without the column
// (drift of reconcilers that no target has).
const AllValue = "'__all__'"

// DefaultWebURL is the default of the tidemark_url variable: where the
// Tidemark web UI is. The Helm chart replaces it
// (grafana.dashboards.tidemarkURL).
const DefaultWebURL = "http://localhost:8080"

// Tag tags every Tidemark dashboard; the dashboards link to each other by it.
const Tag = "tidemark"

// Dashboard is one generated dashboard.
type Dashboard struct {
	// File is the JSON file's name in the chart's dashboards folder.
	File  string
	Model dashboard.Dashboard
}

// All builds every dashboard.
func All() ([]Dashboard, error) {
	var out []Dashboard
	for _, b := range []struct {
		file  string
		build func() *dashboard.DashboardBuilder
	}{
		{"tidemark-environment-state.json", environmentState},
		{"tidemark-host-state.json", hostState},
		{"tidemark-deployment-observability.json", deploymentObservability},
		{"tidemark-drift.json", drift},
		{"tidemark-dora.json", dora},
	} {
		d, err := b.build().Build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.file, err)
		}
		out = append(out, Dashboard{File: b.file, Model: d})
	}
	return out, nil
}

// provisioned is a dashboard as provisioned: "id": null, so that every
// Grafana assigns its own.
type provisioned struct {
	ID *int64 `json:"id"`
	dashboard.Dashboard
}

// JSON renders the dashboard as the chart ships it: indented, ending in a
// newline.
func (d Dashboard) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep "<", ">" and "&" of SQL and URLs readable
	if err := enc.Encode(provisioned{Dashboard: d.Model}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes every dashboard into dir.
func Write(dir string) error {
	all, err := All()
	if err != nil {
		return err
	}
	for _, d := range all {
		b, err := d.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d.File), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
