package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/demo"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/reports"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
	"github.com/tidemark-dev/tidemark/internal/web"
)

// screenshots, when set, is where the browser test writes its screenshots
// (the README shows docs/screenshots): go test ./internal/web -run
// TestBrowser -args -screenshots ../../docs/screenshots
var screenshots = flag.String("screenshots", "", "write the browser test's screenshots to this directory")

const axePath = "testdata/axe-core-4.14.1/axe.min.js"

// browser is a headless Chromium tab that records every request it makes
// and every console message.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []string
	console  []string
}

// chromium finds the browser, or ends the test as testenv.Unavailable does.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "Chromium (apt-get install chromium)", errors.New("no chromium, chromium-browser or google-chrome on PATH"))
	return ""
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if testing.Short() {
		t.Skip("the browser test starts Chromium")
	}
	path := chromium(t)
	dir, err := os.MkdirTemp("", "tidemark-chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true), chromedp.Flag("font-render-hinting", "none"))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		for range 50 { // Chromium's children may still write for a moment
			if os.RemoveAll(dir) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		testenv.Unavailable(t, "Chromium", err)
	}
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.requests = append(b.requests, e.Request.URL)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Type == chromedp.ConsoleWarning {
				b.mu.Lock()
				b.console = append(b.console, m.String()+" ("+m.URL+")")
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions with a timeout, failing the test on an error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates JavaScript and decodes its value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// open loads a page and checks its status.
func (b *browser) open(u string, status int) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		b.t.Fatalf("open %s: %v", u, err)
	}
	if int(resp.Status) != status {
		b.t.Errorf("open %s: status %d, want %d", u, resp.Status, status)
	}
}

// waitFor polls a JavaScript condition until it holds.
func (b *browser) waitFor(what, js string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if eval[bool](b, js) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited %v for %s (%s); the page says:\n%.1500s", timeout, what, js, eval[string](b, "document.body.innerText"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// theme emulates the OS colour scheme.
func (b *browser) theme(scheme string) {
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	}))
}

// device sets the viewport: a desktop or a phone.
func (b *browser) device(phone bool) {
	if phone {
		b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	} else {
		b.do(chromedp.EmulateViewport(1280, 800))
	}
}

// axe runs axe-core on the page and fails on serious or critical
// violations.
func (b *browser) axe(page string) {
	b.t.Helper()
	if !eval[bool](b, "typeof axe !== 'undefined'") {
		src, err := os.ReadFile(axePath)
		if err != nil {
			b.t.Fatal(err)
		}
		// Injected through the debugger: the page's CSP allows no inline
		// script, and the test must not weaken it.
		eval[any](b, string(src)+";true")
	}
	type violation struct {
		ID, Impact, Help string
		Nodes            []struct{ Target []any }
	}
	res := eval[[]violation](b, `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => ({target: n.target}))})))`)
	for _, v := range res {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("%s: accessibility: %s (%s): %s, e.g. %v", page, v.ID, v.Impact, v.Help, v.Nodes)
		}
	}
}

func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// checkHost fails when the page requested anything but the test's hubs
// (all on the loopback address), or wrote an error to the console.
func (b *browser) checkHost() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, raw := range b.requests {
		u, err := url.Parse(raw)
		if raw == "about:blank" || err == nil && u.Scheme == "data" {
			continue
		}
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
			b.t.Errorf("the page requested %s: nothing may leave the hub", raw)
		}
	}
	b.requests = nil
	for _, m := range b.console {
		b.t.Errorf("console: %s", m)
	}
	b.console = nil
}

