package agent

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// Kind is a kind of object the agent watches.
type Kind struct {
	// Name is the kind's name, such as Kustomization.
	Name string
	// Group and Versions: the first version the API server serves is
	// watched.
	Group    string
	Versions []string
	Resource string
	// Reconciler is true for the kinds that become reconcilers; the others
	// are sources they read from.
	Reconciler bool
	// Type is the reconciler type reported for it.
	Type string
}

// The kinds the agent watches: Flux reconcilers and sources, Argo CD
// Applications. Each is watched only when its CRD is installed.
var (
	KindKustomization  = Kind{Name: "Kustomization", Group: "kustomize.toolkit.fluxcd.io", Versions: []string{"v1", "v1beta2"}, Resource: "kustomizations", Reconciler: true, Type: "flux"}
	KindHelmRelease    = Kind{Name: "HelmRelease", Group: "helm.toolkit.fluxcd.io", Versions: []string{"v2", "v2beta2", "v2beta1"}, Resource: "helmreleases", Reconciler: true, Type: "flux-helm"}
	KindApplication    = Kind{Name: "Application", Group: "argoproj.io", Versions: []string{"v1alpha1"}, Resource: "applications", Reconciler: true, Type: "argocd"}
	KindGitRepository  = Kind{Name: "GitRepository", Group: "source.toolkit.fluxcd.io", Versions: []string{"v1", "v1beta2"}, Resource: "gitrepositories"}
	KindOCIRepository  = Kind{Name: "OCIRepository", Group: "source.toolkit.fluxcd.io", Versions: []string{"v1", "v1beta2"}, Resource: "ocirepositories"}
	KindHelmRepository = Kind{Name: "HelmRepository", Group: "source.toolkit.fluxcd.io", Versions: []string{"v1", "v1beta2"}, Resource: "helmrepositories"}
)

// Kinds lists every kind the agent may watch.
var Kinds = []Kind{KindKustomization, KindHelmRelease, KindApplication, KindGitRepository, KindOCIRepository, KindHelmRepository}

// GVR is the kind's resource at version v.
func (k Kind) GVR(v string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: k.Group, Version: v, Resource: k.Resource}
}

// objectKey names a watched object.
type objectKey struct {
	Kind, Namespace, Name string
}

func (k objectKey) String() string { return k.Kind + "/" + k.Namespace + "/" + k.Name }

// reconcilerName is the name a reconciler object is reported under:
// lower-case kind, namespace and name, unique on the host.
func reconcilerName(k objectKey) string {
	return strings.ToLower(k.Kind) + "/" + k.Namespace + "/" + k.Name
}

// State is what the agent reports of one reconciler object.
type State struct {
	Name     string
	Type     string
	Endpoint string // joined: repository/reference/path
	Storage  string // git or oci
	// Commit is the revision as the reconciler reports it; empty while it
	// has applied nothing (the reconciler is registered).
	Commit     string
	Status     model.Status
	Message    string
	ObservedAt string
}

// skipReason is why an object cannot be reported (yet).
type skipReason string

const (
	skipNoSource      skipReason = "source-unknown"
	skipUnsupported   skipReason = "unsupported-source"
	skipBadEndpoint   skipReason = "bad-endpoint"
	skipBadRevision   skipReason = "bad-revision"
	skipMissingFields skipReason = "missing-fields"
)

// sourceLookup finds a source object by kind, namespace and name.
type sourceLookup func(kind, namespace, name string) *unstructured.Unstructured

