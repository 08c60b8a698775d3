package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	// retryUnavailable is how long a request the hub answers 503 (its
	// store unavailable) is sent again, after the wait its Retry-After
	// asks for; 0 never retries.
	retryUnavailable time.Duration
	// notes receives what the client says while it waits to retry.
	notes io.Writer
}

func (c *client) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.server, "server", envOr("TIDEMARK_SERVER", "http://localhost:8080"), "hub URL (env TIDEMARK_SERVER)")
	cmd.Flags().StringVar(&c.token, "token", "", "bearer token (env TIDEMARK_TOKEN)")
	cmd.Flags().DurationVar(&c.timeout, "request-timeout", 30*time.Second, "timeout of each request")
	cmd.Flags().StringVar(&c.caFile, "ca-file", envOr("TIDEMARK_CA_FILE", ""), "PEM file of CA certificates to trust for an https --server (env TIDEMARK_CA_FILE)")
	cmd.Flags().BoolVar(&c.insecure, "insecure-skip-tls-verify", false, "do not verify the hub's TLS certificate (testing only)")
}

// note tells the user what the client is doing, when notes is set.
func (c *client) note(format string, args ...any) {
	if c.notes != nil {
		fmt.Fprintf(c.notes, format+"\n", args...)
	}
}

// retryFlag adds --retry-unavailable, for commands whose requests are safe
// to send again (reads, and pushes: they are all or nothing, and replays
// change nothing).
func (c *client) retryFlag(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&c.retryUnavailable, "retry-unavailable", time.Minute,
		"while the hub answers 503 (its store unavailable), retry for this long, waiting as its Retry-After says (0: fail at once)")
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
type problemError struct {
	p api.Problem
	// retryAfter is the answer's Retry-After, or 0.
	retryAfter time.Duration
}

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

// statusError is an error answer that is not a problem document, such as
// a proxy's.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// httpStatus is the status of an error answer, or 0 when err is not one.
func httpStatus(err error) int {
	var pe *problemError
	var se *statusError
	switch {
	case errors.As(err, &pe):
		return pe.p.Status
	case errors.As(err, &se):
		return se.status
	}
	return 0
}

// do sends body as JSON and decodes a JSON answer into out.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	return c.send(ctx, method, path, b, out)
}

// send sends a JSON body (nil for none) and decodes a JSON answer into
// out. An answer 503 with a problem is sent again for up to
// retryUnavailable, after the wait its Retry-After asks for.
func (c *client) send(ctx context.Context, method, path string, body []byte, out any) error {
	deadline := time.Now().Add(c.retryUnavailable)
	for {
		err := c.sendOnce(ctx, method, path, body, out)
		var pe *problemError
		if !errors.As(err, &pe) || pe.p.Status != http.StatusServiceUnavailable || c.retryUnavailable <= 0 {
			return err
		}
		wait := pe.retryAfter
		if wait <= 0 {
			wait = api.RetryAfter
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w (retried for %s: --retry-unavailable)", err, c.retryUnavailable)
		}
		c.note("the hub answered %d %s: retrying in %s", pe.p.Status, pe.p.Title, wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func (c *client) sendOnce(ctx context.Context, method, path string, body []byte, out any) error {
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
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
			pe := &problemError{p: p}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				pe.retryAfter = time.Duration(s) * time.Second
			}
			return pe
		}
		msg := strings.TrimSpace(string(data))
		if n := 300; len(msg) > n {
			for n > 0 && !utf8.RuneStart(msg[n]) {
				n--
			}
			msg = msg[:n] + "…"
		}
		return &statusError{resp.StatusCode, fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, msg)}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}