// hub serves the UI and the API over a store, as tidemark serve does.
func hub(t testing.TB, st *store.Store, auth api.Authenticator) (*httptest.Server, *reports.Service) {
	rep := reports.New(st)
	ui, err := web.New(rep, web.Options{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.Combine(api.New(st, ingest.New(st), api.Options{Auth: auth}).Handler(), ui.Handler()))
	t.Cleanup(srv.Close)
	return srv, rep
}

func apiGet[T any](t *testing.T, u string) T {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v T
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBrowser loads every page of a hub serving the demo fleet in headless
// Chromium and checks what a person would.
func TestBrowser(t *testing.T) {
	for _, engine := range testenv.Engines {
		t.Run(engine, func(t *testing.T) {
			b := newBrowser(t)
			st := testenv.NewStore(t, engine)
			start := time.Now()
			if _, err := demo.Load(ctx, st, time.Now()); err != nil {
				t.Fatal(err)
			}
			t.Logf("demo fleet loaded in %v", time.Since(start).Round(time.Millisecond))
			srv, _ := hub(t, st, nil)
			dir := ""
			if engine == "sqlite" {
				dir = *screenshots
			}
			if dir != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// The layout does not depend on the engine: phones on one.
			t.Run("pages", func(t *testing.T) { b.t = t; browserPages(b, srv.URL, dir, engine == "sqlite") })
			t.Run("numbers", func(t *testing.T) { b.t = t; browserNumbers(b, srv.URL) })
			t.Run("filters", func(t *testing.T) { b.t = t; browserFilters(b, srv.URL) })
			t.Run("search", func(t *testing.T) { b.t = t; browserSearch(b, srv.URL) })
			t.Run("time travel", func(t *testing.T) { b.t = t; browserTimeTravel(b, srv.URL) })
			t.Run("live rollout", func(t *testing.T) { b.t = t; browserLiveRollout(b, srv.URL, st) })
			t.Run("theme and keyboard", func(t *testing.T) { b.t = t; browserThemeAndKeys(b, srv.URL) })
			t.Run("sign in", func(t *testing.T) { b.t = t; browserSignIn(b, st, dir) })
			t.Run("empty store", func(t *testing.T) { b.t = t; browserEmpty(b, testenv.NewStore(t, engine), dir) })
			b.t = t
			b.checkHost()
		})
	}
}

// The pages, each with its name for the screenshots.
var browserPagePaths = []struct{ name, path string }{
	{"overview", "/"},
	{"environments", "/environments?environment=prod&workspace=payments"},
	{"hosts", "/hosts?environment=prod&workload=payment-gateway"},
	{"host", "/hosts/aks-prod-eastus-01"},
	{"history", "/history?workload=payment-gateway"},
	{"discrepancies", "/discrepancies"},
	{"drift", "/drift"},
	{"dora", "/dora"},
	{"rollout", "/rollout?workload=payment-gateway&environment=prod&target=eastus&version=1.14.0"},
	{"search", "/search?q=1.14.0"},
	{"compare", "/compare?from=staging&to=prod"},
	{"timetravel", ""}, // filled in by browserPages
}

func browserPages(b *browser, hub, dir string, phones bool) {
	paths := slices.Clone(browserPagePaths)
	paths[len(paths)-1].path = "/environments?environment=prod&workspace=payments&at=" + url.QueryEscape(time.Now().Add(-10*24*time.Hour).UTC().Format("2006-01-02T15:04"))
	// The demo's versions are generated: take the rollout's from the API.
	g := apiGet[reports.Discrepancies](b.t, hub+"/api/v1/reports/discrepancies?workload=payment-gateway&environment=prod")
	version := g.Items[0].Cells[0].Scheduled[0]
	for i := range paths {
		paths[i].path = strings.ReplaceAll(paths[i].path, "1.14.0", version)
	}
	for _, phone := range []bool{false, true} {
		if phone && !phones {
			continue
		}
		b.device(phone)
		for _, scheme := range []string{"light", "dark"} {
			b.theme(scheme)
			for _, p := range paths {
				b.open(hub+p.path, 200)
				b.waitFor(p.name+" rendered", `document.querySelector("main h1") !== null`, 10*time.Second)
				if p.name == "overview" {
					b.waitFor("the headline numbers", `document.querySelector("#headline ul.headline") !== null`, 10*time.Second)
				}
				if !phone {
					b.axe(p.name + " (" + scheme + ")")
				}
				// Every page fits in 1,280 px; on a phone only tables scroll.
				if w := eval[float64](b, "document.documentElement.scrollWidth - document.documentElement.clientWidth"); w > 1 {
					b.t.Errorf("%s (%s, phone %v): the page scrolls sideways by %v px", p.name, scheme, phone, w)
				}
				device := "desktop"
				if phone {
					device = "phone"
				}
				b.screenshot(dir, p.name+"-"+scheme+"-"+device)
			}
		}
	}
	// At 1,280 px less a scrollbar the header still fits one line.
	b.do(chromedp.EmulateViewport(1250, 800))
	b.open(hub+"/environments", 200)
	if d := eval[float64](b, `document.querySelector("#theme").getBoundingClientRect().top - document.querySelector(".brand").getBoundingClientRect().top`); d > 20 {
		b.t.Errorf("at 1,250 px the header wraps: the theme switch is %v px below the brand", d)
	}
	b.device(false)
	b.theme("light")
	b.checkHost()
}

// A known target's numbers are the API's, and a host count opens exactly
// those hosts.
func browserNumbers(b *browser, hub string) {
	q := "workspace=payments&application=checkout&workload=payment-gateway&environment=prod"
	want := apiGet[api.List[reports.EnvironmentStateRow]](b.t, hub+"/api/v1/reports/environment-state?"+q).Items
	b.open(hub+"/environments?"+q, 200)
	type row struct{ Target, Version, Status, Hosts string }
	got := eval[[]row](b, `[...document.querySelectorAll("table.grid tbody tr")].map(tr => {
		const c = tr.querySelectorAll("td");
		return {target: c.length > 7 ? c[4].innerText : "", version: c[c.length-3].innerText.replace("✓", "").trim(),
			status: c[c.length-2].innerText.trim(), hosts: c[c.length-1].innerText.trim()};
	})`)
	if len(got) != len(want) {
		b.t.Fatalf("Environment State shows %d rows, the API %d: %+v", len(got), len(want), got)
	}
	target := ""
	for i, w := range want {
		if got[i].Target != "" {
			target = got[i].Target
		}
		label := map[string]string{"success": "✓ success", "failure": "✕ failed", "in_progress": "◔ in progress", "not_reported": "○ not yet reported", "": "∅ no hosts"}[w.Status]
		if w.Status == "not_reported" {
			w.DeployedVersion = "—" // no version at all, not an unknown one
		}
		if target != w.Target || got[i].Hosts != strconv.Itoa(w.Hosts) || got[i].Status != label || (w.Hosts > 0 && got[i].Version != w.DeployedVersion && !(w.DeployedVersion == "" && got[i].Version == "unknown")) {
			b.t.Errorf("row %d: the page says %+v (target %s), the API %+v", i, got[i], target, w)
		}
	}
	// The failing hosts of eastus: click their count.
	idx := slices.IndexFunc(want, func(r reports.EnvironmentStateRow) bool { return r.Status == "failure" })
	if idx < 0 {
		b.t.Fatal("the demo has no failing row for payment-gateway in prod")
	}
	n := want[idx].Hosts
	b.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`table.grid tbody tr:nth-child(n) td.num a[title="open these %d hosts"]`, n))))
	b.waitFor("Host State", `location.pathname === "/hosts" && document.querySelector("#host-table") !== null`, 10*time.Second)
	rows := eval[[]string](b, `[...document.querySelectorAll("#host-table tbody tr")].map(tr => tr.innerText)`)
	if len(rows) != n {
		b.t.Errorf("the count said %d hosts, Host State lists %d: %v", n, len(rows), rows)
	}
	for _, r := range rows {
		if !strings.Contains(r, "failed") || !strings.Contains(r, want[idx].Target) {
			b.t.Errorf("Host State row is not a failed host of %s: %q", want[idx].Target, r)
		}
	}
}

