package charts

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/agent"
)

const agentChart = "tidemark-agent"

var agentValues = []string{"hub.url=https://tidemark.example.com", "hub.tokenSecret=tidemark-agent-token"}

func TestAgentLint(t *testing.T) {
	args := []string{"lint", "--strict", filepath.Join("charts", agentChart)}
	for _, s := range append(agentValues, "hostLabels.env=prod", "hub.caConfigMap=hub-ca") {
		args = append(args, "--set", s)
	}
	helm(t, args...)
}

// ruleKeys flattens rules to one "group/resource[name]:verb" string per
// permission, so that equal permissions compare equal however grouped.
func ruleKeys(rules []policyRule) []string {
	var keys []string
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					for _, v := range r.Verbs {
						keys = append(keys, g+"/"+res+"["+n+"]:"+v)
					}
				}
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// TestAgentRBAC: the agent chart grants exactly the agent's PolicyRules,
// which are read-only, and nothing on Secrets.
func TestAgentRBAC(t *testing.T) {
	objs := renderChart(t, agentChart, agentValues...)
	crs := find(objs, "ClusterRole", nil)
	if len(crs) != 1 || len(find(objs, "Role", nil)) != 0 {
		t.Fatalf("want exactly 1 ClusterRole and no Role, got %d and %d", len(crs), len(find(objs, "Role", nil)))
	}
	var want []policyRule
	for _, r := range agent.PolicyRules() {
		want = append(want, policyRule{APIGroups: r.APIGroups, Resources: r.Resources, ResourceNames: r.ResourceNames, Verbs: r.Verbs})
	}
	got, wantKeys := ruleKeys(crs[0].Rules), ruleKeys(want)
	if !slices.Equal(got, wantKeys) {
		t.Errorf("the chart's ClusterRole grants\n  %s\nthe agent needs exactly\n  %s", strings.Join(got, "\n  "), strings.Join(wantKeys, "\n  "))
	}
	for _, k := range got {
		verb := k[strings.LastIndex(k, ":")+1:]
		if verb != "get" && verb != "list" && verb != "watch" || strings.Contains(k, "secrets") || strings.Contains(k, "*") {
			t.Errorf("not read-only: %s", k)
		}
		if strings.HasPrefix(k, "/namespaces[") && k != "/namespaces[kube-system]:get" {
			t.Errorf("namespaces beyond kube-system: %s", k)
		}
	}
	sa := find(objs, "ServiceAccount", nil)
	bindings := find(objs, "ClusterRoleBinding", nil)
	if len(sa) != 1 || len(bindings) != 1 || bindings[0].RoleRef.Name != crs[0].Metadata.Name ||
		len(bindings[0].Subjects) != 1 || bindings[0].Subjects[0].Name != sa[0].Metadata.Name || bindings[0].Subjects[0].Namespace != namespace {
		t.Errorf("ClusterRole not bound to the agent's ServiceAccount: %+v", bindings)
	}
}

// TestAgentDeployment: non-root, read-only filesystem, the token from a
// Secret, the hub and host flags passed.
func TestAgentDeployment(t *testing.T) {
	objs := renderChart(t, agentChart, append(agentValues, "hostName=aks-weu-1", "hostLabels.env=prod")...)
	ds := find(objs, "Deployment", nil)
	if len(ds) != 1 {
		t.Fatalf("want 1 Deployment, got %d", len(ds))
	}
	pod := ds[0].Spec.Template.Spec
	if pod.SecurityContext == nil || !isTrue(pod.SecurityContext.RunAsNonRoot) || len(pod.Containers) != 1 {
		t.Fatalf("pod: %+v", pod)
	}
	c := pod.Containers[0]
	if sc := c.SecurityContext; sc == nil || !isTrue(sc.RunAsNonRoot) || !isTrue(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %s", c.SecurityContext)
	}
	for _, arg := range []string{"agent", "--server=https://tidemark.example.com", "--host-name=aks-weu-1", "--host-label=env=prod"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %s", c.Args, arg)
		}
	}
	var token bool
	for _, e := range c.Env {
		token = token || e.Name == "TIDEMARK_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			e.ValueFrom.SecretKeyRef.Name == "tidemark-agent-token" && e.ValueFrom.SecretKeyRef.Key == "token"
	}
	if !token {
		t.Errorf("TIDEMARK_TOKEN not read from the Secret: %+v", c.Env)
	}
	if len(find(objs, "Secret", nil)) != 0 {
		t.Error("the chart renders a Secret: the token must come from an existing one")
	}
	if _, err := runHelm(repoRoot(t), "template", "x", filepath.Join("charts", agentChart)); err == nil || !strings.Contains(err.Error(), "hub.url is required") {
		t.Errorf("rendering without hub.url: %v", err)
	}
}
