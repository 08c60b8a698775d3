// Package charts holds tests for the Helm charts in this folder. They run the
// project's pinned helm (hack/helm.sh) and check the rendered manifests.
package charts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "tidemark"
	releaseName = "tm"
	namespace   = "tidemark-system"
)

var (
	helmOnce sync.Once
	helmErr  error
)

// repoRoot is the repository root; go test runs in the package folder.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// requireHelm makes sure hack/helm.sh can provide helm (installing it on
// first use). Without helm the tests fail in CI (CI=true) and skip elsewhere.
func requireHelm(t *testing.T) {
	t.Helper()
	helmOnce.Do(func() {
		_, helmErr = runHelm(repoRoot(t), "version", "--short")
	})
	if helmErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("helm is required in CI: %v", helmErr)
	}
	t.Skipf("helm not available (set CI=true to make this fatal): %v", helmErr)
}

func runHelm(root string, args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{filepath.Join(root, "hack", "helm.sh")}, args...)...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// helm runs helm with args from the repository root and returns its stdout.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	requireHelm(t)
	out, err := runHelm(repoRoot(t), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Minimal views of the rendered objects; unknown fields are ignored.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Rules      []policyRule      `json:"rules"`
	StringData map[string]string `json:"stringData"`
	RoleRef    struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"roleRef"`
	Subjects []struct {
		Kind      string `json:"kind"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"subjects"`
	Spec struct {
		// Deployment
		Replicas *int `json:"replicas"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				ServiceAccountName string           `json:"serviceAccountName"`
				SecurityContext    *securityContext `json:"securityContext"`
				Containers         []struct {
					Name            string           `json:"name"`
					Args            []string         `json:"args"`
					SecurityContext *securityContext `json:"securityContext"`
					Env             []struct {
						Name      string `json:"name"`
						ValueFrom *struct {
							SecretKeyRef *struct {
								Name string `json:"name"`
								Key  string `json:"key"`
							} `json:"secretKeyRef"`
							ResourceFieldRef *struct {
								ContainerName string `json:"containerName"`
								Resource      string `json:"resource"`
							} `json:"resourceFieldRef"`
						} `json:"valueFrom"`
					} `json:"env"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
		// CustomResourceDefinition
		Group string `json:"group"`
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
	} `json:"spec"`
}

type policyRule struct {
	APIGroups     []string `json:"apiGroups"`
	Resources     []string `json:"resources"`
	ResourceNames []string `json:"resourceNames"`
	Verbs         []string `json:"verbs"`
}

type securityContext struct {
	RunAsNonRoot             *bool `json:"runAsNonRoot"`
	ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// render runs helm template with the given --set values and parses the output.
func render(t *testing.T, sets ...string) []object {
	t.Helper()
	return renderChart(t, chartDir, sets...)
}

// renderChart renders the chart in charts/dir.
func renderChart(t *testing.T, dir string, sets ...string) []object {
	t.Helper()
	args := []string{"template", releaseName, filepath.Join("charts", dir), "--namespace", namespace}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out := helm(t, args...)
	var objs []object
	for _, doc := range docSeparator.Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("parse rendered document: %v\n%s", err, doc)
		}
		if o.Kind == "" {
			t.Fatalf("rendered document without kind:\n%s", doc)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		t.Fatal("helm template rendered nothing")
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func find(objs []object, kind string, match func(object) bool) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind && (match == nil || match(o)) {
			out = append(out, o)
		}
	}
	return out
}

func component(name string) func(object) bool {
	return func(o object) bool { return o.Metadata.Labels["app.kubernetes.io/component"] == name }
}

func deployment(t *testing.T, objs []object, comp string) object {
	t.Helper()
	ds := find(objs, "Deployment", component(comp))
	if len(ds) != 1 {
		t.Fatalf("want 1 %s Deployment, got %d", comp, len(ds))
	}
	return ds[0]
}

func isTrue(b *bool) bool { return b != nil && *b }

// deref formats an optional field, "<unset>" when nil.
func deref[T any](p *T) string {
	if p == nil {
		return "<unset>"
	}
	return fmt.Sprint(*p)
}

func (sc *securityContext) String() string {
	if sc == nil {
		return "<no securityContext>"
	}
	return fmt.Sprintf("{runAsNonRoot: %s, readOnlyRootFilesystem: %s, allowPrivilegeEscalation: %s}",
		deref(sc.RunAsNonRoot), deref(sc.ReadOnlyRootFilesystem), deref(sc.AllowPrivilegeEscalation))
}

func TestLint(t *testing.T) {
	for _, sets := range [][]string{
		nil,
		{"api.auth.tokenReview=true", "grafana.dashboards.enabled=true", "database.existingSecret=x"},
		{"grafana.dashboards.enabled=true", "grafana.dashboards.tidemarkURL=https://tidemark.example.com",
			"prometheus.serviceMonitor.enabled=true", "prometheus.rules.enabled=true",
			"grafana.datasource.enabled=true", "grafana.datasource.host=db:5432", "grafana.datasource.password=x", "database.existingSecret=x"},
		{"crds.install=false", "database.url=postgres://u:p@db:5432/tidemark"},
		{"database.readReplicas.urls={postgres://u:p@db-r1:5432/tidemark}", "history.retention=400d"},
	} {
		args := []string{"lint", "--strict", filepath.Join("charts", chartDir)}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		helm(t, args...)
	}
}

func TestCRDTemplatesInSync(t *testing.T) {
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "hack", "sync-chart-crds.sh"), "--check")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chart CRDs differ from config/crd: run hack/sync-chart-crds.sh\n%v\n%s", err, out)
	}
}

func TestControllerRBAC(t *testing.T) {
	objs := render(t, "controller.rbac.secretNamespaces={azure}")

	crs := find(objs, "ClusterRole", component("controller"))
	if len(crs) != 1 {
		t.Fatalf("want 1 controller ClusterRole, got %d", len(crs))
	}
	has := func(rules []policyRule, group, resource string, verbs ...string) bool {
		for _, r := range rules {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) &&
				!slices.ContainsFunc(verbs, func(v string) bool { return !slices.Contains(r.Verbs, v) }) {
				return true
			}
		}
		return false
	}
	rules := crs[0].Rules
	for _, res := range []string{"deploymentdescriptors", "reconcilers", "azureresourcegraphs", "deployments"} {
		if !has(rules, "hub.kalypso.io", res, "get", "list", "watch", "update") {
			t.Errorf("controller ClusterRole lacks get/list/watch/update on %s", res)
		}
		for _, sub := range []string{"/status", "/finalizers"} {
			if !has(rules, "hub.kalypso.io", res+sub, "update", "patch") {
				t.Errorf("controller ClusterRole lacks update/patch on %s%s", res, sub)
			}
		}
	}
	if !has(rules, "kustomize.toolkit.fluxcd.io", "kustomizations", "get", "list", "watch") {
		t.Error("controller ClusterRole lacks read access to Flux Kustomizations")
	}
	for _, r := range rules {
		if slices.Contains(r.APIGroups, "kustomize.toolkit.fluxcd.io") &&
			slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" }) {
			t.Errorf("controller may change Flux Kustomizations: %+v", r)
		}
	}
	if !has(rules, "", "events", "create", "patch") || !has(rules, "events.k8s.io", "events", "create", "patch") {
		t.Error("controller ClusterRole lacks create/patch on events (core and events.k8s.io)")
	}

	// No ClusterRole at all may touch Secrets, nor use wildcards.
	for _, cr := range find(objs, "ClusterRole", nil) {
		for _, r := range cr.Rules {
			if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*") ||
				slices.Contains(r.Verbs, "*") {
				t.Errorf("ClusterRole %s grants too much: %+v", cr.Metadata.Name, r)
			}
		}
	}

	// Secrets: read-only, through namespaced Roles bound to the controller.
	secretNS := map[string]bool{}
	for _, role := range find(objs, "Role", nil) {
		for _, r := range role.Rules {
			if !slices.Contains(r.Resources, "secrets") {
				continue
			}
			if !has([]policyRule{r}, "", "secrets", "get", "list", "watch") {
				t.Errorf("Role %s/%s: secrets rule lacks get/list/watch: %+v", role.Metadata.Namespace, role.Metadata.Name, r)
			}
			if slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" }) {
				t.Errorf("Role %s/%s may write secrets: %+v", role.Metadata.Namespace, role.Metadata.Name, r)
			}
			secretNS[role.Metadata.Namespace] = true
		}
	}
	if !secretNS[namespace] || !secretNS["azure"] || len(secretNS) != 2 {
		t.Errorf("secrets Roles in namespaces %v, want exactly %s and azure", secretNS, namespace)
	}

	// Leader election Lease access is namespaced too.
	var leases bool
	for _, role := range find(objs, "Role", nil) {
		if role.Metadata.Namespace == namespace && has(role.Rules, "coordination.k8s.io", "leases", "get", "create", "update") {
			leases = true
		}
	}
	if !leases {
		t.Errorf("no Role for coordination.k8s.io leases in %s", namespace)
	}

	// The controller ClusterRole is bound to the controller ServiceAccount.
	sa := deployment(t, objs, "controller").Spec.Template.Spec.ServiceAccountName
	var bound bool
	for _, b := range find(objs, "ClusterRoleBinding", nil) {
		if b.RoleRef.Name == crs[0].Metadata.Name {
			for _, s := range b.Subjects {
				bound = bound || (s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == namespace)
			}
		}
	}
	if !bound {
		t.Errorf("controller ClusterRole not bound to ServiceAccount %s/%s", namespace, sa)
	}
}

func TestAPITokenReview(t *testing.T) {
	delegator := func(objs []object) bool {
		for _, b := range find(objs, "ClusterRoleBinding", nil) {
			if b.RoleRef.Kind == "ClusterRole" && b.RoleRef.Name == "system:auth-delegator" {
				return true
			}
		}
		return false
	}
	if delegator(render(t)) {
		t.Error("system:auth-delegator bound although api.auth.tokenReview is false")
	}
	if !delegator(render(t, "api.auth.tokenReview=true")) {
		t.Error("system:auth-delegator not bound with api.auth.tokenReview=true")
	}
}

func TestDeployments(t *testing.T) {
	objs := render(t, "api.replicas=3", "database.url=postgres://u:p@db:5432/tidemark")

	for _, comp := range []string{"api", "controller"} {
		d := deployment(t, objs, comp)
		pod := d.Spec.Template.Spec
		if pod.SecurityContext == nil || !isTrue(pod.SecurityContext.RunAsNonRoot) {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", comp)
		}
		if len(pod.Containers) == 0 {
			t.Fatalf("%s: no containers", comp)
		}
		for _, c := range pod.Containers {
			sc := c.SecurityContext
			if sc == nil || !isTrue(sc.RunAsNonRoot) || !isTrue(sc.ReadOnlyRootFilesystem) {
				t.Errorf("%s/%s: want runAsNonRoot and readOnlyRootFilesystem true, got %s", comp, c.Name, sc)
			}
			if sc != nil && (sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation) {
				t.Errorf("%s/%s: allowPrivilegeEscalation is not false", comp, c.Name)
			}
			var dbEnv bool
			for _, e := range c.Env {
				if e.Name == "TIDEMARK_DATABASE_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
					e.ValueFrom.SecretKeyRef.Key == "url" {
					dbEnv = true
				}
			}
			if !dbEnv {
				t.Errorf("%s/%s: TIDEMARK_DATABASE_URL not read from a Secret", comp, c.Name)
			}
		}
	}

	api := deployment(t, objs, "api")
	if r := api.Spec.Replicas; r == nil || *r != 3 {
		t.Errorf("api replicas = %s, want 3", deref(r))
	}
	var memLimit bool
	for _, e := range api.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
			e.ValueFrom.ResourceFieldRef.ContainerName == "api" && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" {
			memLimit = true
		}
	}
	if !memLimit {
		t.Error("api: GOMEMLIMIT is not the container's memory limit")
	}
	ctrl := deployment(t, objs, "controller")
	if args := ctrl.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--leader-elect") {
		t.Errorf("controller args %q lack --leader-elect", args)
	}
	if len(find(objs, "Secret", nil)) != 1 {
		t.Error("database.url set but no database Secret rendered")
	}

	// With an existing Secret the chart creates none and references it.
	objs = render(t, "database.existingSecret=tidemark-db", "database.secretKey=dsn")
	if n := len(find(objs, "Secret", nil)); n != 0 {
		t.Errorf("database.existingSecret set but %d Secret(s) rendered", n)
	}
	ref := deployment(t, objs, "api").Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef
	if ref == nil || ref.Name != "tidemark-db" || ref.Key != "dsn" {
		t.Errorf("api database secretKeyRef = %+v, want tidemark-db/dsn", ref)
	}
}

func TestCRDs(t *testing.T) {
	want := []string{"AzureResourceGraph", "Deployment", "DeploymentDescriptor", "Reconciler"}
	kinds := func(objs []object) []string {
		var ks []string
		for _, crd := range find(objs, "CustomResourceDefinition", nil) {
			if crd.Spec.Group == "hub.kalypso.io" {
				ks = append(ks, crd.Spec.Names.Kind)
				if crd.Metadata.Annotations["helm.sh/resource-policy"] != "keep" {
					t.Errorf("CRD %s lacks helm.sh/resource-policy: keep", crd.Metadata.Name)
				}
			}
		}
		slices.Sort(ks)
		return ks
	}
	if got := kinds(render(t, "crds.install=true")); !slices.Equal(got, want) {
		t.Errorf("crds.install=true: hub.kalypso.io CRDs %v, want %v", got, want)
	}
	if got := kinds(render(t, "crds.install=false")); len(got) != 0 {
		t.Errorf("crds.install=false: CRDs still rendered: %v", got)
	}
}

// envSecret returns the Secret reference of a container's env var, nil
// when the container has no such variable from a Secret.
func envSecret(d object, name string) *struct {
	Name string `json:"name"`
	Key  string `json:"key"`
} {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name && e.ValueFrom != nil {
			return e.ValueFrom.SecretKeyRef
		}
	}
	return nil
}

func hasArg(d object, arg string) bool {
	return slices.Contains(d.Spec.Template.Spec.Containers[0].Args, arg)
}

func hasArgPrefix(d object, prefix string) bool {
	return slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Args, func(a string) bool { return strings.HasPrefix(a, prefix) })
}

// API pods read from replicas named in a Secret; the controller, which
// writes, never sees them.
func TestReadReplicas(t *testing.T) {
	objs := render(t)
	for _, comp := range []string{"api", "controller"} {
		d := deployment(t, objs, comp)
		if envSecret(d, "TIDEMARK_READ_DATABASE_URLS") != nil || hasArgPrefix(d, "--max-replica-lag") {
			t.Errorf("%s: read replicas configured although database.readReplicas is empty", comp)
		}
	}

	objs = render(t, "database.url=postgres://u:p@db:5432/tidemark",
		"database.readReplicas.urls={postgres://u:p@db-r1:5432/tidemark,postgres://u:p@db-r2:5432/tidemark}",
		"database.readReplicas.maxLag=10s")
	secrets := find(objs, "Secret", func(o object) bool { return o.Metadata.Name == "tm-tidemark-read-database" })
	if len(secrets) != 1 || secrets[0].StringData["urls"] != "postgres://u:p@db-r1:5432/tidemark,postgres://u:p@db-r2:5432/tidemark" {
		t.Fatalf("read replica Secret: %+v; want tm-tidemark-read-database with the URLs comma-separated under urls", secrets)
	}
	api, ctrl := deployment(t, objs, "api"), deployment(t, objs, "controller")
	if ref := envSecret(api, "TIDEMARK_READ_DATABASE_URLS"); ref == nil || ref.Name != "tm-tidemark-read-database" || ref.Key != "urls" {
		t.Errorf("api TIDEMARK_READ_DATABASE_URLS from %+v, want tm-tidemark-read-database/urls", ref)
	}
	if !hasArg(api, "--max-replica-lag=10s") {
		t.Errorf("api args %q lack --max-replica-lag=10s", api.Spec.Template.Spec.Containers[0].Args)
	}
	if api.Spec.Template.Metadata.Annotations["checksum/read-database"] == "" {
		t.Error("api pods do not roll when the read replica Secret changes (no checksum/read-database)")
	}
	if envSecret(ctrl, "TIDEMARK_READ_DATABASE_URLS") != nil || hasArgPrefix(ctrl, "--max-replica-lag") {
		t.Error("the controller reads from replicas: it writes, and must use the primary")
	}
	for _, c := range api.Spec.Template.Spec.Containers {
		for _, a := range c.Args {
			if strings.Contains(a, "u:p@") {
				t.Errorf("api arg %q carries credentials: they belong in the Secret", a)
			}
		}
	}

	objs = render(t, "database.readReplicas.existingSecret=replicas", "database.readReplicas.secretKey=dsns")
	if n := len(find(objs, "Secret", nil)); n != 0 {
		t.Errorf("database.readReplicas.existingSecret set but %d Secret(s) rendered", n)
	}
	if ref := envSecret(deployment(t, objs, "api"), "TIDEMARK_READ_DATABASE_URLS"); ref == nil || ref.Name != "replicas" || ref.Key != "dsns" {
		t.Errorf("api TIDEMARK_READ_DATABASE_URLS from %+v, want replicas/dsns", ref)
	}
}

// history.retention reaches the API and the controller; a value the hub
// would refuse fails the render, naming the value.
func TestHistoryRetention(t *testing.T) {
	for _, comp := range []string{"api", "controller"} {
		if d := deployment(t, render(t), comp); hasArgPrefix(d, "--history-retention") {
			t.Errorf("%s: --history-retention passed by default; the default keeps everything", comp)
		}
		if d := deployment(t, render(t, "history.retention=400d"), comp); !hasArg(d, "--history-retention=400d") {
			t.Errorf("%s args %q lack --history-retention=400d", comp, d.Spec.Template.Spec.Containers[0].Args)
		}
	}
	requireHelm(t)
	_, err := runHelm(repoRoot(t), "template", releaseName, filepath.Join("charts", chartDir), "--set", "history.retention=a year")
	if err == nil || !strings.Contains(err.Error(), `history.retention "a year": give days (400d)`) {
		t.Errorf("history.retention=a year: %v; want a render error naming the value", err)
	}
}
