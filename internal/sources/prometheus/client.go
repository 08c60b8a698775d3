package prometheus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// transport builds the HTTP transport of a source: its TLS settings and its
// credentials. cred, when not nil, replaces the credential that
// auth.azure describes (tests).
func transport(s SourceConfig, cred azcore.TokenCredential) (http.RoundTripper, error) {
	tlsCfg, err := clientTLS(s.TLS)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsCfg
	switch {
	case s.Auth.BearerTokenFile != "":
		return &fileToken{path: s.Auth.BearerTokenFile, next: base}, nil
	case s.Auth.Azure != nil:
		if cred == nil {
			if cred, err = azureCredential(*s.Auth.Azure); err != nil {
				return nil, fmt.Errorf("auth.azure: %w", err)
			}
		}
		return &entraToken{cred: cred, scope: s.Auth.Azure.Scope, next: base}, nil
	}
	return base, nil
}

func clientTLS(c TLSConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.caFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.caFile %s: no PEM certificate in it", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.certFile/keyFile: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// azureCredential is the Microsoft Entra credential auth.azure selects. It
// belongs to this source alone: nothing is read from or written to the
// process environment beyond what azidentity itself reads.
func azureCredential(a AzureAuth) (azcore.TokenCredential, error) {
	switch a.Credential {
	case "managedIdentity":
		var opts azidentity.ManagedIdentityCredentialOptions
		if a.ClientID != "" {
			opts.ID = azidentity.ClientID(a.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(&opts)
	case "workloadIdentity":
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientID: a.ClientID, TenantID: a.TenantID})
	default:
		return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{TenantID: a.TenantID})
	}
}

// fileToken sends the token in a file as a bearer token. The file is read
// at most once a minute, so that a rotated token is picked up.
type fileToken struct {
	path string
	next http.RoundTripper

	mu     sync.Mutex
	token  string
	readAt time.Time
}

func (f *fileToken) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	if f.token == "" || time.Since(f.readAt) > time.Minute {
		data, err := os.ReadFile(f.path)
		if err != nil {
			f.mu.Unlock()
			return nil, fmt.Errorf("auth.bearerTokenFile: %w", err)
		}
		f.token, f.readAt = strings.TrimSpace(string(data)), time.Now()
	}
	token := f.token
	f.mu.Unlock()
	if token == "" {
		return nil, errors.New("auth.bearerTokenFile: the file is empty")
	}
	return f.next.RoundTrip(withBearer(r, token))
}

// entraToken sends a Microsoft Entra access token, renewed five minutes
// before it expires.
type entraToken struct {
	cred  azcore.TokenCredential
	scope string
	next  http.RoundTripper

	mu    sync.Mutex
	token azcore.AccessToken
}

func (e *entraToken) RoundTrip(r *http.Request) (*http.Response, error) {
	token, err := e.get(r.Context())
	if err != nil {
		return nil, err
	}
	return e.next.RoundTrip(withBearer(r, token))
}

func (e *entraToken) get(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token.Token != "" && time.Until(e.token.ExpiresOn) > 5*time.Minute {
		return e.token.Token, nil
	}
	t, err := e.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{e.scope}})
	if err != nil {
		return "", fmt.Errorf("get a Microsoft Entra token for %s: %w", e.scope, err)
	}
	e.token = t
	return t.Token, nil
}

// withBearer returns a copy of r with the token (a RoundTripper must not
// change its request).
func withBearer(r *http.Request, token string) *http.Request {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}
