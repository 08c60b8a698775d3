package prometheus

import (
	"fmt"
	"slices"
	"strings"

	pmodel "github.com/prometheus/common/model"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The labels of Flux's info series. The Flux Operator's flux_resource_info
// carries kind, name, exported_namespace, ready, reason, suspended,
// revision, url, ref, source_name and path; the kube-state-metrics
// configuration of Flux's monitoring guide carries customresource_kind,
// name, exported_namespace, ready, suspended, revision, source_name, url,
// and whatever labels it is extended with (branch, path). Where two names
// are listed, the first present is used.
var (
	labelKind       = []string{"kind", "customresource_kind"}
	labelNamespace  = []string{"exported_namespace", "namespace"}
	labelBranch     = []string{"ref", "branch"}
	labelName       = []string{"name"}
	labelReady      = []string{"ready"}
	labelReason     = []string{"reason"}
	labelSuspended  = []string{"suspended"}
	labelRevision   = []string{"revision"}
	labelURL        = []string{"url"}
	labelPath       = []string{"path"}
	labelSourceName = []string{"source_name"}
	// Not in Flux's series, honoured when a configuration adds them: the
	// source's kind and namespace when the Kustomization's sourceRef
	// names them.
	labelSourceKind      = []string{"source_kind"}
	labelSourceNamespace = []string{"source_namespace"}
)

// Kinds of Flux objects the poller reads.
const (
	kindKustomization = "Kustomization"
	kindGitRepository = "GitRepository"
	kindOCIRepository = "OCIRepository"
	kindBucket        = "Bucket"
)

// sourceKinds are the kinds a Kustomization's sourceRef can name, in the
// order preferred when the series do not say which one it names.
var sourceKinds = []string{kindGitRepository, kindOCIRepository, kindBucket}

// Reasons a Kustomization series makes no report.
const (
	ReasonMissingCluster  = "missing_cluster_label"
	ReasonMissingName     = "missing_name"
	ReasonSourceNotFound  = "source_not_found"
	ReasonInvalidEndpoint = "invalid_manifests_endpoint"
	ReasonInvalidRevision = "invalid_revision"
	ReasonInvalidReport   = "invalid_report"
)

// ReconcilerType is the type of the reconcilers the poller reports.
const ReconcilerType = "flux"

// object is one Flux object as its series describe it.
type object struct {
	cluster, kind, namespace, name string
	labels                         pmodel.Metric
}

func (o object) label(names []string) string {
	for _, n := range names {
		if v := strings.TrimSpace(string(o.labels[pmodel.LabelName(n)])); v != "" {
			return v
		}
	}
	return ""
}

type objectKey struct{ cluster, kind, namespace, name string }

// snapshot is what one poll read: every Flux object by key, in the order
// of the configured metrics (the first metric that has an object wins).
type snapshot struct {
	objects map[objectKey]object
	series  int
	// endpoints caches normalized endpoints: a fleet's Kustomizations
	// share a few repositories and paths.
	endpoints map[[4]string]endpointOrError
}

type endpointOrError struct {
	ep  model.Endpoint
	err error
}

func newSnapshot() *snapshot {
	return &snapshot{objects: map[objectKey]object{}, endpoints: map[[4]string]endpointOrError{}}
}

// endpoint is model.NewEndpoint, once per distinct input.
func (s *snapshot) endpoint(storage, repo, branch, path string) (model.Endpoint, error) {
	k := [4]string{storage, repo, branch, path}
	e, ok := s.endpoints[k]
	if !ok {
		e.ep, e.err = model.NewEndpoint(storage, repo, branch, path)
		s.endpoints[k] = e
	}
	return e.ep, e.err
}

// add records the series of one metric. Series without the cluster label
// are counted per reason in rejected when they are Kustomizations.
func (s *snapshot) add(vec pmodel.Vector, clusterLabel string, rejected map[string]int) {
	for _, sample := range vec {
		s.series++
		o := object{labels: sample.Metric}
		o.kind = o.label(labelKind)
		o.namespace = o.label(labelNamespace)
		o.name = o.label(labelName)
		o.cluster = strings.TrimSpace(string(sample.Metric[pmodel.LabelName(clusterLabel)]))
		if o.kind != kindKustomization && !slices.Contains(sourceKinds, o.kind) {
			continue
		}
		if o.cluster == "" || o.name == "" {
			if o.kind == kindKustomization {
				if o.cluster == "" {
					rejected[ReasonMissingCluster]++
				} else {
					rejected[ReasonMissingName]++
				}
			}
			continue
		}
		k := objectKey{o.cluster, o.kind, o.namespace, o.name}
		if _, seen := s.objects[k]; !seen {
			s.objects[k] = o
		}
	}
}

// kustomizations lists the Kustomization objects.
func (s *snapshot) kustomizations() []object {
	var out []object
	for k, o := range s.objects {
		if k.kind == kindKustomization {
			out = append(out, o)
		}
	}
	return out
}

// source finds the source a Kustomization applies: its source_kind when a
// series says it, else the first kind of sourceKinds with that name.
func (s *snapshot) source(k object) (object, bool) {
	name := k.label(labelSourceName)
	if name == "" {
		return object{}, false
	}
	ns := k.label(labelSourceNamespace)
	if ns == "" {
		ns = k.namespace
	}
	kinds := sourceKinds
	if kind := k.label(labelSourceKind); kind != "" {
		kinds = []string{kind}
	}
	for _, kind := range kinds {
		if o, ok := s.objects[objectKey{k.cluster, kind, ns, name}]; ok {
			return o, true
		}
	}
	return object{}, false
}

// report turns a Kustomization into a report: host from the cluster label,
// reconciler "namespace/name", the endpoint from its own url label or its
// source's URL and branch (ref) with its path, the commit from revision,
// the status from ready (True success, False failure, else in_progress)
// and the message from reason. Without a revision it only registers the
// reconciler. The reason is "" when a report was made.
func (s *snapshot) report(k object, source string) (model.Report, string, string) {
	rep := model.Report{
		Host:           k.cluster,
		Reconciler:     k.namespace + "/" + k.name,
		ReconcilerType: ReconcilerType,
		Source:         source,
	}
	repo, branch, storage := k.label(labelURL), k.label(labelBranch), model.StorageGit
	if repo == "" {
		src, ok := s.source(k)
		if !ok {
			return rep, ReasonSourceNotFound, fmt.Sprintf("Kustomization %s on %s: no GitRepository, OCIRepository or Bucket series named %q in its namespace carries the source's url",
				rep.Reconciler, rep.Host, k.label(labelSourceName))
		}
		repo = src.label(labelURL)
		if branch == "" {
			branch = src.label(labelBranch)
		}
		if src.kind == kindOCIRepository {
			storage = model.StorageOCI
		}
		if repo == "" {
			return rep, ReasonSourceNotFound, fmt.Sprintf("Kustomization %s on %s: its source %s %s/%s has no url label",
				rep.Reconciler, rep.Host, src.kind, src.namespace, src.name)
		}
	}
	ep, err := s.endpoint(storage, repo, branch, k.label(labelPath))
	if err != nil {
		return rep, ReasonInvalidEndpoint, fmt.Sprintf("Kustomization %s on %s: %v", rep.Reconciler, rep.Host, err)
	}
	rep.Endpoint = ep
	revision := k.label(labelRevision)
	if revision == "" {
		return checked(rep) // not applied yet: registered
	}
	sha, err := model.NormalizeRevision(revision)
	if err != nil {
		return rep, ReasonInvalidRevision, fmt.Sprintf("Kustomization %s on %s: %v", rep.Reconciler, rep.Host, err)
	}
	rep.Commit = sha
	switch strings.ToLower(k.label(labelReady)) {
	case "true":
		rep.Status = model.StatusSuccess
	case "false":
		rep.Status = model.StatusFailure
	default:
		rep.Status = model.StatusInProgress
	}
	rep.Message = k.label(labelReason)
	if strings.EqualFold(k.label(labelSuspended), "true") {
		rep.Message = strings.TrimSpace(rep.Message + " (suspended)")
	}
	return checked(rep)
}

// checked applies the model's rules for every report, so that one bad
// series is rejected alone rather than failing the poll's batch.
func checked(rep model.Report) (model.Report, string, string) {
	if err := rep.Check(); err != nil {
		return rep, ReasonInvalidReport, fmt.Sprintf("Kustomization %s on %s: %v", model.Quote(rep.Reconciler), model.Quote(rep.Host), err)
	}
	return rep, "", ""
}
