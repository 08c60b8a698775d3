package otlp

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The attributes a deployment log record carries. Each is read from the
// record's attributes, else from its resource's: the record's override.
// The names follow the OpenTelemetry semantic conventions where they have
// one (host, deployment, vcs); the tidemark.* ones have no convention.
const (
	// AttrHostName names the host; AttrClusterName when it is absent.
	AttrHostName    = "host.name"
	AttrClusterName = "k8s.cluster.name"
	// AttrDeploymentName is the reconciler's name, such as flux-system/apps.
	AttrDeploymentName = "deployment.name"
	// AttrDeploymentStatus is succeeded, failed or in_progress (success
	// and failure too).
	AttrDeploymentStatus = "deployment.status"
	// AttrEnvironment is informational: a value that differs from the
	// environment of the targets the manifests endpoint serves is a
	// warning, not a rejection.
	AttrEnvironment = "deployment.environment.name"
	// AttrRevision is the GitOps revision in any spelling the hub
	// accepts (main@sha1:<sha>, <sha>, <tag>@sha256:<digest>).
	AttrRevision = "vcs.ref.head.revision"
	// AttrRepositoryURL, AttrBranch and AttrManifestsPath are the
	// manifests endpoint in three parts; AttrManifestsEndpoint is the
	// joined form (repository/branch/path) when the parts are unknown.
	AttrRepositoryURL     = "vcs.repository.url.full"
	AttrBranch            = "vcs.ref.head.name"
	AttrManifestsPath     = "tidemark.manifests.path"
	AttrManifestsEndpoint = "tidemark.manifests.endpoint"
	// AttrReconcilerType is flux, argocd, arc, agent...
	AttrReconcilerType = "tidemark.reconciler.type"
)

// Reasons a log record makes no report: the values of the reason label of
// the rejection metric, and the keys of the partial_success message.
const (
	ReasonMissingHost       = "missing_host"
	ReasonMissingName       = "missing_deployment_name"
	ReasonMissingType       = "missing_reconciler_type"
	ReasonMissingEndpoint   = "missing_manifests_endpoint"
	ReasonInvalidEndpoint   = "invalid_manifests_endpoint"
	ReasonMissingStatus     = "missing_status"
	ReasonInvalidStatus     = "invalid_status"
	ReasonMissingRevision   = "missing_revision"
	ReasonInvalidRevision   = "invalid_revision"
	ReasonInvalidText       = "invalid_text"
	ReasonInvalidReport     = "invalid_report"
	ReasonEnvironmentDiffer = "environment_mismatch"
)

// Rejection says why one log record makes no report.
type Rejection struct {
	Reason string // one of the Reason constants
	Detail string // what is wrong and how to fix it
}

// Record is what one deployment log record says.
type Record struct {
	Report model.Report
	// Environment is deployment.environment.name, or "".
	Environment string
}

// attrs reads an attribute from a log record, else from its resource.
type attrs struct{ record, resource pcommon.Map }

func (a attrs) get(key string) string {
	if v, ok := a.record.Get(key); ok {
		if s := strings.TrimSpace(v.AsString()); s != "" {
			return s
		}
	}
	if v, ok := a.resource.Get(key); ok {
		return strings.TrimSpace(v.AsString())
	}
	return ""
}

// MapRecord turns one log record and its resource's attributes into a
// report, by the attribute contract above, or says why it cannot. A
// record without revision and status registers its reconciler
// (model.Report.Registered).
func MapRecord(resource pcommon.Map, lr plog.LogRecord) (Record, *Rejection) {
	var m mapper
	return m.mapRecord(resource, lr)
}

// mapper maps the records of one export, normalizing each distinct
// manifests endpoint once: a fleet's records share a few. The zero value
// is ready to use.
type mapper struct {
	endpoints map[[4]string]endpointResult
}

type endpointResult struct {
	ep  model.Endpoint
	rej *Rejection
}

