package charts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// rulesFile is the Prometheus rules file the chart installs as a
// PrometheusRule; rulesTests are its promtool unit tests.
var (
	rulesFile  = filepath.Join("tidemark", "files", "tidemark-rules.yaml")
	rulesTests = filepath.Join("testdata", "tidemark-rules-test.yaml")
)

// The alert rules are valid, every alert has a unit test in which it fires
// and one in which it resolves (promtool test rules), and a runbook in the
// README.
func TestPrometheusRules(t *testing.T) {
	promtool := testenv.Promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTests}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `json:"alert"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, rulesFile, &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				AlertName string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	readYAML(t, rulesTests, &tests)
	fires, resolves := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName] = true
			} else if fires[a.AlertName] {
				resolves[a.AlertName] = true // no alert after it fired
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] || !resolves[r.Alert] {
				t.Errorf("%s: unit tests in %s must see it fire, then resolve (fires %v, resolves %v)", r.Alert, rulesTests, fires[r.Alert], resolves[r.Alert])
			}
			if !strings.Contains(string(readme), "\n#### "+r.Alert+"\n") {
				t.Errorf("%s: no runbook in README.md (a heading #### %s)", r.Alert, r.Alert)
			}
			if want := "#" + strings.ToLower(r.Alert); !strings.HasSuffix(r.Annotations["runbook_url"], want) {
				t.Errorf("%s: runbook_url %q does not end in %s", r.Alert, r.Annotations["runbook_url"], want)
			}
		}
	}
	if n < 7 {
		t.Errorf("%d alerts in %s, want at least 7", n, rulesFile)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