// A filter changes the URL and the rows, without reloading the page.
func browserFilters(b *browser, hub string) {
	b.open(hub+"/hosts?environment=prod", 200)
	before := eval[int](b, `document.querySelectorAll("#host-table tbody tr").length`)
	eval[bool](b, `window.tidemarkMarker = 1; true`)
	eval[bool](b, `(() => { const s = document.querySelector("form.filters select[name=status]"); s.value = "failure"; s.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`)
	b.waitFor("the URL and rows to change", `location.search.includes("status=failure") && document.querySelectorAll("#host-table tbody tr").length > 0 &&
		[...document.querySelectorAll("#host-table tbody tr")].every(tr => tr.innerText.includes("failed"))`, 10*time.Second)
	after := eval[int](b, `document.querySelectorAll("#host-table tbody tr").length`)
	if after >= before || !eval[bool](b, `window.tidemarkMarker === 1`) {
		b.t.Errorf("status=failure: %d rows (from %d); in place: %v", after, before, eval[bool](b, `window.tidemarkMarker === 1`))
	}
	if strings.Contains(eval[string](b, "location.search"), "workspace=") {
		b.t.Errorf("empty filters in the URL: %s", eval[string](b, "location.search"))
	}
	// The URL is the view: opening it again shows the same rows.
	b.open(eval[string](b, "location.href"), 200)
	if n := eval[int](b, `document.querySelectorAll("#host-table tbody tr").length`); n != after {
		b.t.Errorf("the link shows %d rows, the filtered page %d", n, after)
	}
}