func (m *mapper) mapRecord(resource pcommon.Map, lr plog.LogRecord) (Record, *Rejection) {
	a := attrs{record: lr.Attributes(), resource: resource}
	reject := func(reason, format string, args ...any) (Record, *Rejection) {
		return Record{}, &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	host := a.get(AttrHostName)
	if host == "" {
		host = a.get(AttrClusterName)
	}
	rep := model.Report{
		Host:           host,
		Reconciler:     a.get(AttrDeploymentName),
		ReconcilerType: strings.ToLower(a.get(AttrReconcilerType)),
		Message:        strings.TrimRight(lr.Body().AsString(), "\r\n"),
		ObservedAt:     recordTime(lr),
		Source:         SourceName,
	}
	status, revision, env := a.get(AttrDeploymentStatus), a.get(AttrRevision), a.get(AttrEnvironment)
	repo, branch, path, joined := a.get(AttrRepositoryURL), a.get(AttrBranch), a.get(AttrManifestsPath), a.get(AttrManifestsEndpoint)
	for _, f := range [...]struct{ name, value string }{
		{AttrHostName, rep.Host}, {AttrDeploymentName, rep.Reconciler}, {AttrReconcilerType, rep.ReconcilerType}, {"the body", rep.Message},
		{AttrDeploymentStatus, status}, {AttrRevision, revision}, {AttrEnvironment, env},
		{AttrRepositoryURL, repo}, {AttrBranch, branch}, {AttrManifestsPath, path}, {AttrManifestsEndpoint, joined},
	} {
		if p := model.TextProblem(f.value); p != "" {
			return reject(ReasonInvalidText, "%s %s", f.name, p)
		}
	}
	switch {
	case rep.Host == "":
		return reject(ReasonMissingHost, "%s (or %s) is required: the host (cluster or VM) the reconciler runs on", AttrHostName, AttrClusterName)
	case rep.Reconciler == "":
		return reject(ReasonMissingName, "%s is required: the reconciler's name, such as flux-system/apps", AttrDeploymentName)
	case rep.ReconcilerType == "":
		return reject(ReasonMissingType, "%s is required: the reconciler's kind, such as flux or argocd", AttrReconcilerType)
	}
	ep, rej := m.endpoint(repo, branch, path, joined)
	if rej != nil {
		return Record{}, rej
	}
	rep.Endpoint = ep

	switch {
	case revision == "" && status == "":
		rep.Message = "" // a registration: nothing reported yet
		return checked(rep, env)
	case revision == "":
		return reject(ReasonMissingRevision, "%s is required with %s: the GitOps revision the reconciler applied", AttrRevision, AttrDeploymentStatus)
	case status == "":
		return reject(ReasonMissingStatus, "%s is required with %s: succeeded, failed or in_progress", AttrDeploymentStatus, AttrRevision)
	}
	sha, err := model.NormalizeRevision(revision)
	if err != nil {
		return reject(ReasonInvalidRevision, "%s: %v", AttrRevision, err)
	}
	st, err := ParseStatus(status)
	if err != nil {
		return reject(ReasonInvalidStatus, "%s: %v", AttrDeploymentStatus, err)
	}
	rep.Commit, rep.Status = sha, st
	return checked(rep, env)
}

// checked applies the model's rules for every report (names printable
// and in their stored form, a long message cut), so that one bad record
// is rejected alone rather than failing the batch it came in.
func checked(rep model.Report, env string) (Record, *Rejection) {
	if err := rep.Check(); err != nil {
		return Record{}, &Rejection{Reason: ReasonInvalidReport, Detail: err.Error()}
	}
	return Record{Report: rep, Environment: model.NormalizeName(env)}, nil
}

// endpoint reads the manifests endpoint: the three parts when the
// repository is given, else the joined form.
func (m *mapper) endpoint(repo, branch, path, joined string) (model.Endpoint, *Rejection) {
	key := [4]string{repo, branch, path, joined}
	if r, ok := m.endpoints[key]; ok {
		return r.ep, r.rej
	}
	var r endpointResult
	var err error
	switch {
	case repo != "":
		if r.ep, err = model.NewEndpoint(storageOf(repo), repo, branch, path); err != nil {
			r.rej = &Rejection{Reason: ReasonInvalidEndpoint, Detail: fmt.Sprintf("%s, %s, %s: %v", AttrRepositoryURL, AttrBranch, AttrManifestsPath, err)}
		}
	case joined != "":
		if r.ep, err = model.ParseEndpoint(storageOf(joined), joined); err != nil {
			r.rej = &Rejection{Reason: ReasonInvalidEndpoint, Detail: fmt.Sprintf("%s: %v", AttrManifestsEndpoint, err)}
		}
	default:
		r.rej = &Rejection{Reason: ReasonMissingEndpoint, Detail: fmt.Sprintf(
			"the manifests endpoint is required: %s with %s and %s, or %s (repository/branch/path)",
			AttrRepositoryURL, AttrBranch, AttrManifestsPath, AttrManifestsEndpoint)}
	}
	if m.endpoints == nil {
		m.endpoints = map[[4]string]endpointResult{}
	}
	m.endpoints[key] = r
	return r.ep, r.rej
}

// storageOf is oci for oci:// repositories, else git.
func storageOf(repo string) string {
	if u, err := url.Parse(repo); err == nil && strings.EqualFold(u.Scheme, "oci") {
		return model.StorageOCI
	}
	return model.StorageGit
}

// ParseStatus reads deployment.status: the semantic conventions' succeeded
// and failed, or any status model.ParseStatus accepts.
func ParseStatus(s string) (model.Status, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "succeeded":
		return model.StatusSuccess, nil
	case "failed":
		return model.StatusFailure, nil
	}
	st, err := model.ParseStatus(s)
	if err != nil {
		return "", fmt.Errorf("%q is not one of succeeded, failed, in_progress (or success, failure)", s)
	}
	return st, nil
}

// recordTime is when the reconciler reached the reported state: the
// record's timestamp, else when it was observed, else zero ("now").
func recordTime(lr plog.LogRecord) time.Time {
	for _, ts := range []pcommon.Timestamp{lr.Timestamp(), lr.ObservedTimestamp()} {
		if ts != 0 {
			return ts.AsTime().UTC()
		}
	}
	return time.Time{}
}
