package prometheus

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The Flux series the poller reads by default: the Flux Operator's, and the
// one the kube-state-metrics custom-resource-state configuration of Flux's
// monitoring guide defines. Where a cluster exports both, the first wins.
const (
	MetricFluxResourceInfo = "flux_resource_info"
	MetricGotkResourceInfo = "gotk_resource_info"
)

// Defaults of a SourceConfig.
const (
	DefaultInterval     = time.Minute
	DefaultTimeout      = 30 * time.Second
	DefaultClusterLabel = "cluster"
	DefaultRetireAfter  = 10 * time.Minute
	DefaultResync       = 30 * time.Minute
	// DefaultAzureScope is the token scope of Azure Monitor managed
	// Prometheus query endpoints.
	DefaultAzureScope = "https://prometheus.monitor.azure.com/.default"
	// MinInterval is the shortest poll interval accepted.
	MinInterval = time.Second
)

// Config is the file --prometheus-config names: the Prometheus-compatible
// query APIs to poll.
type Config struct {
	Sources []SourceConfig `json:"sources"`
}

// SourceConfig is one Prometheus-compatible query API (Prometheus, Thanos,
// Mimir, Azure Monitor managed Prometheus...).
type SourceConfig struct {
	// Name identifies the source: its reports carry the source
	// "prometheus/<name>", and it retires only reconcilers it reported.
	Name string `json:"name"`
	// URL is the API's base URL; /api/v1/query is appended.
	URL string `json:"url"`
	// Interval between polls (DefaultInterval); failed polls back off up
	// to 16 intervals.
	Interval metav1.Duration `json:"interval,omitempty"`
	// Timeout bounds one poll's queries (DefaultTimeout).
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// ClusterLabel is the series label that names the host, such as an
	// external label every cluster's Prometheus or agent adds
	// (DefaultClusterLabel).
	ClusterLabel string `json:"clusterLabel,omitempty"`
	// Metrics are the info metrics to query, in order of preference
	// (MetricFluxResourceInfo, MetricGotkResourceInfo).
	Metrics []string `json:"metrics,omitempty"`
	// Selector adds label matchers to every query, such as
	// cluster=~"prod-.*".
	Selector string `json:"selector,omitempty"`
	// RetireAfter is how long a reconciler's series may be missing before
	// the reconciler is retired (DefaultRetireAfter).
	RetireAfter metav1.Duration `json:"retireAfter,omitempty"`
	// Resync is how often reports that did not change are sent again, so
	// that their hosts do not turn stale (DefaultResync).
	Resync metav1.Duration `json:"resync,omitempty"`
	Auth   AuthConfig      `json:"auth,omitempty"`
	TLS    TLSConfig       `json:"tls,omitempty"`
}

// AuthConfig is how the poller authenticates: a bearer token from a file,
// or a Microsoft Entra token (Azure Monitor managed Prometheus); neither
// sends no credentials.
type AuthConfig struct {
	// BearerTokenFile holds a token, read again at every poll (so a
	// rotated token needs no restart).
	BearerTokenFile string `json:"bearerTokenFile,omitempty"`
	// Azure gets tokens through azidentity.
	Azure *AzureAuth `json:"azure,omitempty"`
}

// AzureAuth selects the Microsoft Entra credential.
type AzureAuth struct {
	// Credential is "default" (azidentity's DefaultAzureCredential: the
	// environment, workload identity, managed identity, Azure CLI),
	// "managedIdentity" or "workloadIdentity".
	Credential string `json:"credential,omitempty"`
	// ClientID is a user-assigned managed identity's or a workload
	// identity's client id; empty for the system-assigned identity or
	// the environment's.
	ClientID string `json:"clientID,omitempty"`
	// TenantID, for workload identity and the default credential.
	TenantID string `json:"tenantID,omitempty"`
	// Scope of the token (DefaultAzureScope).
	Scope string `json:"scope,omitempty"`
}

// TLSConfig is how the poller trusts the API and presents itself.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs to trust besides the system's.
	CAFile string `json:"caFile,omitempty"`
	// CertFile and KeyFile are a client certificate (mutual TLS).
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// ServerName overrides the name the certificate is checked against.
	ServerName string `json:"serverName,omitempty"`
	// InsecureSkipVerify trusts any certificate: for tests only.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// LoadConfig reads and validates a configuration file. Unknown fields are
// errors, so that a misspelt setting does not go unnoticed.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(data, path)
}

// ParseConfig reads and validates a configuration; source names the file
// in errors.
func ParseConfig(data []byte, source string) (Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", source, err)
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", source, err)
	}
	return c, nil
}

// validate checks every source and fills in the defaults.
func (c *Config) validate() error {
	var v model.ValidationError
	if len(c.Sources) == 0 {
		v.Add("sources", "is empty: list at least one Prometheus-compatible query API")
	}
	names := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		f := func(name string) string { return fmt.Sprintf("sources[%d].%s", i, name) }
		s.Name = strings.TrimSpace(s.Name)
		v.Required(f("name"), s.Name)
		if names[s.Name] {
			v.Add(f("name"), "%q is used twice: each source needs its own name", s.Name)
		}
		names[s.Name] = true
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Add(f("url"), "%q is not an http(s) URL such as https://prometheus.example.com", s.URL)
		}
		durations := []struct {
			field string
			d     *metav1.Duration
			def   time.Duration
		}{
			{"interval", &s.Interval, DefaultInterval},
			{"timeout", &s.Timeout, DefaultTimeout},
			{"retireAfter", &s.RetireAfter, DefaultRetireAfter},
			{"resync", &s.Resync, DefaultResync},
		}
		for _, d := range durations {
			switch {
			case d.d.Duration == 0:
				d.d.Duration = d.def
			case d.d.Duration < MinInterval:
				v.Add(f(d.field), "%s is shorter than the minimum %s", d.d.Duration, MinInterval)
			}
		}
		if s.ClusterLabel == "" {
			s.ClusterLabel = DefaultClusterLabel
		} else if !validLabelName(s.ClusterLabel) {
			v.Add(f("clusterLabel"), "%q is not a Prometheus label name", s.ClusterLabel)
		}
		if len(s.Metrics) == 0 {
			s.Metrics = []string{MetricFluxResourceInfo, MetricGotkResourceInfo}
		}
		for j, m := range s.Metrics {
			if !validLabelName(m) {
				v.Add(f(fmt.Sprintf("metrics[%d]", j)), "%q is not a Prometheus metric name", m)
			}
		}
		if strings.ContainsAny(s.Selector, "{}") {
			v.Add(f("selector"), "give the label matchers without braces, such as cluster=~\"prod-.*\"")
		}
		if a := s.Auth.Azure; a != nil {
			if s.Auth.BearerTokenFile != "" {
				v.Add(f("auth"), "give either bearerTokenFile or azure, not both")
			}
			switch a.Credential {
			case "":
				a.Credential = "default"
			case "default", "managedIdentity", "workloadIdentity":
			default:
				v.Add(f("auth.azure.credential"), "%q is not one of default, managedIdentity, workloadIdentity", a.Credential)
			}
			if a.Scope == "" {
				a.Scope = DefaultAzureScope
			}
		}
		if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
			v.Add(f("tls.certFile"), "certFile and keyFile go together")
		}
	}
	return v.Err()
}

// validLabelName reports whether s is a Prometheus label (or metric) name
// made of the classic characters, so that it can be written into a query.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r == ':' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}
