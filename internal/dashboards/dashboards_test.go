package dashboards_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/dashboards"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// chartDashboards is where the chart provisions the dashboards from.
var chartDashboards = filepath.Join(testenv.RepoRoot(), "charts", "tidemark", "dashboards")

// The committed JSON is what the generator writes: run go generate
// ./internal/dashboards after changing the dashboards.
func TestGeneratedDashboardsUpToDate(t *testing.T) {
	all, err := dashboards.All()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range all {
		want = append(want, d.File)
		b, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(chartDashboards, d.File))
		if err != nil || !bytes.Equal(committed, b) {
			t.Errorf("%s is stale or missing (%v): run go generate ./internal/dashboards", d.File, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(chartDashboards, "*.json"))
	for _, f := range files {
		if !slices.Contains(want, filepath.Base(f)) {
			t.Errorf("%s is not generated: remove it, or add it to the generator", f)
		}
	}
}

// panel is what the tests read of a panel.
type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Format string `json:"format"`
		RawSQL string `json:"rawSql"`
	} `json:"targets"`
}

// variable is what the tests read of a template variable.
type variable struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Query      any    `json:"query"`
	Multi      bool   `json:"multi"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
}

// provisioned is what the tests read of a dashboard.
type provisioned struct {
	ID         *int     `json:"id"`
	UID        string   `json:"uid"`
	Title      string   `json:"title"`
	Tags       []string `json:"tags"`
	Panels     []panel  `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Links []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"links"`
}

// loadDashboards reads the committed dashboards, by uid.
func loadDashboards(t *testing.T) map[string]provisioned {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDashboards, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s (%v)", chartDashboards, err)
	}
	out := map[string]provisioned{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if id, ok := raw["id"]; !ok || id != nil {
			t.Errorf(`%s: "id" must be null, is %v`, f, id)
		}
		var d provisioned
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		out[d.UID] = d
	}
	return out
}

var (
	// relation names what a query reads: after FROM or JOIN.
	relation = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([a-z_][a-z_0-9.]*)`)
	// cte names a WITH query.
	cte = regexp.MustCompile(`(?i)(?:\bWITH|,)\s+([a-z_][a-z_0-9]*)\s+AS\s*\(`)
)

// The dashboards are portable and read only the reporting schema.
func TestDashboardsArePortable(t *testing.T) {
	ds := loadDashboards(t)
	wantUIDs := []string{dashboards.UIDEnvironmentState, dashboards.UIDHostState, dashboards.UIDDeploymentObservability, dashboards.UIDDrift, dashboards.UIDDORA}
	for _, uid := range wantUIDs {
		if _, ok := ds[uid]; !ok {
			t.Errorf("no dashboard %s", uid)
		}
	}
	for uid, d := range ds {
		if !slices.Contains(d.Tags, dashboards.Tag) {
			t.Errorf("%s: not tagged %s", uid, dashboards.Tag)
		}
		vars := map[string]variable{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		if v := vars["datasource"]; v.Type != "datasource" || v.Query != dashboards.DatasourceType {
			t.Errorf("%s: no datasource variable of type %s: %+v", uid, dashboards.DatasourceType, v)
		}
		for _, name := range []string{"workspace", "application", "environment", "workload"} {
			if v := vars[name]; v.Type != "query" || !v.Multi || !v.IncludeAll || v.AllValue != dashboards.AllValue || v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("%s: variable %s is not a multi-value query of the data source with All: %+v", uid, name, v)
			}
		}
		if uid != dashboards.UIDDORA && vars["target"].Type != "query" {
			t.Errorf("%s: no target variable", uid)
		}
		var toWeb bool
		for _, l := range d.Links {
			toWeb = toWeb || strings.HasPrefix(l.URL, "${tidemark_url}/")
		}
		if !toWeb {
			t.Errorf("%s: no link to the Tidemark web UI", uid)
		}
		for _, p := range d.Panels {
			if p.Datasource.Type != dashboards.DatasourceType || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s/%s: data source %+v, want the datasource variable", uid, p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s/%s: no query", uid, p.Title)
			}
			for _, q := range p.Targets {
				if q.Datasource.UID != "${datasource}" {
					t.Errorf("%s/%s: query data source %+v", uid, p.Title, q.Datasource)
				}
				checkReadsReporting(t, uid+"/"+p.Title, q.RawSQL)
				if q.Format == "time_series" && !strings.Contains(q.RawSQL, "$__timeFilter(") {
					t.Errorf("%s/%s: a time series without $__timeFilter", uid, p.Title)
				}
			}
		}
		for _, v := range d.Templating.List {
			if s, ok := v.Query.(string); ok && v.Type == "query" {
				checkReadsReporting(t, uid+"/$"+v.Name, s)
			}
		}
	}
}

// checkReadsReporting fails unless sql reads only reporting.* (and its own
// WITH queries), and names no environment.
func checkReadsReporting(t *testing.T, what, sql string) {
	t.Helper()
	local := map[string]bool{}
	for _, m := range cte.FindAllStringSubmatch(sql, -1) {
		local[strings.ToLower(m[1])] = true
	}
	for _, m := range relation.FindAllStringSubmatch(sql, -1) {
		if r := strings.ToLower(m[1]); !strings.HasPrefix(r, "reporting.") && !local[r] {
			t.Errorf("%s reads %s: dashboards read only the reporting schema", what, r)
		}
	}
	for _, env := range []string{"'dev'", "'prod'", "'qa'", "'staging'"} {
		if strings.Contains(sql, env) {
			t.Errorf("%s names the environment %s: environments come from the data", what, env)
		}
	}
}