// Search by an abbreviated commit finds its environments.
func browserSearch(b *browser, hub string) {
	hist := apiGet[api.List[reports.HistoryRow]](b.t, hub+"/api/v1/reports/environment-history?workload=checkout-api&environment=prod&limit=1").Items
	if len(hist) == 0 || len(hist[0].Commit) < 8 {
		b.t.Fatalf("no commit to search: %+v", hist)
	}
	abbrev := hist[0].Commit[:8]
	b.open(hub+"/drift", 200)
	// "/" focuses the search box from anywhere.
	b.do(chromedp.KeyEvent("/"))
	if id := eval[string](b, "document.activeElement.id"); id != "q" {
		b.t.Fatalf("/ focused %q, not the search box", id)
	}
	b.do(chromedp.KeyEvent(abbrev + "\r"))
	b.waitFor("search results", `location.pathname === "/search" && document.querySelector("section.envgroup") !== null`, 10*time.Second)
	envs := eval[[]string](b, `[...document.querySelectorAll("section.envgroup h2")].map(h => h.innerText)`)
	if !slices.Contains(envs, "prod") {
		b.t.Errorf("searching %s found environments %v, not prod", abbrev, envs)
	}
	text := eval[string](b, "document.querySelector('#live').innerText")
	if !strings.Contains(text, hist[0].Version) || !strings.Contains(text, "checkout-api") {
		b.t.Errorf("searching %s: the page does not name %s of checkout-api:\n%s", abbrev, hist[0].Version, text)
	}
}

// at= shows the version of the time.
func browserTimeTravel(b *browser, hub string) {
	hist := apiGet[api.List[reports.HistoryRow]](b.t, hub+"/api/v1/reports/environment-history?workload=checkout-api&environment=prod&target=eastus").Items
	if len(hist) < 2 {
		b.t.Fatalf("checkout-api in prod/eastus has %d assignments", len(hist))
	}
	now, older := hist[0], hist[1]
	at := now.AssignedAt.Add(-time.Minute)
	if older.AllSucceededAt != nil && older.AllSucceededAt.Before(at) {
		at = older.AllSucceededAt.Add(time.Second).Truncate(time.Minute).Add(time.Minute)
	}
	b.open(hub+"/environments?workload=checkout-api&environment=prod&target=eastus&at="+url.QueryEscape(at.UTC().Format(time.RFC3339)), 200)
	text := eval[string](b, "document.querySelector('#live').innerText")
	if !strings.Contains(text, "Time travel") || !strings.Contains(text, older.Version) || strings.Contains(text, now.Version) {
		b.t.Errorf("at %v: want %s (not %s):\n%s", at, older.Version, now.Version, text)
	}
	// Back to now.
	b.do(chromedp.Click(chromedp.CSS(`p.banner a:not([rel=bookmark])`)))
	b.waitFor("the present, with "+now.Version, fmt.Sprintf(`!location.search.includes("at=") && document.querySelector("#live") !== null &&
		document.querySelector("#live").innerText.includes(%q) && !document.querySelector("#live").innerText.includes("Time travel")`, now.Version), 10*time.Second)
	// The form takes a duration ago, as typed.
	b.do(chromedp.SendKeys(chromedp.CSS(`input[name=at]`), "3d"), chromedp.Submit(chromedp.CSS(`input[name=at]`)))
	b.waitFor("the fleet three days ago", `location.search.includes("at=3d") && document.querySelector("#live").innerText.includes("Time travel") &&
		document.querySelector("input[name=at]").value === "3d"`, 10*time.Second)
}

// The rollout page updates in place when a report arrives.
func browserLiveRollout(b *browser, hub string, st *store.Store) {
	rows := apiGet[api.List[reports.HostStateRow]](b.t, hub+"/api/v1/reports/host-state?workload=checkout-api&environment=prod&target=eastus&status=success&limit=1").Items
	if len(rows) == 0 {
		b.t.Fatal("no successful checkout-api host in prod/eastus")
	}
	h := rows[0]
	b.open(hub+"/rollout?"+url.Values{"workspace": {h.Workspace}, "application": {h.Application}, "workload": {h.Workload},
		"environment": {h.Environment}, "target": {h.Target}, "version": {h.Scheduled}}.Encode(), 200)
	failed := eval[string](b, `document.querySelector("#gate-failed").innerText`)
	eval[bool](b, `window.tidemarkMarker = 1; true`)
	ep, err := model.NewEndpoint("git", "https://github.com/"+h.Workspace+"/"+h.Workload+"-gitops", h.Environment, h.Target)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := ingest.New(st).ApplyReport(ctx, model.Report{Host: h.Host, Reconciler: h.Reconciler, ReconcilerType: "flux", Endpoint: ep,
		Commit: h.Commit, Status: model.StatusFailure, Message: "browser test: health check failed"}); err != nil {
		b.t.Fatal(err)
	}
	want, _ := strconv.Atoi(failed)
	b.waitFor("the failed count to go up", fmt.Sprintf(`document.querySelector("#gate-failed").innerText === "%d"`, want+1), 20*time.Second)
	if !eval[bool](b, `window.tidemarkMarker === 1`) {
		b.t.Error("the rollout page reloaded instead of updating in place")
	}
	if !eval[bool](b, `document.querySelector("#rollout-hosts").innerText.includes("browser test: health check failed")`) {
		b.t.Error("the failed host's message is not shown")
	}
}

