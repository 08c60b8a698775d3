package charts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// renderMaps runs helm template and parses every document as a generic map.
func renderMaps(t *testing.T, sets ...string) []map[string]any {
	t.Helper()
	args := []string{"template", releaseName, filepath.Join("charts", chartDir), "--namespace", namespace}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	var out []map[string]any
	for _, doc := range docSeparator.Split(helm(t, args...), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("parse rendered document: %v\n%s", err, doc)
		}
		out = append(out, m)
	}
	return out
}

func kindOf(objs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

// get walks a path of keys (and list indexes) in a parsed document.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// Dashboards, ServiceMonitor, PrometheusRule and the Grafana data source:
// each renders when enabled, as the sidecars and the Prometheus Operator
// expect it.
func TestObservability(t *testing.T) {
	objs := renderMaps(t,
		"grafana.dashboards.enabled=true", "grafana.dashboards.tidemarkURL=https://tidemark.example.com/ui",
		"prometheus.serviceMonitor.enabled=true", "prometheus.serviceMonitor.labels.release=kube-prometheus-stack",
		"prometheus.rules.enabled=true",
		"grafana.datasource.enabled=true", "grafana.datasource.host=db.example.com:5432", `grafana.datasource.password=s3cr'et`)

	// One ConfigMap per dashboard file, labelled for the sidecar, with the
	// web UI's URL in its variable.
	files, _ := filepath.Glob(filepath.Join(chartDir, "dashboards", "*.json"))
	var uids []string
	for _, cm := range kindOf(objs, "ConfigMap") {
		if get(cm, "metadata", "labels", "grafana_dashboard") != "1" {
			continue
		}
		data, _ := get(cm, "data").(map[string]any)
		for name, v := range data {
			var d struct {
				UID        string `json:"uid"`
				Templating struct {
					List []struct {
						Name  string `json:"name"`
						Query any    `json:"query"`
					} `json:"list"`
				} `json:"templating"`
			}
			if err := json.Unmarshal([]byte(v.(string)), &d); err != nil {
				t.Fatalf("ConfigMap %v, %s: not JSON: %v", get(cm, "metadata", "name"), name, err)
			}
			uids = append(uids, d.UID)
			for _, v := range d.Templating.List {
				if v.Name == "tidemark_url" && v.Query != "https://tidemark.example.com/ui" {
					t.Errorf("%s: tidemark_url is %v, want the chart's grafana.dashboards.tidemarkURL", d.UID, v.Query)
				}
			}
		}
	}
	if len(files) < 5 || len(uids) != len(files) || !slices.Contains(uids, "tidemark-drift") {
		t.Errorf("dashboard ConfigMaps hold %v; the chart has %d dashboard files", uids, len(files))
	}

	// The ServiceMonitor scrapes the "metrics" port of the API and
	// controller Services.
	sms := kindOf(objs, "ServiceMonitor")
	if len(sms) != 1 || get(sms[0], "metadata", "labels", "release") != "kube-prometheus-stack" ||
		get(sms[0], "spec", "endpoints", 0, "port") != "metrics" {
		t.Fatalf("ServiceMonitor: %v", sms)
	}
	selector, _ := get(sms[0], "spec", "selector", "matchLabels").(map[string]any)
	var scraped []string
	for _, svc := range kindOf(objs, "Service") {
		labels, _ := get(svc, "metadata", "labels").(map[string]any)
		matches := true
		for k, v := range selector {
			matches = matches && labels[k] == v
		}
		ports, _ := get(svc, "spec", "ports").([]any)
		for _, p := range ports {
			if matches && get(p, "name") == "metrics" {
				scraped = append(scraped, labels["app.kubernetes.io/component"].(string))
			}
		}
	}
	slices.Sort(scraped)
	if !slices.Equal(scraped, []string{"api", "controller"}) {
		t.Errorf("the ServiceMonitor scrapes the metrics ports of %v, want api and controller", scraped)
	}
	for _, d := range kindOf(objs, "Deployment") {
		if get(d, "metadata", "labels", "app.kubernetes.io/component") != "api" {
			continue
		}
		args, _ := get(d, "spec", "template", "spec", "containers", 0, "args").([]any)
		if !slices.Contains(args, any("--metrics-addr=:9090")) {
			t.Errorf("api args %v lack --metrics-addr=:9090", args)
		}
	}

	// The PrometheusRule holds the rules file's groups, as they are.
	prs := kindOf(objs, "PrometheusRule")
	if len(prs) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(prs))
	}
	var file map[string]any
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(get(prs[0], "spec", "groups"))
	want, _ := json.Marshal(file["groups"])
	if string(got) != string(want) || !strings.Contains(string(got), "TidemarkRolloutFailing") {
		t.Errorf("PrometheusRule groups differ from %s", rulesFile)
	}

	// The data source Secret: the Grafana sidecar's label and a PostgreSQL
	// data source with the password.
	var ds map[string]any
	for _, s := range kindOf(objs, "Secret") {
		if get(s, "metadata", "labels", "grafana_datasource") == "1" {
			ds = s
		}
	}
	if ds == nil {
		t.Fatal("no Secret labelled grafana_datasource")
	}
	var prov struct {
		Datasources []struct {
			Type           string            `json:"type"`
			URL            string            `json:"url"`
			User           string            `json:"user"`
			JSONData       map[string]string `json:"jsonData"`
			SecureJSONData map[string]string `json:"secureJsonData"`
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal([]byte(get(ds, "stringData", "tidemark-datasource.yaml").(string)), &prov); err != nil || len(prov.Datasources) != 1 {
		t.Fatalf("data source provisioning file: %v %+v", err, prov)
	}
	p := prov.Datasources[0]
	if p.Type != "grafana-postgresql-datasource" || p.URL != "db.example.com:5432" || p.User != "grafana" ||
		p.JSONData["database"] != "tidemark" || p.SecureJSONData["password"] != "s3cr'et" {
		t.Errorf("data source %+v", p)
	}

	// Off by default; a data source without a host or password is refused.
	for _, o := range renderMaps(t) {
		if k := o["kind"]; k == "ServiceMonitor" || k == "PrometheusRule" || get(o, "metadata", "labels", "grafana_datasource") != nil {
			t.Errorf("%v rendered by default", k)
		}
	}
	if _, err := runHelm(repoRoot(t), "template", releaseName, filepath.Join("charts", chartDir), "--set", "grafana.datasource.enabled=true"); err == nil ||
		!strings.Contains(err.Error(), "grafana.datasource.host") {
		t.Errorf("a data source without host rendered: %v", err)
	}
}
