package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
)

// Hub is the hub's HTTP API, as the agent uses it with a write token.
type Hub struct {
	// URL is the hub's base URL, such as https://tidemark.example.com.
	URL string
	// Token is the bearer token (write scope).
	Token string
	// HTTP sends the requests (TLS settings, timeout).
	HTTP *http.Client
}

// HubError is an answer of the hub that is not a success.
type HubError struct {
	Status int
	// RetryAfter is the hub's Retry-After, zero when it gave none.
	RetryAfter time.Duration
	Detail     string
}

func (e *HubError) Error() string {
	return fmt.Sprintf("hub answered %d: %s", e.Status, e.Detail)
}

// retryable reports whether a failed request may succeed later as it is:
// the hub was unreachable, overloaded or its store down. Invalid input
// (4xx but 408/429) never will.
func retryable(err error) bool {
	var he *HubError
	if !errors.As(err, &he) {
		return true // the network: connection refused, timeouts
	}
	return he.Status >= 500 || he.Status == http.StatusTooManyRequests || he.Status == http.StatusRequestTimeout ||
		he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden // a token being rotated
}

// Push sends Reconciler documents as the source's, in one request.
func (h *Hub) Push(ctx context.Context, source string, docs []v1alpha1.Reconciler) error {
	list := v1alpha1.ReconcilerList{Items: docs}
	list.APIVersion, list.Kind = v1alpha1.GroupVersion.String(), "ReconcilerList"
	return h.do(ctx, http.MethodPost, "/api/v1/reconcilers?source="+url.QueryEscape(source), list)
}

// Retire retires a reconciler whose object was deleted. A reconciler the
// hub does not know (never reported, or retired already) is no error.
func (h *Hub) Retire(ctx context.Context, host, name string) error {
	err := h.do(ctx, http.MethodDelete, "/api/v1/hosts/"+url.PathEscape(host)+"/reconcilers/"+url.PathEscape(name), nil)
	var he *HubError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// RetireMissing retires the source's reconcilers not in present.
func (h *Hub) RetireMissing(ctx context.Context, source string, present []model.ReconcilerKey) error {
	type key struct {
		Host string `json:"host"`
		Name string `json:"name"`
	}
	body := struct {
		Source  string `json:"source"`
		Present []key  `json:"present"`
	}{Source: source, Present: make([]key, len(present))}
	for i, k := range present {
		body.Present[i] = key{k.Host, k.Name}
	}
	return h.do(ctx, http.MethodPost, "/api/v1/reconcilers/retire-missing", body)
}

func (h *Hub) do(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(h.URL, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := h.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 300 {
		return nil
	}
	he := &HubError{Status: resp.StatusCode, Detail: strings.TrimSpace(string(data))}
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Field, Problem string
		} `json:"errors"`
	}
	if json.Unmarshal(data, &p) == nil && p.Title != "" {
		he.Detail = p.Title + ": " + p.Detail
		for _, f := range p.Errors {
			he.Detail += "; " + f.Field + ": " + f.Problem
		}
	}
	if len(he.Detail) > 2000 {
		he.Detail = he.Detail[:2000] + "..."
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && secs >= 0 {
			he.RetryAfter = time.Duration(min(secs, 3600)) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			he.RetryAfter = max(0, min(time.Until(t), time.Hour))
		}
	}
	return he
}
