// Package fluxconfig reads the Flux configurations of Azure Arc-enabled
// Kubernetes and AKS clusters, as Azure Resource Graph returns them, into
// reconciler reports: one per Kustomization of a configuration. It
// validates every field and never panics, whatever a row holds.
package fluxconfig

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// ReconcilerType is the type of the reconcilers an Azure Resource Graph
// poller reports: the Kustomizations of Azure Arc / AKS Flux
// configurations.
const ReconcilerType = "arc-flux"

// Host labels a poller sets on every host: where the cluster lives in Azure.
const (
	LabelResourceID    = "azure-resource-id"
	LabelSubscription  = "azure-subscription"
	LabelResourceGroup = "azure-resource-group"
	LabelClusterType   = "azure-cluster-type"
)

// Reasons a row is skipped.
const (
	SkipNotObject     = "not-an-object"
	SkipID            = "bad-id"
	SkipNoProperties  = "no-properties"
	SkipSource        = "unsupported-source"
	SkipEndpoint      = "bad-endpoint"
	SkipCommit        = "bad-commit"
	SkipNoKustomize   = "no-kustomizations"
	SkipDuplicateHost = "duplicate-host"
	SkipText          = "bad-text"
)

// maxMessage bounds a report's message: the failing objects' messages of a
// large configuration can run long.
const maxMessage = 8 << 10

// fluxConfiguration is one row of
// kubernetesconfigurationresources | where type == microsoft.kubernetesconfiguration/fluxconfigurations:
// an Azure Arc or AKS GitOps (Flux v2) configuration, as ARG returns it.
// Only the fields the hub uses are read; anything may be missing.
type fluxConfiguration struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Properties *fluxProperties `json:"properties"`
}

type fluxProperties struct {
	Namespace            string                    `json:"namespace"`
	SourceKind           string                    `json:"sourceKind"`
	GitRepository        *gitRepository            `json:"gitRepository"`
	OCIRepository        *ociRepository            `json:"ociRepository"`
	Bucket               *json.RawMessage          `json:"bucket"`
	AzureBlob            *json.RawMessage          `json:"azureBlob"`
	Kustomizations       map[string]*kustomization `json:"kustomizations"`
	Statuses             []objectStatus            `json:"statuses"`
	SourceSyncedCommitID string                    `json:"sourceSyncedCommitId"`
	SourceUpdatedAt      string                    `json:"sourceUpdatedAt"`
	StatusUpdatedAt      string                    `json:"statusUpdatedAt"`
	ComplianceState      string                    `json:"complianceState"`
	ErrorMessage         string                    `json:"errorMessage"`
}

type gitRepository struct {
	URL           string         `json:"url"`
	RepositoryRef *repositoryRef `json:"repositoryRef"`
}

type repositoryRef struct {
	Branch string `json:"branch"`
	Tag    string `json:"tag"`
	Semver string `json:"semver"`
	Commit string `json:"commit"`
}

type ociRepository struct {
	URL           string `json:"url"`
	RepositoryRef *struct {
		Tag    string `json:"tag"`
		Semver string `json:"semver"`
		Digest string `json:"digest"`
	} `json:"repositoryRef"`
}

