package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
	"github.com/tidemark-dev/tidemark/internal/web"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

const (
	readToken  = "read-token-0123456789abcdef"
	writeToken = "write-token-0123456789abcdef"
)

// shopEndpoint is smallFleet's manifests endpoint of an environment and
// target.
func shopEndpoint(t *testing.T, env, target string) model.Endpoint {
	t.Helper()
	e, err := model.NewEndpoint("git", "https://github.com/acme/shop-gitops", env, target)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// smallFleet stores one workload in dev and prod: dev's two hosts on
// 1.1.0, prod's three on 1.0.0 with one failing.
func smallFleet(t *testing.T, st *store.Store) {
	t.Helper()
	ing := ingest.New(st)
	ep := func(env, target string) model.Endpoint { return shopEndpoint(t, env, target) }
	sha := func(p string) string { return p + strings.Repeat("0", 40-len(p)) }
	now := time.Now().Add(-time.Hour)
	for _, d := range []model.Descriptor{
		{Workspace: "acme", Application: "shop", Workload: "api", Environment: "dev", Target: "eu", Manifests: ep("dev", "eu"),
			Version: "1.1.0", Commit: sha("d110"), BuildCommit: sha("b110"), Source: model.WorkloadSource{Repo: "https://github.com/acme/api"}},
		{Workspace: "acme", Application: "shop", Workload: "api", Environment: "prod", Target: "eu", Manifests: ep("prod", "eu"),
			Version: "1.0.0", Commit: sha("e100"), BuildCommit: sha("b100"), Source: model.WorkloadSource{Repo: "https://github.com/acme/api"}},
	} {
		if _, err := ing.ApplyDescriptor(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []model.Report{
		{Host: "dev-1", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep("dev", "eu"), Commit: sha("d110"), Status: model.StatusSuccess, ObservedAt: now},
		{Host: "dev-2", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep("dev", "eu"), Commit: sha("d110"), Status: model.StatusSuccess, ObservedAt: now},
		{Host: "prod-1", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep("prod", "eu"), Commit: sha("e100"), Status: model.StatusSuccess, ObservedAt: now},
		{Host: "prod-2", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep("prod", "eu"), Commit: sha("e100"), Status: model.StatusSuccess, ObservedAt: now},
		{Host: "prod-3", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep("prod", "eu"), Commit: sha("e100"), Status: model.StatusFailure, Message: "=cmd|' /C calc'!A0", ObservedAt: now},
	} {
		if _, err := ing.ApplyReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
}

func newUI(t *testing.T, st *store.Store, auth api.Authenticator) *httptest.Server {
	t.Helper()
	ui, err := web.New(reports.New(st), web.Options{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	apiHandler := api.New(st, ingest.New(st), api.Options{Auth: auth}).Handler()
	srv := httptest.NewServer(web.Combine(apiHandler, ui.Handler()))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestPagesAndHeaders(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	smallFleet(t, st)
	srv := newUI(t, st, nil)
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/", 200, "Fleet overview"},
		{"/overview/headline", 200, `href="/hosts?status=failure"`},
		{"/environments?environment=prod", 200, "prod"},
		{"/hosts?status=failure", 200, "prod-3"},
		{"/hosts/prod-3", 200, "Deployment history"},
		{"/history?workload=api", 200, "Timeline"},
		{"/discrepancies", 200, "differs"},
		{"/drift", 200, "Drift"},
		{"/dora", 200, "DORA"},
		// The time range says what it bounds.
		{"/environments", 200, "Changed since <input"},
		{"/history", 200, "Assigned since <input"},
		// History's status picker: the assignments with a host in it.
		{"/history?status=not_reported", 200, `<option value="not_reported" selected>`},
		{"/history?status=failure", 200, `title="Assignments with at least one host in this status">A host <select name="status">`},
		{"/dora", 200, "Assigned until <input"},
		{"/compare?from=dev&to=prod", 200, "1 workload differs"},
		{"/compare?from=dev&to=prod", 200, `href="/hosts?application=shop&amp;environment=prod&amp;target=eu&amp;version=1.0.0&amp;workload=api&amp;workspace=acme"`},
		{"/compare?from=dev&to=prod", 200, "https://github.com/acme/api/compare/b100000000000000000000000000000000000000...b110000000000000000000000000000000000000"},
		{"/search?q=d110000", 200, "scheduled now"},
		{"/search?q=1.0.0", 200, "prod"},
		{"/rollout?target=eu&environment=prod&version=1.0.0", 200, "Failing: 1 host failed."},
		{"/rollout?target=eu&version=1.0.0", 400, "Choose one"},
		{"/rollout?target=nowhere&version=1", 404, "no deployment target matches"},
		{"/rollout", 200, "Show the rollout"},
		{"/environments?at=" + url.QueryEscape(time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339)), 200, "Time travel"},
		{"/hosts?status=done", 400, "status: use success, failure or in_progress"},
		{"/environments?since=yesterday", 400, "is not a time"},
		{"/environments?at=2999-01-01", 400, "is in the future"},
		{"/hosts?cursor=bogus", 400, "Start again from the first page"},
		{"/hosts/nobody", 404, "no host is named"},
		{"/nothing-here", 404, "There is no page at /nothing-here"},
		{"/drift?kind=weird", 400, "kind"},
		{"/hosts?format=xml", 400, "use csv or json"},
	} {
		resp, body := get(t, http.DefaultClient, srv.URL+c.path)
		if resp.StatusCode != c.status || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d, want %d with %q:\n%.600s", c.path, resp.StatusCode, c.status, c.want, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: Content-Type %q", c.path, ct)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: security headers %v", c.path, resp.Header)
		}
		// No inline script or style: the CSP would block them.
		for _, bad := range []string{"<script>", " style=", " onclick=", " onload=", "javascript:"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: the page has %q", c.path, bad)
			}
		}
	}
	// The API is still served beside the UI.
	if resp, body := get(t, http.DefaultClient, srv.URL+"/api/v1/reports/environment-state"); resp.StatusCode != 200 || !strings.Contains(body, `"items"`) {
		t.Errorf("API: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, http.DefaultClient, srv.URL+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}

func TestEmptyStore(t *testing.T) {
	srv := newUI(t, testenv.NewStore(t, "sqlite"), nil)
	resp, body := get(t, http.DefaultClient, srv.URL+"/")
	if resp.StatusCode != 200 || !strings.Contains(body, "The hub holds no data yet") || !strings.Contains(body, "tidemark apply -f") || strings.Contains(body, "<table") {
		t.Errorf("empty store: %d\n%s", resp.StatusCode, body)
	}
}

func TestExports(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	smallFleet(t, st)
	srv := newUI(t, st, nil)
	resp, body := get(t, http.DefaultClient, srv.URL+"/hosts?environment=prod&format=csv")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="tidemark-host-state.csv"`) {
		t.Fatalf("CSV: %d %v", resp.StatusCode, resp.Header)
	}
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 4 || records[0][0] != "host" || records[1][0] != "prod-1" {
		t.Errorf("CSV records: %v", records)
	}
	for _, rec := range records {
		for _, cell := range rec {
			if strings.HasPrefix(cell, "=") {
				t.Errorf("CSV cell %q would run as a formula", cell)
			}
		}
	}
	// JSON is the API's rows, every page of them.
	resp, body = get(t, http.DefaultClient, srv.URL+"/hosts?format=json&limit=1")
	var got struct{ Items []reports.HostStateRow }
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 || len(got.Items) != 5 {
		t.Errorf("JSON: %d %v %d items\n%s", resp.StatusCode, err, len(got.Items), body)
	}
	// Pages with several tables name them.
	resp, body = get(t, http.DefaultClient, srv.URL+"/search?q=1.0.0&table=hosts&format=csv")
	if resp.StatusCode != 200 || strings.Count(body, "\n") != 4 {
		t.Errorf("search hosts CSV: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := get(t, http.DefaultClient, srv.URL+"/search?q=1.0.0&format=csv"); resp.StatusCode != 400 {
		t.Errorf("search CSV without table: %d", resp.StatusCode)
	}
	// Every page links its exports.
	_, page := get(t, http.DefaultClient, srv.URL+"/environments?environment=prod")
	if !strings.Contains(page, "format=csv") || !strings.Contains(page, "format=json") {
		t.Error("Environment State links no export")
	}
}

func staticTokens(t *testing.T) api.Authenticator {
	var s api.StaticTokens
	if err := s.Add(readToken, "reader", api.ScopeRead); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(writeToken, "writer", api.ScopeWrite); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestLogin(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	smallFleet(t, st)
	srv := newUI(t, st, staticTokens(t))

	// Without a session: to the login page, keeping where to go next.
	resp, _ := get(t, noRedirect, srv.URL+"/hosts?status=failure")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fhosts%3Fstatus%3Dfailure" {
		t.Fatalf("no session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: noRedirect.CheckRedirect}
	resp, body := get(t, c, srv.URL+"/login?next=%2Fhosts%3Fstatus%3Dfailure")
	if resp.StatusCode != 200 || !strings.Contains(body, `type="password"`) {
		t.Fatalf("login form: %d", resp.StatusCode)
	}
	csrfValue := between(body, `name="csrf" value="`, `"`)
	post := func(c *http.Client, form url.Values, header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	next := "/hosts?status=failure"
	for _, bad := range []struct {
		name   string
		form   url.Values
		header map[string]string
		status int
	}{
		{"no CSRF token", url.Values{"token": {readToken}, "next": {next}}, nil, 403},
		{"another CSRF token", url.Values{"token": {readToken}, "csrf": {strings.Repeat("a", 64)}}, nil, 403},
		{"another site", url.Values{"token": {readToken}, "csrf": {csrfValue}}, map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-site fetch", url.Values{"token": {readToken}, "csrf": {csrfValue}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"unknown token", url.Values{"token": {"not-a-token-at-all-123"}, "csrf": {csrfValue}}, nil, 401},
		{"write-only token", url.Values{"token": {writeToken}, "csrf": {csrfValue}}, nil, 403},
		{"no token", url.Values{"csrf": {csrfValue}}, nil, 400},
	} {
		if resp := post(c, bad.form, bad.header); resp.StatusCode != bad.status || len(resp.Cookies()) > 0 && resp.Cookies()[0].Name == "tidemark_session" {
			t.Errorf("%s: %d, want %d", bad.name, resp.StatusCode, bad.status)
		}
	}
	resp = post(c, url.Values{"token": {readToken}, "csrf": {csrfValue}, "next": {next}}, map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != next {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "tidemark_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" || strings.Contains(session.Value, readToken) {
		t.Fatalf("session cookie: %+v", session)
	}
	if resp, body := get(t, c, srv.URL+next); resp.StatusCode != 200 || !strings.Contains(body, "prod-3") || !strings.Contains(body, `action="/logout"`) {
		t.Errorf("with a session: %d", resp.StatusCode)
	}
	if _, body := get(t, c, srv.URL+"/login/check"); body != `{"signedIn":true}` {
		t.Errorf("login check with a session: %s", body)
	}
	// The API does not take the cookie: it wants a bearer token.
	if resp, _ := get(t, c, srv.URL+"/api/v1/reports/host-state"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with only the cookie: %d", resp.StatusCode)
	}
	// A login never sends the browser to another site.
	resp = post(c, url.Values{"token": {readToken}, "csrf": {csrfValue}, "next": {"//evil.example/x"}}, nil)
	if resp.Header.Get("Location") != "/" {
		t.Errorf("next=//evil.example: redirected to %q", resp.Header.Get("Location"))
	}
	// Logging out needs the CSRF token too, and ends the session.
	req, _ := http.NewRequest("POST", srv.URL+"/logout", strings.NewReader(url.Values{"csrf": {csrfValue}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %v %v", resp, err)
	}
	if resp, _ := get(t, c, srv.URL+"/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
	if _, body := get(t, c, srv.URL+"/login/check"); body != `{"signedIn":false}` {
		t.Errorf("login check after logout: %s", body)
	}
	// Assets are open: the login page needs them.
	if resp, _ := get(t, http.DefaultClient, srv.URL+"/static/app.css"); resp.StatusCode != 200 {
		t.Errorf("static without a session: %d", resp.StatusCode)
	}
}

func TestOpenUIHasNoLogin(t *testing.T) {
	srv := newUI(t, testenv.NewStore(t, "sqlite"), nil)
	if resp, _ := get(t, noRedirect, srv.URL+"/login"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("GET /login on an open hub: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := get(t, http.DefaultClient, srv.URL+"/"); strings.Contains(body, "/logout") {
		t.Error("an open hub shows Sign out")
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

func TestStaticAssets(t *testing.T) {
	srv := newUI(t, testenv.NewStore(t, "sqlite"), nil)
	_, page := get(t, http.DefaultClient, srv.URL+"/")
	src := between(page, `<script src="/static/app.js?v=`, `"`)
	if src == "" {
		t.Fatal("the page does not load app.js with a version")
	}
	resp, _ := get(t, http.DefaultClient, srv.URL+"/static/app.js?v="+src)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("app.js: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := get(t, http.DefaultClient, srv.URL+"/static/app.js?v=old"); resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("app.js of another version: %v", resp.Header.Get("Cache-Control"))
	}
	if resp, _ := get(t, http.DefaultClient, srv.URL+"/static/nothing.js"); resp.StatusCode != 404 {
		t.Errorf("missing asset: %d", resp.StatusCode)
	}
}

// The vendored htmx is the file the README names, byte for byte.
func TestVendoredAssets(t *testing.T) {
	for path, want := range map[string]string{
		"static/vendor/htmx-2.0.11.min.js":    "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717",
		"testdata/axe-core-4.14.1/axe.min.js": "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c",
	} {
		b, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, want %s (see static/vendor/README.md)", path, got, want)
		}
	}
}

// A registered host that has not reported is a drift kind of its own, and
// the Drift page filters by it like by any other kind.
func TestDriftNotReportedKind(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	smallFleet(t, st)
	ep := shopEndpoint(t, "prod", "eu")
	if _, err := ingest.New(st).ApplyReport(ctx, model.Report{Host: "prod-4", Reconciler: "api", ReconcilerType: "flux", Endpoint: ep}); err != nil {
		t.Fatal(err)
	}
	srv := newUI(t, st, nil)
	resp, body := get(t, http.DefaultClient, srv.URL+"/drift?kind=not_reported")
	if resp.StatusCode != 200 || !strings.Contains(body, "prod-4") || !strings.Contains(body, "not yet reported") || strings.Contains(body, "prod-3") {
		t.Errorf("/drift?kind=not_reported: %d, want prod-4 alone as not yet reported:\n%.2000s", resp.StatusCode, body)
	}
	// How long it has drifted, with when it started on hover (once: the
	// duration says the rest).
	rows, _, err := reports.New(st).Drift(ctx, reports.Filter{Host: "prod-4"}, 0, reports.Page{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("drift of prod-4: %v, %v", rows, err)
	}
	if want := `title="since ` + rows[0].Since.UTC().Format("2006-01-02 15:04:05 UTC") + `"`; !strings.Contains(body, want) || strings.Contains(body, "since <time") {
		t.Errorf("/drift?kind=not_reported: want the start on hover (%s) and no relative start beside the duration:\n%.2000s", want, body)
	}
}

// A host registered in prod that has not reported yet shows on Compare as
// not reported, and does not make the environments differ.
func TestCompareHostsNotReported(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	smallFleet(t, st)
	if _, err := ingest.New(st).ApplyReport(ctx, model.Report{Host: "prod-4", Reconciler: "api", ReconcilerType: "flux",
		Endpoint: shopEndpoint(t, "prod", "eu"), ObservedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	srv := newUI(t, st, nil)
	resp, body := get(t, http.DefaultClient, srv.URL+"/compare?from=dev&to=prod")
	want := `<a href="/hosts?application=shop&amp;environment=prod&amp;status=not_reported&amp;target=eu&amp;workload=api&amp;workspace=acme" title="open these hosts">not reported yet</a> <span class="sub">eu · 1 host</span>`
	if resp.StatusCode != 200 || !strings.Contains(body, want) || strings.Contains(body, ">unknown<") || !strings.Contains(body, "1 workload differs") {
		t.Errorf("/compare: %d, want prod-4 not reported yet:\n%.4000s", resp.StatusCode, body)
	}
	// The export says so too, its commits aligned with the versions.
	resp, body = get(t, http.DefaultClient, srv.URL+"/compare?from=dev&to=prod&format=csv")
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || resp.StatusCode != 200 || len(records) != 2 {
		t.Fatalf("/compare CSV: %d %v %q", resp.StatusCode, err, body)
	}
	if got := records[1][6:]; got[0] != "1.0.0:3 not_reported:1" || got[1] != "e100"+strings.Repeat("0", 36)+" -" {
		t.Errorf("/compare CSV, prod's deployed and commits: %q", got)
	}
}

// A host that has reported, but not a commit of the version rolling out,
// shows as pending with what it runs, not as one that never reported.
func TestRolloutPendingHosts(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	smallFleet(t, st)
	ep := shopEndpoint(t, "prod", "eu")
	if _, err := ingest.New(st).ApplyDescriptor(ctx, model.Descriptor{Workspace: "acme", Application: "shop", Workload: "api",
		Environment: "prod", Target: "eu", Manifests: ep, Version: "1.1.0", Commit: "e110" + strings.Repeat("0", 36)}); err != nil {
		t.Fatal(err)
	}
	srv := newUI(t, st, nil)
	resp, body := get(t, http.DefaultClient, srv.URL+"/rollout?target=eu&environment=prod&version=1.1.0")
	if resp.StatusCode != 200 || strings.Count(body, "</span> pending</span>") != 3 || strings.Contains(body, "not yet reported") ||
		!strings.Contains(body, "<td>1.0.0</td>") || !strings.Contains(body, ">3</span> pending</li>") {
		t.Errorf("/rollout of 1.1.0: %d, want prod's three hosts pending on 1.0.0:\n%.3000s", resp.StatusCode, body)
	}
}
