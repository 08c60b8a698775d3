package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tidemark-dev/tidemark/internal/api"
)

// serveSecurity holds the authentication and TLS flags of serve.
type serveSecurity struct {
	tokensFile              string
	readToken, writeToken   string
	tokenReview             bool
	kubeconfig              string
	reviewRead, reviewWrite []string
	reviewAudiences         []string
	tlsCert, tlsKey         string
}

func (s *serveSecurity) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.tokensFile, "tokens-file", "", `static bearer tokens, one per line: "<token> <scope>[,<scope>] <name>" (scopes read, write; # comments)`)
	// The token flags have no environment default shown in --help: the
	// environment is read when the flag is empty, so no token is printed.
	f.StringVar(&s.readToken, "read-token", "", "a static token with the read scope (env TIDEMARK_READ_TOKEN)")
	f.StringVar(&s.writeToken, "write-token", "", "a static token with the write scope (env TIDEMARK_WRITE_TOKEN)")
	f.BoolVar(&s.tokenReview, "token-review", false, "accept Kubernetes service-account tokens, checked with the TokenReview API (in-cluster config, or --kubeconfig / KUBECONFIG)")
	f.StringVar(&s.kubeconfig, "kubeconfig", "", "kubeconfig for --token-review outside a cluster (default: in-cluster config, then KUBECONFIG or ~/.kube/config)")
	f.StringSliceVar(&s.reviewRead, "token-review-read", nil, "service accounts granted read, as <namespace>/<name> or <namespace>/* (comma-separated)")
	f.StringSliceVar(&s.reviewWrite, "token-review-write", nil, "service accounts granted write, as <namespace>/<name> or <namespace>/* (comma-separated)")
	f.StringSliceVar(&s.reviewAudiences, "token-review-audience", nil, "audiences service-account tokens must be issued for (default: the API server's)")
	f.StringVar(&s.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
	f.StringVar(&s.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
}

// authenticator builds the Authenticator the flags describe: static tokens
// first, then TokenReview. It returns nil, and logs a warning, when no
// credential is configured: the API is then open.
func (s *serveSecurity) authenticator(log *slog.Logger) (api.Authenticator, error) {
	var static api.StaticTokens
	if s.tokensFile != "" {
		if err := static.ReadTokensFile(s.tokensFile); err != nil {
			return nil, fmt.Errorf("--tokens-file: %w", err)
		}
	}
	for _, t := range []struct {
		flag, env, value string
		scope            api.Scope
	}{
		{"read-token", "TIDEMARK_READ_TOKEN", s.readToken, api.ScopeRead},
		{"write-token", "TIDEMARK_WRITE_TOKEN", s.writeToken, api.ScopeWrite},
	} {
		v := t.value
		if v == "" {
			v = os.Getenv(t.env)
		}
		if v == "" {
			continue
		}
		if err := static.Add(v, t.flag, t.scope); err != nil {
			return nil, fmt.Errorf("--%s (or %s): %w", t.flag, t.env, err)
		}
	}
	var chain api.Chain
	if static.Len() > 0 {
		chain = append(chain, &static)
	}
	if s.tokenReview {
		if len(s.reviewRead)+len(s.reviewWrite) == 0 {
			return nil, errors.New("--token-review: name the service accounts to grant with --token-review-read and/or --token-review-write")
		}
		cfg, err := tokenReviewConfig(s.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--token-review: %w", err)
		}
		tr, err := api.NewTokenReview(cfg, api.TokenReviewOptions{Read: s.reviewRead, Write: s.reviewWrite, Audiences: s.reviewAudiences})
		if err != nil {
			return nil, fmt.Errorf("--token-review: %w", err)
		}
		chain = append(chain, tr)
	} else if len(s.reviewRead)+len(s.reviewWrite) > 0 {
		return nil, errors.New("--token-review-read and --token-review-write need --token-review")
	}
	if len(chain) == 0 {
		log.Warn("no API token is configured: the API is open to anyone who can reach it; set --tokens-file, --read-token/--write-token or --token-review")
		return nil, nil
	}
	log.Info("API authentication", "staticTokens", static.Len(), "tokenReview", s.tokenReview,
		"tokenReviewRead", s.reviewRead, "tokenReviewWrite", s.reviewWrite)
	return chain, nil
}

// tokenReviewConfig is the in-cluster configuration, or a kubeconfig's.
func tokenReviewConfig(path string) (*rest.Config, error) {
	if path == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// tls reports whether serve listens with TLS; both files or neither.
func (s *serveSecurity) tls() (bool, error) {
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return false, errors.New("--tls-cert and --tls-key go together")
	}
	return s.tlsCert != "", nil
}

// listen serves srv, over TLS (1.2 at least) when --tls-cert is set. The
// certificate is read again when its file changes, so a renewed
// certificate (cert-manager, a mounted Secret) needs no restart.
func (s *serveSecurity) listen(srv *http.Server) error {
	on, err := s.tls()
	if err != nil || !on {
		if err != nil {
			return err
		}
		return srv.ListenAndServe()
	}
	if srv.TLSConfig, err = s.tlsConfig(); err != nil {
		return err
	}
	return srv.ListenAndServeTLS("", "")
}

// tlsConfig is the server TLS configuration of --tls-cert and --tls-key,
// shared by every listener of serve (the API, OTLP/gRPC).
func (s *serveSecurity) tlsConfig() (*tls.Config, error) {
	certs := &certReloader{cert: s.tlsCert, key: s.tlsKey}
	if _, err := certs.get(nil); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}, nil
}

// certReloader loads a key pair, and loads it again when the certificate
// file's modification time changes (checked at most every 10 seconds).
type certReloader struct {
	cert, key string

	mu      sync.Mutex
	pair    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.pair != nil && now.Sub(c.checked) < 10*time.Second {
		return c.pair, nil
	}
	c.checked = now
	fi, err := os.Stat(c.cert)
	if err != nil {
		if c.pair != nil {
			return c.pair, nil // keep serving the last good pair
		}
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	if c.pair != nil && fi.ModTime().Equal(c.modTime) {
		return c.pair, nil
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		if c.pair != nil {
			return c.pair, nil
		}
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	c.pair, c.modTime = &pair, fi.ModTime()
	return c.pair, nil
}