type kustomization struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// objectStatus is the state of one object a configuration manages on the
// cluster (its source, its Kustomizations, the HelmReleases they apply...).
type objectStatus struct {
	Name            string `json:"name"`
	Namespace       string `json:"namespace"`
	Kind            string `json:"kind"`
	ComplianceState string `json:"complianceState"`
	AppliedBy       *struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"appliedBy"`
	StatusConditions []struct {
		LastTransitionTime string `json:"lastTransitionTime"`
		Message            string `json:"message"`
		Reason             string `json:"reason"`
		Status             string `json:"status"`
		Type               string `json:"type"`
	} `json:"statusConditions"`
}

// SkipError is why a row was skipped: Reason is one of the Skip* constants.
type SkipError struct {
	Reason string
	Detail string
}

func (e *SkipError) Error() string { return e.Reason + ": " + e.Detail }

func skip(reason, format string, args ...any) *SkipError {
	return &SkipError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Cluster is the Azure resource a Flux configuration belongs to.
type Cluster struct {
	ID                          string // the cluster's resource id, lower-cased
	Subscription, ResourceGroup string
	Type                        string // e.g. microsoft.kubernetes/connectedclusters
	Name                        string // lower-cased: the host name
}

const configProvider = "/providers/microsoft.kubernetesconfiguration/fluxconfigurations/"

// parseClusterID reads the cluster from a Flux configuration's resource id:
// /subscriptions/S/resourceGroups/G/providers/NS/TYPE/CLUSTER/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/NAME.
// Resource ids are case-insensitive: the cluster id is lower-cased.
func parseClusterID(id string) (Cluster, error) {
	low := strings.ToLower(strings.TrimSpace(id))
	i := strings.LastIndex(low, configProvider)
	if i < 0 || strings.ContainsAny(low, " \t\r\n") {
		return Cluster{}, fmt.Errorf("%q is not the resource id of a Flux configuration", trim(id))
	}
	clusterID := low[:i]
	parts := strings.Split(strings.TrimPrefix(clusterID, "/"), "/")
	// subscriptions S resourcegroups G providers NS TYPE NAME
	if len(parts) != 8 || parts[0] != "subscriptions" || parts[2] != "resourcegroups" || parts[4] != "providers" {
		return Cluster{}, fmt.Errorf("%q does not name a cluster as /subscriptions/<id>/resourceGroups/<group>/providers/<namespace>/<type>/<name>", trim(id))
	}
	for _, p := range parts {
		if p == "" {
			return Cluster{}, fmt.Errorf("%q has an empty segment", trim(id))
		}
	}
	return Cluster{ID: clusterID, Subscription: parts[1], ResourceGroup: parts[3], Type: parts[5] + "/" + parts[6], Name: parts[7]}, nil
}

// trim shortens a value quoted in an error message.
func trim(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// Mapped is what one row became.
type Mapped struct {
	// ID is the configuration's resource id, lower-cased; empty when the
	// row has none that parses.
	ID      string
	Cluster Cluster
	Reports []model.Report
}

// Map turns one Resource Graph row into reports, one per Kustomization
// of the configuration, or says why the row cannot be used. A
// configuration without a synced commit yet registers its reconcilers.
// It never panics, whatever the row holds.
func Map(raw []byte, source string) (Mapped, error) {
	var row fluxConfiguration
	if err := json.Unmarshal(raw, &row); err != nil {
		return Mapped{}, skip(SkipNotObject, "the row is not a Flux configuration object: %v", err)
	}
	m := Mapped{}
	c, reports, err := row.reports(source)
	if err == nil || c.ID != "" {
		m.ID = strings.ToLower(strings.TrimSpace(row.ID))
	}
	m.Cluster, m.Reports = c, reports
	return m, err
}

func (row *fluxConfiguration) reports(source string) (Cluster, []model.Report, error) {
	if !cleanText(row.ID) || !cleanText(row.Name) {
		return Cluster{}, nil, skip(SkipText, "the id or name holds invalid UTF-8 or control characters")
	}
	c, err := parseClusterID(row.ID)
	if err != nil {
		return Cluster{}, nil, skip(SkipID, "%v", err)
	}
	name := strings.TrimSpace(row.Name)
	if name == "" {
		name = row.ID[strings.LastIndex(row.ID, "/")+1:]
	}
	p := row.Properties
	if p == nil {
		return c, nil, skip(SkipNoProperties, "configuration %s has no properties", row.ID)
	}
	storage, repo, ref, err := p.source()
	if err != nil {
		return c, nil, err
	}
	if len(p.Kustomizations) == 0 {
		return c, nil, skip(SkipNoKustomize, "configuration %s has no kustomizations", row.ID)
	}
	var commit string
	if s := strings.TrimSpace(p.SourceSyncedCommitID); s != "" {
		if commit, err = model.NormalizeRevision(s); err != nil {
			return c, nil, skip(SkipCommit, "configuration %s: sourceSyncedCommitId: %v", row.ID, err)
		}
	}
	at := firstTime(p.StatusUpdatedAt, p.SourceUpdatedAt)
	labels := map[string]string{
		LabelResourceID:    c.ID,
		LabelSubscription:  c.Subscription,
		LabelResourceGroup: c.ResourceGroup,
		LabelClusterType:   c.Type,
	}
	keys := make([]string, 0, len(p.Kustomizations))
	for k := range p.Kustomizations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	reports := make([]model.Report, 0, len(keys))
	for _, k := range keys {
		kz := p.Kustomizations[k]
		if kz == nil {
			kz = &kustomization{}
		}
		if !cleanText(k) || k == "" {
			return c, nil, skip(SkipText, "configuration %s: a kustomization name is empty or holds invalid UTF-8 or control characters", row.ID)
		}
		ep, err := model.NewEndpoint(storage, repo, ref, kz.Path)
		if err != nil {
			return c, nil, skip(SkipEndpoint, "configuration %s, kustomization %s: %v", row.ID, k, err)
		}
		r := model.Report{
			Host:           c.Name,
			HostType:       model.HostCluster,
			HostLabels:     labels,
			Reconciler:     name + "/" + k,
			ReconcilerType: ReconcilerType,
			Endpoint:       ep,
			Source:         source,
		}
		if commit != "" {
			r.Commit = commit
			r.Status, r.Message = p.kustomizationState(name + "-" + k)
			r.Message = sanitize(r.Message)
			r.ObservedAt = at
		}
		reports = append(reports, r)
	}
	return c, reports, nil
}

// source returns the configuration's manifests source: storage type,
// repository and reference (branch, tag, semver or commit).
func (p *fluxProperties) source() (storage, repo, ref string, err error) {
	kind := strings.ToLower(strings.TrimSpace(p.SourceKind))
	switch {
	case (kind == "" || kind == "gitrepository") && p.GitRepository != nil:
		g := p.GitRepository
		if strings.TrimSpace(g.URL) == "" {
			return "", "", "", skip(SkipSource, "gitRepository.url is empty")
		}
		if r := g.RepositoryRef; r != nil {
			ref = firstNonEmpty(r.Branch, r.Tag, r.Semver, r.Commit)
		}
		return model.StorageGit, g.URL, ref, nil
	case (kind == "" || kind == "ocirepository") && p.OCIRepository != nil:
		o := p.OCIRepository
		if strings.TrimSpace(o.URL) == "" {
			return "", "", "", skip(SkipSource, "ociRepository.url is empty")
		}
		if r := o.RepositoryRef; r != nil {
			ref = firstNonEmpty(r.Tag, r.Semver, r.Digest)
		}
		return model.StorageOCI, o.URL, ref, nil
	case kind == "bucket" || kind == "azureblob" || p.Bucket != nil || p.AzureBlob != nil:
		return "", "", "", skip(SkipSource, "source kind %q: the hub compares Git and OCI endpoints only", firstNonEmpty(p.SourceKind, "Bucket"))
	}
	return "", "", "", skip(SkipSource, "no gitRepository or ociRepository (sourceKind %q)", p.SourceKind)
}

// kustomizationState is the status and message of the Kustomization object
// named name: its own compliance state and that of the objects it applied
// and of the source; the configuration's when the statuses say nothing
// about it. The message lists the failing objects' messages, else the
// Kustomization's own.
func (p *fluxProperties) kustomizationState(name string) (model.Status, string) {
	var own *objectStatus
	var failing []string
	related := 0
	for i := range p.Statuses {
		s := &p.Statuses[i]
		mine := strings.EqualFold(s.Kind, "Kustomization") && s.Name == name
		applied := s.AppliedBy != nil && s.AppliedBy.Name == name
		source := isSourceKind(s.Kind)
		if !mine && !applied && !source {
			continue
		}
		related++
		if mine {
			own = s
		}
		if complianceStatus(s.ComplianceState) == model.StatusFailure {
			failing = append(failing, s.Kind+"/"+s.Name+": "+s.message())
		}
	}
	switch {
	case len(failing) > 0:
		return model.StatusFailure, strings.Join(failing, "\n")
	case own != nil:
		return complianceStatus(own.ComplianceState), own.message()
	case related == 0 && p.ErrorMessage != "":
		return complianceStatus(p.ComplianceState), p.ErrorMessage
	}
	return complianceStatus(p.ComplianceState), ""
}

func isSourceKind(kind string) bool {
	switch strings.ToLower(kind) {
	case "gitrepository", "ocirepository", "bucket":
		return true
	}
	return false
}

// message is the object's most telling condition message: Ready's, else
// the first non-empty one.
func (s *objectStatus) message() string {
	msg := ""
	for _, c := range s.StatusConditions {
		if c.Type == "Ready" && c.Message != "" {
			return strings.TrimSpace(c.Message)
		}
		if msg == "" {
			msg = strings.TrimSpace(c.Message)
		}
	}
	if msg == "" {
		msg = s.ComplianceState
	}
	return msg
}

// complianceStatus maps a compliance state: Compliant is success,
// Non-Compliant failure, anything else (Pending, Suspended, Unknown) in
// progress.
func complianceStatus(state string) model.Status {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(state), "-", "")) {
	case "compliant":
		return model.StatusSuccess
	case "noncompliant":
		return model.StatusFailure
	}
	return model.StatusInProgress
}

// firstTime parses the first RFC 3339 time given; zero when none parses.
func firstTime(values ...string) time.Time {
	for _, v := range values {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v)); err == nil && t.Year() > 1 {
			return t.UTC()
		}
	}
	return time.Time{}
}

// cleanText reports whether s is valid UTF-8 without control characters.
func cleanText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// sanitize makes a message storable: valid UTF-8, no NUL, at most
// maxMessage bytes.
func sanitize(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if s := strings.TrimSpace(v); s != "" {
			return s
		}
	}
	return ""
}
