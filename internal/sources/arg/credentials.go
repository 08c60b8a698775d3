package arg

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// ServicePrincipal is an Entra ID application's client credentials, read
// from the Secret an AzureResourceGraph names in spec.secretRef. It is
// never logged: String hides the secret.
type ServicePrincipal struct {
	ClientID     string
	ClientSecret string
	// TenantID overrides the resource's spec.tenant when set.
	TenantID string
}

// String names the client without its secret.
func (sp ServicePrincipal) String() string { return "service principal " + sp.ClientID }

// Keys a service principal Secret may use: the hub's own, and the
// original system's environment-variable style.
var (
	clientIDKeys     = []string{"clientId", "AZURE_CLIENT_ID"}
	clientSecretKeys = []string{"clientSecret", "AZURE_CLIENT_SECRET"}
	tenantIDKeys     = []string{"tenantId", "AZURE_TENANT_ID"}
)

// ServicePrincipalFrom reads a service principal from a Secret's data. It
// names the missing keys, never the values.
func ServicePrincipalFrom(data map[string][]byte) (ServicePrincipal, error) {
	get := func(keys []string) string {
		for _, k := range keys {
			if v := strings.TrimSpace(string(data[k])); v != "" {
				return v
			}
		}
		return ""
	}
	sp := ServicePrincipal{ClientID: get(clientIDKeys), ClientSecret: get(clientSecretKeys), TenantID: get(tenantIDKeys)}
	var missing []string
	if sp.ClientID == "" {
		missing = append(missing, strings.Join(clientIDKeys, " or "))
	}
	if sp.ClientSecret == "" {
		missing = append(missing, strings.Join(clientSecretKeys, " or "))
	}
	if len(missing) > 0 {
		return ServicePrincipal{}, fmt.Errorf("the Secret lacks %s", strings.Join(missing, " and "))
	}
	return sp, nil
}

// SecretReader returns the service principal held by the Secret namespace/name.
type SecretReader func(ctx context.Context, namespace, name string) (ServicePrincipal, error)

// DirSecrets reads service principals from a folder holding one folder per
// Secret name, with one file per key (clientId, clientSecret, optional
// tenantId), as Kubernetes mounts a Secret volume. It serves hubs without
// Kubernetes (tidemark serve --arg-secrets-dir).
func DirSecrets(dir string) SecretReader {
	return func(_ context.Context, _, name string) (ServicePrincipal, error) {
		if dir == "" {
			return ServicePrincipal{}, errors.New("no folder of service principal Secrets is configured (tidemark serve --arg-secrets-dir)")
		}
		if name != filepath.Base(name) || name == "." || name == ".." {
			return ServicePrincipal{}, fmt.Errorf("secretRef %q is not a plain name", name)
		}
		data := map[string][]byte{}
		for _, keys := range [][]string{clientIDKeys, clientSecretKeys, tenantIDKeys} {
			for _, k := range keys {
				b, err := os.ReadFile(filepath.Join(dir, name, k))
				if err == nil {
					data[k] = b
				} else if !errors.Is(err, os.ErrNotExist) {
					return ServicePrincipal{}, fmt.Errorf("read Secret %s: %w", name, err)
				}
			}
		}
		sp, err := ServicePrincipalFrom(data)
		if err != nil {
			return ServicePrincipal{}, fmt.Errorf("secret %s (folder %s): %w", name, filepath.Join(dir, name), err)
		}
		return sp, nil
	}
}

// Credentials gives each poller its own Azure credential.
type Credentials interface {
	// Credential returns the credential of c. It is called before every
	// poll: an implementation returns the same credential (and its token
	// cache) while the configuration and its Secret are unchanged.
	Credential(ctx context.Context, c Config) (azcore.TokenCredential, error)
}

// AzureCredentials makes azidentity credentials from each configuration's
// own fields, never from the process environment: a workload identity
// (when the pod has a federated token file) or a managed identity for
// spec.managedIdentity, a client secret credential for spec.secretRef.
type AzureCredentials struct {
	// Secrets reads the Secret of spec.secretRef.
	Secrets SecretReader
	// FederatedTokenFile is the workload identity token file of the pod
	// (the AZURE_FEDERATED_TOKEN_FILE that the workload identity webhook
	// projects); empty uses the managed identity endpoint instead.
	FederatedTokenFile string
	// ClientOptions configure the identity clients (cloud, transport).
	ClientOptions policy.ClientOptions

	mu    sync.Mutex
	cache map[string]cachedCredential
}

type cachedCredential struct {
	fingerprint [32]byte
	cred        azcore.TokenCredential
}

// Credential implements Credentials.
func (a *AzureCredentials) Credential(ctx context.Context, c Config) (azcore.TokenCredential, error) {
	var fp [32]byte
	var build func() (azcore.TokenCredential, error)
	switch {
	case c.ManagedIdentity != "" && a.FederatedTokenFile != "":
		fp = sha256.Sum256([]byte("wi\x00" + c.Tenant + "\x00" + c.ManagedIdentity + "\x00" + a.FederatedTokenFile))
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
				ClientOptions: a.ClientOptions, ClientID: c.ManagedIdentity, TenantID: c.Tenant, TokenFilePath: a.FederatedTokenFile,
			})
		}
	case c.ManagedIdentity != "":
		fp = sha256.Sum256([]byte("mi\x00" + c.ManagedIdentity))
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
				ClientOptions: a.ClientOptions, ID: azidentity.ClientID(c.ManagedIdentity),
			})
		}
	case c.SecretRef != "":
		if a.Secrets == nil {
			return nil, errors.New("spec.secretRef: this hub reads no Secrets")
		}
		sp, err := a.Secrets(ctx, c.Namespace, c.SecretRef)
		if err != nil {
			return nil, fmt.Errorf("spec.secretRef: %w", err)
		}
		tenant := c.Tenant
		if sp.TenantID != "" {
			tenant = sp.TenantID
		}
		fp = sha256.Sum256([]byte("sp\x00" + tenant + "\x00" + sp.ClientID + "\x00" + sp.ClientSecret))
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential(tenant, sp.ClientID, sp.ClientSecret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: a.ClientOptions})
		}
	default:
		return nil, errors.New("give spec.managedIdentity or spec.secretRef")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cc, ok := a.cache[c.Key()]; ok && cc.fingerprint == fp {
		return cc.cred, nil
	}
	cred, err := build()
	if err != nil {
		return nil, err
	}
	if a.cache == nil {
		a.cache = map[string]cachedCredential{}
	}
	a.cache[c.Key()] = cachedCredential{fingerprint: fp, cred: cred}
	return cred, nil
}

// Forget drops the cached credential of a configuration that is no longer
// polled.
func (a *AzureCredentials) Forget(key string) {
	a.mu.Lock()
	delete(a.cache, key)
	a.mu.Unlock()
}