// luminance of the page background, 0 (black) to 1 (white).
func luminance(b *browser) float64 {
	rgb := eval[[]float64](b, `getComputedStyle(document.body).backgroundColor.match(/[\d.]+/g).slice(0, 3).map(Number)`)
	return (0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]) / 255
}

// Dark mode follows the OS; the switch overrides it and is remembered.
// Keyboard: Tab reaches the skip link first, focus is visible.
func browserThemeAndKeys(b *browser, hub string) {
	b.theme("dark")
	b.open(hub+"/", 200)
	if l := luminance(b); l > 0.2 {
		b.t.Errorf("dark OS: background luminance %.2f", l)
	}
	b.do(chromedp.Click(chromedp.ID("theme"))) // system -> light
	if l := luminance(b); l < 0.8 {
		b.t.Errorf("after choosing light: luminance %.2f", l)
	}
	b.open(hub+"/drift", 200)
	if l := luminance(b); l < 0.8 || eval[string](b, `document.documentElement.dataset.theme`) != "light" {
		b.t.Errorf("the light choice was not remembered: luminance %.2f", l)
	}
	b.do(chromedp.Click(chromedp.ID("theme")), chromedp.Click(chromedp.ID("theme"))) // -> dark -> system
	if got := eval[string](b, `document.querySelector("#theme .theme-label").innerText`); got != "Theme: system" {
		b.t.Errorf("theme label %q", got)
	}
	b.theme("light")
	b.open(hub+"/", 200)
	b.do(chromedp.KeyEvent("\t"))
	if eval[string](b, "document.activeElement.className") != "skip" {
		b.t.Errorf("the first Tab reaches %q, not the skip link", eval[string](b, "document.activeElement.outerHTML"))
	}
	if w := eval[string](b, "getComputedStyle(document.activeElement).outlineStyle"); w == "none" {
		b.t.Error("the focused link has no visible outline")
	}
	// Every link and control can take the focus.
	if n := eval[int](b, `[...document.querySelectorAll("a[href], button, input, select")].filter(e => e.tabIndex < 0).length`); n != 0 {
		b.t.Errorf("%d controls are out of the Tab order", n)
	}
	if math.IsNaN(luminance(b)) {
		b.t.Error("no background")
	}
}

// With tokens, the UI asks for one once, then shows the page asked for.
func browserSignIn(b *browser, st *store.Store, dir string) {
	var tokens api.StaticTokens
	if err := tokens.Add(readToken, "reader", api.ScopeRead); err != nil {
		b.t.Fatal(err)
	}
	srv, _ := hub(b.t, st, &tokens)
	b.open(srv.URL+"/drift?kind=stale", 200) // after the redirect
	b.waitFor("the login form", `location.pathname === "/login" && document.querySelector("#token") !== null`, 10*time.Second)
	b.screenshot(dir, "login-light-desktop")
	b.axe("login")
	b.do(chromedp.SendKeys(chromedp.ID("token"), readToken), chromedp.Submit(chromedp.ID("token")))
	b.waitFor("the page asked for", `location.pathname === "/drift" && location.search === "?kind=stale" && document.querySelector("main h1") !== null && document.querySelector("main h1").innerText === "Drift"`, 10*time.Second)
	if c := eval[string](b, "document.cookie"); strings.Contains(c, "tidemark_session") {
		b.t.Errorf("the session cookie is readable by scripts: %q", c)
	}
	b.do(chromedp.Click(chromedp.CSS(`form.logout button`)))
	b.waitFor("the login page", `location.pathname === "/login"`, 10*time.Second)
	b.checkHost()
}

// An empty store shows how to send data.
func browserEmpty(b *browser, st *store.Store, dir string) {
	srv, _ := hub(b.t, st, nil)
	for _, scheme := range []string{"light", "dark"} {
		b.theme(scheme)
		b.open(srv.URL+"/", 200)
		text := eval[string](b, "document.body.innerText")
		if !strings.Contains(text, "holds no data yet") || !strings.Contains(text, "tidemark apply") || eval[int](b, `document.querySelectorAll("table").length`) != 0 {
			b.t.Errorf("empty store page:\n%s", text)
		}
		b.axe("welcome (" + scheme + ")")
		b.screenshot(dir, "welcome-"+scheme+"-desktop")
	}
	b.theme("light")
	b.checkHost()
}