// stateOf maps a reconciler object to its state. deps lists the sources it
// read (so that their changes update it).
func stateOf(kind Kind, obj *unstructured.Unstructured, lookup sourceLookup) (st State, deps []objectKey, skip skipReason) {
	key := objectKey{Kind: kind.Name, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	st = State{Name: reconcilerName(key), Type: kind.Type}
	switch kind.Name {
	case KindKustomization.Name:
		skip = kustomizationState(obj, lookup, &st, &deps)
	case KindHelmRelease.Name:
		skip = helmReleaseState(obj, lookup, &st, &deps)
	case KindApplication.Name:
		skip = applicationState(obj, &st)
	default:
		return st, nil, skipMissingFields
	}
	if skip != "" {
		return st, deps, skip
	}
	if _, err := model.ParseEndpoint(st.Storage, st.Endpoint); err != nil {
		return st, deps, skipBadEndpoint
	}
	if st.Commit != "" {
		if _, err := model.NormalizeRevision(st.Commit); err != nil {
			return st, deps, skipBadRevision
		}
	} else {
		st.Status, st.Message, st.ObservedAt = "", "", ""
	}
	if len(st.Message) > maxMessage {
		st.Message = strings.ToValidUTF8(st.Message[:maxMessage], "") + "..."
	}
	return st, deps, ""
}

// maxMessage bounds a reported message.
const maxMessage = 4 << 10

// sourceRef reads a Flux sourceRef: kind, name and namespace (the
// object's own by default).
func sourceRef(obj *unstructured.Unstructured, fields ...string) (kind, ns, name string) {
	ref, _, _ := nestedMap(obj.Object, fields...)
	kind, _ = ref["kind"].(string)
	name, _ = ref["name"].(string)
	ns, _ = ref["namespace"].(string)
	if ns == "" {
		ns = obj.GetNamespace()
	}
	return kind, ns, name
}

// gitRef is a GitRepository's reference: branch, tag, semver, name or
// commit (Flux's default branch is master).
func gitRef(src *unstructured.Unstructured) string {
	for _, f := range []string{"branch", "tag", "semver", "name", "commit"} {
		if v, _, _ := unstructured.NestedString(src.Object, "spec", "ref", f); v != "" {
			return v
		}
	}
	return "master"
}

// ociRef is an OCIRepository's reference: tag, semver or digest (latest by
// default).
func ociRef(src *unstructured.Unstructured) string {
	for _, f := range []string{"tag", "semver", "digest"} {
		if v, _, _ := unstructured.NestedString(src.Object, "spec", "ref", f); v != "" {
			return v
		}
	}
	return "latest"
}

func joinEndpoint(repo, ref, path string) string {
	repo = strings.TrimRight(strings.TrimSpace(repo), "/")
	out := repo + "/" + strings.Trim(ref, "/")
	if p := strings.Trim(strings.TrimPrefix(strings.TrimSpace(path), "./"), "/"); p != "" && p != "." {
		out += "/" + p
	}
	return out
}

// fluxState reads Flux's Ready, Reconciling and Stalled conditions:
// Stalled or not Ready (and not reconciling) is a failure at the attempted
// revision, Ready a success at the applied one, anything else in progress.
func fluxState(obj *unstructured.Unstructured, applied, attempted string, st *State) {
	ready := condition(obj, "Ready")
	reconciling := condition(obj, "Reconciling")
	stalled := condition(obj, "Stalled")
	rev := firstOf(attempted, applied)
	switch {
	case stalled != nil && stalled.status == "True":
		st.Status, st.Message = model.StatusFailure, stalled.message
	case ready != nil && ready.status == "True":
		st.Status, st.Message, rev = model.StatusSuccess, ready.message, firstOf(applied, attempted)
	case ready != nil && ready.status == "False" && (reconciling == nil || reconciling.status != "True"):
		st.Status, st.Message = model.StatusFailure, ready.message
	default:
		st.Status = model.StatusInProgress
		if reconciling != nil {
			st.Message = reconciling.message
		} else if ready != nil {
			st.Message = ready.message
		}
	}
	st.Commit = rev
	if ready != nil {
		st.ObservedAt = ready.lastTransitionTime
	}
}

func kustomizationState(obj *unstructured.Unstructured, lookup sourceLookup, st *State, deps *[]objectKey) skipReason {
	kind, ns, name := sourceRef(obj, "spec", "sourceRef")
	if name == "" {
		return skipMissingFields
	}
	*deps = append(*deps, objectKey{Kind: kind, Namespace: ns, Name: name})
	src := lookup(kind, ns, name)
	path, _, _ := unstructured.NestedString(obj.Object, "spec", "path")
	switch {
	case src == nil:
		return skipNoSource
	case kind == KindGitRepository.Name:
		url, _, _ := unstructured.NestedString(src.Object, "spec", "url")
		st.Storage, st.Endpoint = model.StorageGit, joinEndpoint(url, gitRef(src), path)
	case kind == KindOCIRepository.Name:
		url, _, _ := unstructured.NestedString(src.Object, "spec", "url")
		st.Storage, st.Endpoint = model.StorageOCI, joinEndpoint(url, ociRef(src), path)
	default:
		return skipUnsupported
	}
	applied, _, _ := unstructured.NestedString(obj.Object, "status", "lastAppliedRevision")
	attempted, _, _ := unstructured.NestedString(obj.Object, "status", "lastAttemptedRevision")
	fluxState(obj, applied, attempted, st)
	return ""
}

// helmReleaseState: the endpoint is the chart's source (a GitRepository
// and the chart's path, an OCIRepository, or an OCI HelmRepository and the
// chart's name); the revision is the chart's OCI digest, else the source's
// artifact revision; the message names the chart version.
func helmReleaseState(obj *unstructured.Unstructured, lookup sourceLookup, st *State, deps *[]objectKey) skipReason {
	chart, _, _ := unstructured.NestedString(obj.Object, "spec", "chart", "spec", "chart")
	kind, ns, name := sourceRef(obj, "spec", "chart", "spec", "sourceRef")
	if name == "" {
		kind, ns, name = sourceRef(obj, "spec", "chartRef")
	}
	if name == "" {
		return skipMissingFields
	}
	*deps = append(*deps, objectKey{Kind: kind, Namespace: ns, Name: name})
	src := lookup(kind, ns, name)
	if src == nil {
		return skipNoSource
	}
	url, _, _ := unstructured.NestedString(src.Object, "spec", "url")
	srcRev, _, _ := unstructured.NestedString(src.Object, "status", "artifact", "revision")
	switch kind {
	case KindGitRepository.Name:
		st.Storage, st.Endpoint = model.StorageGit, joinEndpoint(url, gitRef(src), chart)
	case KindOCIRepository.Name:
		st.Storage, st.Endpoint = model.StorageOCI, joinEndpoint(url, ociRef(src), "")
	case KindHelmRepository.Name:
		if t, _, _ := unstructured.NestedString(src.Object, "spec", "type"); t != "oci" {
			return skipUnsupported // a Helm HTTP repository has no commit or digest to report
		}
		version, _, _ := unstructured.NestedString(obj.Object, "spec", "chart", "spec", "version")
		st.Storage, st.Endpoint = model.StorageOCI, joinEndpoint(strings.TrimRight(url, "/")+"/"+chart, firstOf(version, "latest"), "")
		srcRev = ""
	default:
		return skipUnsupported
	}
	digest, _, _ := unstructured.NestedString(obj.Object, "status", "lastAttemptedRevisionDigest")
	if digest == "" {
		if hist, _, _ := nestedSlice(obj.Object, "status", "history"); len(hist) > 0 {
			if h, ok := hist[0].(map[string]any); ok {
				digest, _ = h["ociDigest"].(string)
			}
		}
	}
	rev := firstOf(digest, srcRev)
	fluxState(obj, rev, rev, st)
	if v, _, _ := unstructured.NestedString(obj.Object, "status", "lastAttemptedRevision"); v != "" {
		st.Message = strings.TrimSpace(fmt.Sprintf("chart %s %s: %s", firstOf(chart, name), v, st.Message))
	}
	return ""
}

// applicationState reads an Argo CD Application: the endpoint of its
// (first) source, the synced revision, and sync, health and operation
// state.
func applicationState(obj *unstructured.Unstructured, st *State) skipReason {
	source, _, _ := nestedMap(obj.Object, "spec", "source")
	idx := 0
	if source == nil {
		sources, _, _ := nestedSlice(obj.Object, "spec", "sources")
		for i, s := range sources {
			m, ok := s.(map[string]any)
			if !ok {
				continue
			}
			if p, _ := m["path"].(string); p != "" || m["chart"] != nil {
				source, idx = m, i
				break
			}
		}
	}
	if source == nil {
		return skipMissingFields
	}
	repo, _ := source["repoURL"].(string)
	target, _ := source["targetRevision"].(string)
	path, _ := source["path"].(string)
	chart, _ := source["chart"].(string)
	if repo == "" {
		return skipMissingFields
	}
	st.Storage = model.StorageGit
	if chart != "" {
		if !strings.HasPrefix(repo, "oci://") {
			return skipUnsupported // a Helm HTTP repository: the revision is a chart version, not a commit
		}
		st.Storage, path = model.StorageOCI, chart
	}
	st.Endpoint = joinEndpoint(repo, firstOf(target, "HEAD"), path)

	rev, _, _ := unstructured.NestedString(obj.Object, "status", "sync", "revision")
	if revs, _, _ := unstructured.NestedStringSlice(obj.Object, "status", "sync", "revisions"); rev == "" && idx < len(revs) {
		rev = revs[idx]
	}
	st.Commit = rev
	sync, _, _ := unstructured.NestedString(obj.Object, "status", "sync", "status")
	health, _, _ := unstructured.NestedString(obj.Object, "status", "health", "status")
	healthMsg, _, _ := unstructured.NestedString(obj.Object, "status", "health", "message")
	phase, _, _ := unstructured.NestedString(obj.Object, "status", "operationState", "phase")
	opMsg, _, _ := unstructured.NestedString(obj.Object, "status", "operationState", "message")
	switch {
	case phase == "Failed" || phase == "Error":
		st.Status, st.Message = model.StatusFailure, opMsg
	case health == "Degraded":
		st.Status, st.Message = model.StatusFailure, firstOf(healthMsg, "health: Degraded")
	case sync == "Synced" && health == "Healthy" && phase != "Running":
		st.Status, st.Message = model.StatusSuccess, firstOf(opMsg, "Synced and Healthy")
	default:
		st.Status, st.Message = model.StatusInProgress, strings.TrimSpace(fmt.Sprintf("sync %s, health %s %s", firstOf(sync, "Unknown"), firstOf(health, "Unknown"), healthMsg))
	}
	finished, _, _ := unstructured.NestedString(obj.Object, "status", "operationState", "finishedAt")
	reconciled, _, _ := unstructured.NestedString(obj.Object, "status", "reconciledAt")
	st.ObservedAt = firstOf(finished, reconciled)
	return ""
}

type cond struct{ status, message, lastTransitionTime string }

// condition finds a status condition by type; nil when absent.
func condition(obj *unstructured.Unstructured, typ string) *cond {
	conds, _, _ := nestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if t, _ := m["type"].(string); t == typ {
			out := &cond{}
			out.status, _ = m["status"].(string)
			out.message, _ = m["message"].(string)
			out.lastTransitionTime, _ = m["lastTransitionTime"].(string)
			if _, err := time.Parse(time.RFC3339, out.lastTransitionTime); err != nil {
				out.lastTransitionTime = ""
			}
			return out
		}
	}
	return nil
}

// nestedSlice and nestedMap read a field without copying it (a copy
// panics on values that are not JSON, and costs for nothing here).
func nestedSlice(obj map[string]any, fields ...string) ([]any, bool, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(obj, fields...)
	s, isSlice := v.([]any)
	return s, ok && isSlice, err
}

func nestedMap(obj map[string]any, fields ...string) (map[string]any, bool, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(obj, fields...)
	m, isMap := v.(map[string]any)
	return m, ok && isMap, err
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
