package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// engineHubs are the API over a store of each engine, fed the same
// requests: whatever the input, they must answer alike.
type engineHubs struct {
	engines  []string
	handlers []http.Handler
}

func newEngineHubs(f *testing.F) *engineHubs {
	h := &engineHubs{}
	for _, engine := range testenv.Engines {
		st := testenv.NewStore(f, engine)
		h.engines = append(h.engines, engine)
		h.handlers = append(h.handlers, api.New(st, ingest.New(st), api.Options{Logger: quietLogger()}).Handler())
	}
	return h
}

// serve sends a copy of the request to every engine and fails unless
// each answers the same documented status, without a 5xx, with a problem
// document for an error.
func (h *engineHubs) serve(t *testing.T, method string, u *url.URL, body []byte, allowed ...int) {
	t.Helper()
	statuses := make([]int, len(h.handlers))
	for i, handler := range h.handlers {
		r := httptest.NewRequest(method, "/", bytes.NewReader(body))
		r.URL = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
		r.RequestURI = u.RequestURI()
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		res := w.Result()
		got, _ := io.ReadAll(res.Body)
		statuses[i] = res.StatusCode
		if res.StatusCode >= 500 || !contains(allowed, res.StatusCode) {
			t.Fatalf("%s: %s %q: %d (allowed %v): %.500s", h.engines[i], method, u.RequestURI(), res.StatusCode, allowed, got)
		}
		if res.StatusCode >= 400 && res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
			var p api.Problem
			if err := json.Unmarshal(got, &p); err != nil || p.Status != res.StatusCode || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s: %s %q: %d is not a problem document: %.500s", h.engines[i], method, u.RequestURI(), res.StatusCode, got)
			}
		}
	}
	for i := 1; i < len(statuses); i++ {
		if statuses[i] != statuses[0] {
			t.Fatalf("%s %q: %s answers %d, %s %d", method, u.RequestURI(), h.engines[0], statuses[0], h.engines[i], statuses[i])
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

var pushRoutes = []string{"/api/v1/apply", "/api/v1/deploymentdescriptors", "/api/v1/reconcilers", "/api/v1/azureresourcegraphs"}

// Any push body, to any push route, on both engines: a documented status
// (never 5xx), the same on both, a problem document for each error.
func FuzzPush(f *testing.F) {
	for i, body := range []string{
		descriptorJSON,
		reconcilerJSON,
		"[" + descriptorJSON + "," + reconcilerJSON + "]",
		`{"apiVersion":"v1","kind":"List","items":[` + reconcilerJSON + `]}`,
		strings.Replace(reconcilerJSON, `"kalypso-rg-flux"`, `"caf\u0065\u0301"`, 1),
		strings.Replace(reconcilerJSON, `"kalypso-rg-flux"`, `"a\u0000"`, 1),
		strings.Replace(reconcilerJSON, `"kalypso-rg-flux"`, `"\ud800"`, 1),
		strings.Replace(reconcilerJSON, `"kalypso-rg-flux"`, "\"\xff\"", 1),
		strings.Replace(descriptorJSON, `"build": "build-1"`, `"build": "build-2"`, 1),
		strings.Replace(reconcilerJSON, `"deployment": {`, `"deploymentx": {`, 1),
		`{"kind":"AzureResourceGraph","metadata":{"name":"a"},"spec":{"tenant":"t","subscriptions":["s","\u0000"],"managedIdentity":"m"}}`,
		`[null, 1, "x", [], {}]`,
		`{"kind":"ReconcilerList","items":null}`,
		`{"spec":{"hostName":5}}`,
		"",
	} {
		f.Add(uint8(i), []byte(body))
	}
	hubs := newEngineHubs(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		u := &url.URL{Path: pushRoutes[int(route)%len(pushRoutes)]}
		hubs.serve(t, http.MethodPost, u, body, 200, 400, 409, 413, 422)
	})
}

var queryRoutes = []string{
	"/api/v1/reports/environment-state", "/api/v1/reports/host-state", "/api/v1/reports/environment-history",
	"/api/v1/reports/discrepancies", "/api/v1/reports/drift", "/api/v1/reports/dora",
	"/api/v1/rollouts", "/api/v1/environments", "/api/v1/search", "/api/v1/compare",
	"/api/v1/reports/environment-state-at", "/api/v1/reports/host-state-at",
}

// Any query string on any report, the gate and the environments, and any
// host and reconciler name in the retire path, on both engines over the
// same fleet: a documented status (never 5xx), the same on both.
func FuzzQuery(f *testing.F) {
	for i, q := range []string{
		"host=kalypso-rg-flux&limit=1",
		"environment=dev&status=success&since=2020-01-01T00:00:00Z&until=2030-01-01T00:00:00Z",
		"target=drone&version=0.0.1",
		"endpoint=https%3A%2F%2Fgithub.com%2Fkaizentm%2Fkalypso-gitops%2Fdev%2Fdrone&commit=5ce0653",
		"order=prod,dev&staleAfter=1h",
		"cursor=bzox&limit=1",
		"cursor=eyJoIjoia2FseXBzby1yZy1mbHV4IiwiciI6ImEiLCJ0IjoxfQ",
		"host=%00&cursor=%FF",
		"host=caf%C3%A9&workspace=cafe%CC%81",
		"staleAfter=2562047h&limit=1000",
		"since=0000-01-01T00:00:00Z&until=9999-12-31T23:59:59Z",
		"commit=0000000&target=drone",
		"a=%zz;b",
		"q=5ce0653&limit=3",
		"from=dev&to=prod&workload=hello-world",
		"at=2026-01-02T15:04:05Z&environment=dev",
	} {
		f.Add(uint8(i), q, "kalypso-rg-flux", "kalypso-rg-flux-hello-world")
	}
	f.Add(uint8(0), "", "a\x00b", "\xff")
	f.Add(uint8(0), "", "a/b", "%2F")
	hubs := newEngineHubs(f)
	for _, h := range hubs.handlers {
		for _, body := range []string{"[" + descriptorJSON + "," + reconcilerJSON + "]",
			"[" + strings.Replace(reconcilerJSON, `"kalypso-rg-flux"`, `"caf\u00e9"`, 1) + "]"} {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/apply", strings.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				f.Fatalf("fleet: %d %s", w.Code, w.Body)
			}
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, query, host, name string) {
		path := queryRoutes[int(route)%len(queryRoutes)]
		hubs.serve(t, http.MethodGet, &url.URL{Path: path, RawQuery: query}, nil, 200, 400, 404, 409)
		// The retire path, as a client would escape it; a name holding
		// a slash or dots may not match the route (404, 405) or be
		// cleaned to another path (301 or 307).
		u := &url.URL{Path: fmt.Sprintf("/api/v1/hosts/%s/reconcilers/%s", host, name)}
		u.RawPath = "/api/v1/hosts/" + url.PathEscape(host) + "/reconcilers/" + url.PathEscape(name)
		hubs.serve(t, http.MethodDelete, u, nil, 204, 400, 404, 405, 301, 307)
	})
}
