package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark-dev/tidemark/internal/api"
)

// client talks to a hub's HTTP API.
type client struct {
	server  string
	token   string
	timeout time.Duration
	http    *http.Client
	// TLS: a CA bundle to trust besides the system's, or no verification.
	caFile   string
	insecure bool
}

func (c *client) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.server, "server", envOr("TIDEMARK_SERVER", "http://localhost:8080"), "hub URL (env TIDEMARK_SERVER)")
	cmd.Flags().StringVar(&c.token, "token", "", "bearer token (env TIDEMARK_TOKEN)")
	cmd.Flags().DurationVar(&c.timeout, "request-timeout", 30*time.Second, "timeout of each request")
	cmd.Flags().StringVar(&c.caFile, "ca-file", envOr("TIDEMARK_CA_FILE", ""), "PEM file of CA certificates to trust for an https --server (env TIDEMARK_CA_FILE)")
	cmd.Flags().BoolVar(&c.insecure, "insecure-skip-tls-verify", false, "do not verify the hub's TLS certificate (testing only)")
}

// httpClient returns the client's HTTP client, built on first use with the
// TLS settings of the flags.
func (c *client) httpClient() (*http.Client, error) {
	if c.http != nil {
		return c.http, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.insecure} //nolint:gosec // only with --insecure-skip-tls-verify
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", c.caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	c.http = &http.Client{Timeout: c.timeout, Transport: tr}
	return c.http, nil
}

// problemError is an RFC 9457 problem returned by the hub.
type problemError struct{ p api.Problem }

func (e *problemError) Error() string {
	var b strings.Builder
	b.WriteString(e.p.Title)
	if e.p.Detail != "" {
		b.WriteString(": " + e.p.Detail)
	}
	for _, f := range e.p.Errors {
		fmt.Fprintf(&b, "\n    %s: %s", f.Field, f.Problem)
	}
	return b.String()
}

// do sends body as JSON and decodes a JSON answer into out.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("--server %q: %w", c.server, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	token := c.token
	if token == "" {
		token = envOr("TIDEMARK_TOKEN", "")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the hub at %s (set --server or TIDEMARK_SERVER): %w", c.server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var p api.Problem
		if json.Unmarshal(data, &p) == nil && p.Title != "" {
			return &problemError{p}
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}
