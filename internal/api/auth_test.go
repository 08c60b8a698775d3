package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/rest"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

const (
	readToken  = "read-token-0123456789abcdef"
	writeToken = "write-token-0123456789abcdef"
	bothToken  = "both-token-0123456789abcdef"
)

func staticTokens(t *testing.T) *api.StaticTokens {
	t.Helper()
	var s api.StaticTokens
	err := s.ReadTokens(strings.NewReader(`# tokens of the test hub
`+readToken+` read dashboards

`+writeToken+`  write   ci-ingest
`+bothToken+` read,write admin
`), "tokens")
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

// authRequest sends a request with an optional bearer token.
func authRequest(t *testing.T, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAuthScopes(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{Auth: staticTokens(t), Logger: log}).Handler())
	t.Cleanup(srv.Close)

	report := srv.URL + "/api/v1/reports/environment-state"
	push := srv.URL + "/api/v1/reconcilers"
	for _, c := range []struct {
		name, method, url, token, body string
		want                           int
	}{
		{"report without token", "GET", report, "", "", 401},
		{"report with unknown token", "GET", report, "not-a-configured-token", "", 401},
		{"report with write token", "GET", report, writeToken, "", 403},
		{"report with read token", "GET", report, readToken, "", 200},
		{"report with read,write token", "GET", report, bothToken, "", 200},
		{"gate with write token", "GET", srv.URL + "/api/v1/rollouts?target=x&version=1", writeToken, "", 403},
		{"push without token", "POST", push, "", reconcilerJSON, 401},
		{"push with read token", "POST", push, readToken, reconcilerJSON, 403},
		{"push with write token", "POST", push, writeToken, reconcilerJSON, 200},
		{"delete with read token", "DELETE", srv.URL + "/api/v1/hosts/h/reconcilers/r", readToken, "", 403},
		{"healthz without token", "GET", srv.URL + "/healthz", "", "", 200},
		{"readyz without token", "GET", srv.URL + "/readyz", "", "", 200},
		{"openapi without token", "GET", srv.URL + "/api/v1/openapi.yaml", "", "", 200},
	} {
		resp, body := authRequest(t, c.method, c.url, c.token, c.body)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, resp.StatusCode, c.want, body)
			continue
		}
		switch c.want {
		case 401:
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", c.name, got)
			}
			fallthrough
		case 403:
			var p api.Problem
			if resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal([]byte(body), &p) != nil || p.Status != c.want {
				t.Errorf("%s: not a problem: %s %s", c.name, resp.Header.Get("Content-Type"), body)
			}
		}
	}
	// Tokens never reach the logs; the names do.
	for _, tok := range []string{readToken, writeToken, bothToken, "not-a-configured-token"} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the log contains the token %q:\n%s", tok, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "subject=ci-ingest") {
		t.Errorf("the log does not name the subject:\n%s", logs.String())
	}
}

func TestTokensFileErrors(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"only-one-field-here", "tokens:1: want"},
		{"# c\nsome-long-token-abcdefgh admin name", `tokens:2: scope "admin"`},
		{"short read name", "shorter than 16"},
		{"same-token-abcdefghijk read a\nsame-token-abcdefghijk write b", `also configured as "a"`},
	} {
		var s api.StaticTokens
		err := s.ReadTokens(strings.NewReader(c.file), "tokens")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.file, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "abcdefgh") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

// fakeTokenReview serves the TokenReview API of a Kubernetes API server:
// the tokens map to usernames; other tokens are not authenticated.
func fakeTokenReview(t *testing.T, users map[string]string) (*rest.Config, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		calls.Add(1)
		var tr authnv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if user, ok := users[tr.Spec.Token]; ok {
			tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: user}}
		} else {
			tr.Status = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		tr.APIVersion, tr.Kind = "authentication.k8s.io/v1", "TokenReview"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&tr)
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}, &calls
}

func TestTokenReviewChain(t *testing.T) {
	cfg, calls := fakeTokenReview(t, map[string]string{
		"sa-reader": "system:serviceaccount:grafana:dashboards",
		"sa-ci":     "system:serviceaccount:ci:deployer",
		"sa-other":  "system:serviceaccount:ci:other",
		"user":      "alice@example.com",
	})
	tr, err := api.NewTokenReview(cfg, api.TokenReviewOptions{Read: []string{"grafana/dashboards", "ci/*"}, Write: []string{"ci/deployer"}})
	if err != nil {
		t.Fatal(err)
	}
	auth := api.Chain{staticTokens(t), tr}
	for _, c := range []struct {
		token   string
		scope   api.Scope
		subject string
		err     error
	}{
		{"", api.ScopeRead, "", api.ErrUnauthenticated},
		{"sa-reader", api.ScopeRead, "system:serviceaccount:grafana:dashboards", nil},
		{"sa-reader", api.ScopeWrite, "system:serviceaccount:grafana:dashboards", api.ErrForbidden},
		{"sa-ci", api.ScopeWrite, "system:serviceaccount:ci:deployer", nil},
		{"sa-other", api.ScopeRead, "system:serviceaccount:ci:other", nil},
		{"sa-other", api.ScopeWrite, "system:serviceaccount:ci:other", api.ErrForbidden},
		{"user", api.ScopeRead, "alice@example.com", api.ErrForbidden},
		{"nobody", api.ScopeRead, "", api.ErrUnauthenticated},
		{readToken, api.ScopeRead, "dashboards", nil},              // static first
		{writeToken, api.ScopeRead, "ci-ingest", api.ErrForbidden}, // known static token: no review
	} {
		req := httptest.NewRequest("GET", "/api/v1/reports/drift", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		subject, err := auth.Authenticate(req, c.scope)
		if err != c.err || (c.err != api.ErrUnauthenticated && subject != c.subject) {
			t.Errorf("%q %s: (%q, %v), want (%q, %v)", c.token, c.scope, subject, err, c.subject, c.err)
		}
	}
	// Successful reviews are cached: sa-reader, sa-ci, sa-other and user
	// were reviewed once each; "nobody" is not cached.
	if n := calls.Load(); n != 5 {
		t.Errorf("%d TokenReview calls, want 5", n)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer sa-reader")
	if _, err := auth.Authenticate(req, api.ScopeRead); err != nil || calls.Load() != 5 {
		t.Errorf("cached review: %v, %d calls", err, calls.Load())
	}

	// The API server away: an error, not an authentication.
	down := &rest.Config{Host: "http://127.0.0.1:1"}
	tr2, _ := api.NewTokenReview(down, api.TokenReviewOptions{Read: []string{"a/b"}})
	req.Header.Set("Authorization", "Bearer fresh-token")
	if _, err := tr2.Authenticate(req, api.ScopeRead); err == nil || err == api.ErrUnauthenticated || strings.Contains(err.Error(), "fresh-token") {
		t.Errorf("API server away: %v", err)
	}
	if _, err := api.NewTokenReview(cfg, api.TokenReviewOptions{Read: []string{"no-slash"}}); err == nil {
		t.Error("a service account without namespace was accepted")
	}
}
