package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// problem decodes a problem document, failing the test unless the answer
// is one with the status.
func problem(t *testing.T, code int, body string, hdr http.Header, want int) api.Problem {
	t.Helper()
	if code != want {
		t.Fatalf("status %d, want %d: %.300s", code, want, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q: %.300s", ct, body)
	}
	var p api.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != want {
		t.Fatalf("problem %.300s: %v", body, err)
	}
	return p
}

// namesField reports whether the problem names the field (and, when item
// is not negative, the document).
func namesField(p api.Problem, field string, item int) bool {
	for _, e := range p.Errors {
		if e.Field == field && (item < 0 || e.Item != nil && *e.Item == item) {
			return true
		}
	}
	return false
}

func descriptorOf(target, version, build, commit string) string {
	d := strings.NewReplacer(`"name": "drone"`, `"name": "`+target+`"`, `"path": "drone"`, `"path": "`+target+`"`,
		`"version": "0.0.1"`, `"version": "`+version+`"`, `"build": "build-1"`, `"build": "`+build+`"`,
		"dev@sha1:5ce065315cc1702b6cb4eb9d3f804413706570d8", commit,
		"hello-world-functional-test-0-0-1", "hello-world-"+target+"-"+version).Replace(descriptorJSON)
	return d
}

func reconcilerOf(host, target, commit string) string {
	return strings.NewReplacer(`"hostName": "kalypso-rg-flux"`, `"hostName": "`+host+`"`, "/dev/drone", "/dev/"+target,
		"dev/5ce065315cc1702b6cb4eb9d3f804413706570d8", commit).Replace(reconcilerJSON)
}

func sha(n int) string { return fmt.Sprintf("%040x", n) }

// A request that answers 409 or 422 has stored nothing, whatever its kinds;
// the problem names the document and the field.
func TestPushIsAllOrNothing(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		h := newHub(t, st)
		if code, body, _ := h.do("POST", "/api/v1/deploymentdescriptors", descriptorOf("drone", "1.0.0", "build-1", sha(1))); code != 200 {
			t.Fatal(code, body)
		}
		before := map[string]int{}
		tables := []string{"targets", "assignments", "workload_versions", "hosts", "reconcilers", "deployments"}
		for _, tbl := range tables {
			before[tbl] = h.count(tbl)
		}
		unchanged := func(what string) {
			t.Helper()
			for _, tbl := range tables {
				if n := h.count(tbl); n != before[tbl] {
					t.Errorf("%s: %s has %d rows, had %d: a refused request stored part of itself", what, tbl, n, before[tbl])
				}
			}
		}

		// Document 2 re-publishes 1.0.0 with another build: documents 0
		// and 1 (new targets) are not stored either.
		conflicting := descriptorOf("idle", "1.0.0", "build-2", sha(4))
		code, body, hdr := h.do("POST", "/api/v1/deploymentdescriptors",
			"["+descriptorOf("edge", "2.0.0", "build-20", sha(2))+","+descriptorOf("lab", "3.0.0", "build-30", sha(3))+","+conflicting+"]")
		p := problem(t, code, body, hdr, 409)
		if !namesField(p, "items[2].spec.workloadVersion.build", 2) || p.Errors[0].Name != "hello-world-idle-1.0.0" {
			t.Errorf("409 does not name document 2 and its field: %s", body)
		}
		unchanged("descriptors with a conflict")

		// Reconcilers, one invalid: none stored.
		bad := strings.Replace(reconcilerOf("h2", "drone", sha(1)), `"status": "success"`, `"status": "done"`, 1)
		code, body, hdr = h.do("POST", "/api/v1/reconcilers", `{"kind":"ReconcilerList","items":[`+reconcilerOf("h1", "drone", sha(1))+","+bad+"]}")
		if p := problem(t, code, body, hdr, 422); !namesField(p, "items[1].spec.deployment.status", 1) {
			t.Errorf("422 does not name document 1's status: %s", body)
		}
		unchanged("reconcilers with an invalid one")

		// Mixed kinds: the reconcilers before the conflicting descriptor
		// are not stored.
		code, body, hdr = h.do("POST", "/api/v1/apply", `{"apiVersion":"v1","kind":"List","items":[`+
			reconcilerOf("h1", "drone", sha(1))+","+reconcilerOf("h2", "drone", sha(1))+","+conflicting+"]}")
		if p := problem(t, code, body, hdr, 409); !namesField(p, "items[2].spec.workloadVersion.build", 2) {
			t.Errorf("apply 409 does not name document 2: %s", body)
		}
		unchanged("apply with a conflict")
		code, body, hdr = h.do("POST", "/api/v1/apply", "["+reconcilerOf("h1", "drone", sha(1))+`,{"apiVersion":"hub.kalypso.io/v1alpha1","kind":"AzureResourceGraph","metadata":{"name":"a"}}]`)
		if p := problem(t, code, body, hdr, 422); !namesField(p, "items[1].kind", 1) || !strings.Contains(body, "/api/v1/azureresourcegraphs") {
			t.Errorf("apply of an AzureResourceGraph: %s", body)
		}
		unchanged("apply with a kind it does not take")

		// Mixed kinds that fit: one answer per document, in order.
		code, body, _ = h.do("POST", "/api/v1/apply", "["+reconcilerOf("h1", "edge", sha(2))+","+descriptorOf("edge", "2.0.0", "build-20", sha(2))+"]")
		if code != 200 {
			t.Fatalf("apply: %d %s", code, body)
		}
		r := decodeResult(t, body)
		if len(r.Items) != 2 || r.Items[0].Kind != "Reconciler" || r.Items[0].Name != "h1/kalypso-rg-flux-hello-world" ||
			r.Items[1].Kind != "DeploymentDescriptor" || r.Items[1].Commit != sha(2) || !r.Items[0].Changed || !r.Items[1].Changed {
			t.Errorf("apply result %+v", r)
		}
		code, body, _ = h.do("GET", "/api/v1/reports/host-state?host=h1", "")
		if code != 200 || !strings.Contains(body, `"version": "2.0.0"`) {
			t.Errorf("the reconciler applied with its descriptor does not resolve: %d %s", code, body)
		}
	})
}

// Every query parameter, path value and body refuses invalid UTF-8 and
// NUL with a 400 or 422 naming it, on both engines; nothing reaches the
// store.
func TestHostileBytesAtTheEdge(t *testing.T) {
	reportParams := []string{"workspace", "application", "environment", "workload", "target", "host", "status", "since", "until", "limit", "cursor"}
	routes := map[string][]string{
		"/api/v1/reports/environment-state":    reportParams,
		"/api/v1/reports/host-state":           reportParams,
		"/api/v1/reports/environment-history":  reportParams,
		"/api/v1/reports/dora":                 reportParams,
		"/api/v1/reports/drift":                append([]string{"staleAfter"}, reportParams...),
		"/api/v1/reports/discrepancies":        append([]string{"order"}, reportParams...),
		"/api/v1/environments":                 {"order"},
		"/api/v1/rollouts":                     {"target", "endpoint", "workload", "application", "workspace", "environment", "version", "commit"},
		"/api/v1/search":                       {"q", "limit", "cursor"},
		"/api/v1/compare":                      append([]string{"from", "to"}, reportParams...),
		"/api/v1/reports/environment-state-at": append([]string{"at"}, reportParams...),
		"/api/v1/reports/host-state-at":        append([]string{"at"}, reportParams...),
	}
	forged := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		var logs bytes.Buffer
		srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler())
		t.Cleanup(srv.Close)
		h := &hub{t: t, st: st, srv: srv}
		// Some state, so that a query that got through would find rows.
		if code, body, _ := h.do("POST", "/api/v1/apply", "["+descriptorJSON+","+reconcilerJSON+"]"); code != 200 {
			t.Fatal(code, body)
		}
		rows := func() int {
			return h.count("hosts") + h.count("reconcilers") + h.count("deployments") + h.count("targets")
		}
		stored := rows()

		for route, params := range routes {
			for _, param := range params {
				for _, bad := range []string{"a%00b", "%FF", "caf%C3", "%ED%A0%80"} { // NUL, invalid, truncated, a UTF-16 surrogate
					code, body, hdr := h.do("GET", route+"?"+param+"="+bad, "")
					if p := problem(t, code, body, hdr, 400); !namesField(p, param, -1) {
						t.Errorf("%s?%s=%s: the problem does not name %s: %s", route, param, bad, param, body)
					}
				}
				code, body, hdr := h.do("GET", route+"?"+param+"=a&"+param+"=b", "")
				if p := problem(t, code, body, hdr, 400); !namesField(p, param, -1) {
					t.Errorf("%s with %s twice: %s", route, param, body)
				}
			}
			code, body, hdr := h.do("GET", route+"?host=%zz", "")
			if p := problem(t, code, body, hdr, 400); !namesField(p, "query", -1) {
				t.Errorf("%s with a malformed escape: %s", route, body)
			}
		}
		for _, c := range []struct{ what, cursor string }{
			{"not base64", "!!!"},
			{"padded base64", base64.URLEncoding.EncodeToString([]byte("o:12"))},
			{"invalid UTF-8", forged("o:\xff")},
			{"NUL", forged("o:1\x00")},
			{"NUL escaped in JSON", forged(`{"h":"a\u0000","r":"b","t":1}`)},
			{"a negative offset", forged("o:-1")},
			{"not JSON", forged(`{"h":`)},
		} {
			for _, route := range []string{"/api/v1/reports/host-state", "/api/v1/reports/environment-state", "/api/v1/reports/drift"} {
				code, body, hdr := h.do("GET", route+"?cursor="+url.QueryEscape(c.cursor), "")
				if code != 400 {
					t.Errorf("%s with a forged cursor (%s): %d %s", route, c.what, code, body)
					continue
				}
				if p := problem(t, code, body, hdr, 400); !namesField(p, "cursor", -1) {
					t.Errorf("%s with a forged cursor (%s): %s", route, c.what, body)
				}
			}
		}
		for _, c := range []struct{ path, field string }{
			{"/api/v1/hosts/a%00b/reconcilers/x", "host"},
			{"/api/v1/hosts/%FF/reconcilers/x", "host"},
			{"/api/v1/hosts/h/reconcilers/x%00", "name"},
			{"/api/v1/hosts/h/reconcilers/%C3", "name"},
			{"/api/v1/hosts/%20/reconcilers/x", "host"},
			{"/api/v1/hosts/h%07/reconcilers/x", "host"}, // a control character
		} {
			code, body, hdr := h.do("DELETE", c.path, "")
			if p := problem(t, code, body, hdr, 400); !namesField(p, c.field, -1) {
				t.Errorf("DELETE %s: %s", c.path, body)
			}
		}

		if n, live := rows(), h.count("reconcilers WHERE retired_at IS NULL"); n != stored || live != 1 {
			t.Errorf("refused queries and retirements changed the store: %d rows (had %d), %d live reconcilers", n, stored, live)
		}

		// Bodies: bytes that are not UTF-8 and lone surrogates are refused
		// before decoding, naming the byte; NUL in a field, naming it.
		withHost := func(host string) string { return strings.Replace(reconcilerJSON, `"kalypso-rg-flux"`, `"`+host+`"`, 1) }
		invalid := withHost("caf\xe9")
		for _, c := range []struct{ what, path, body, want string }{
			{"Latin-1 é", "/api/v1/reconcilers", invalid, fmt.Sprintf("not valid UTF-8 at byte %d", strings.Index(invalid, "\xe9"))},
			{"lone high surrogate", "/api/v1/reconcilers", withHost(`a\ud800b`), `lone UTF-16 surrogate \ud800 at byte`},
			{"lone low surrogate", "/api/v1/apply", "[" + withHost(`a\uDC00`) + "]", `lone UTF-16 surrogate \uDC00`},
			{"raw NUL", "/api/v1/reconcilers", withHost("a\x00b"), "NUL byte at byte"},
			{"not an object", "/api/v1/reconcilers", `"text"`, "not a JSON object or array"},
		} {
			code, body, hdr := h.do("POST", c.path, c.body)
			if p := problem(t, code, body, hdr, 400); !strings.Contains(p.Detail, c.want) {
				t.Errorf("%s: detail %q does not say %q", c.what, p.Detail, c.want)
			}
		}
		// A surrogate pair is one character: accepted.
		if code, body, _ := h.do("POST", "/api/v1/reconcilers", withHost(`host-\ud83d\ude80`)); code != 200 {
			t.Errorf("surrogate pair: %d %s", code, body)
		}
		stored = rows()
		for _, c := range []struct{ what, path, body, field string }{
			{"NUL in a host name", "/api/v1/reconcilers", withHost(`a\u0000b`), "spec.hostName"},
			{"NUL in a message", "/api/v1/reconcilers", strings.Replace(reconcilerJSON, `Resource is Ready\n`, `Ready\u0000`, 1), "spec.deployment.statusMessage"},
			{"NUL in a label key", "/api/v1/reconcilers", strings.Replace(reconcilerJSON, `"type": "flux"`, `"type": "flux", "hostLabels": {"a\u0000": "b"}`, 1), `spec.hostLabels["a\x00"]`},
			{"NUL in a descriptor's workspace", "/api/v1/apply", "[" + strings.Replace(descriptorJSON, `"kaizentm"}`, `"kaizen\u0000tm"}`, 1) + "]", "items[0].spec.workload.application.workspace.name"},
			{"NUL in an AzureResourceGraph's tenant", "/api/v1/azureresourcegraphs",
				`{"kind":"AzureResourceGraph","metadata":{"name":"a"},"spec":{"tenant":"t\u0000","subscription":"s","managedIdentity":"m"}}`, "spec.tenant"},
			{"NUL in an AzureResourceGraph's subscriptions", "/api/v1/azureresourcegraphs",
				`{"kind":"AzureResourceGraph","metadata":{"name":"a"},"spec":{"tenant":"t","subscriptions":["s","\u0000"],"managedIdentity":"m"}}`, "spec.subscriptions[1]"},
			{"NUL in an AzureResourceGraph's name", "/api/v1/azureresourcegraphs",
				`{"kind":"AzureResourceGraph","metadata":{"name":"a\u0000"},"spec":{"tenant":"t","subscription":"s","managedIdentity":"m"}}`, "metadata.name"},
		} {
			code, body, hdr := h.do("POST", c.path, c.body)
			if p := problem(t, code, body, hdr, 422); !namesField(p, c.field, -1) {
				t.Errorf("%s: the problem does not name %s: %s", c.what, c.field, body)
			}
		}
		if n := rows(); n != stored {
			t.Errorf("refused requests changed the store: %d rows, had %d", n, stored)
		}
		if n := h.count("azure_resource_graphs"); n != 0 {
			t.Errorf("%d AzureResourceGraphs stored from refused requests", n)
		}
		if strings.Contains(logs.String(), "level=ERROR") {
			t.Errorf("hostile requests logged errors:\n%s", logs.String())
		}
	})
}

// Names are compared in Unicode normalization form C: a filter typed
// decomposed finds what was pushed precomposed, and the other way round.
func TestNameFiltersAreNormalized(t *testing.T) {
	const nfc, nfd = "caf\u00e9", "cafe\u0301"
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		h := newHub(t, st)
		desc := strings.NewReplacer(`"environment": "dev"`, `"environment": "`+nfd+`"`, `"name": "drone"`, `"name": "`+nfc+`"`).Replace(descriptorJSON)
		rec := strings.Replace(reconcilerJSON, `"hostName": "kalypso-rg-flux"`, `"hostName": "`+nfd+`"`, 1)
		if code, body, _ := h.do("POST", "/api/v1/apply", "["+desc+","+rec+"]"); code != 200 {
			t.Fatal(code, body)
		}
		// The same host, spelled the other way: one host.
		rec2 := strings.Replace(rec, nfd, nfc, 1)
		if code, body, _ := h.do("POST", "/api/v1/reconcilers", rec2); code != 200 || decodeResult(t, body).Items[0].Changed {
			t.Errorf("the same report with the host precomposed: %d %s", code, body)
		}
		if n := h.count("hosts"); n != 1 {
			t.Errorf("%d hosts, want 1", n)
		}
		for _, spelling := range []string{nfc, nfd, " " + nfd + " "} {
			q := url.QueryEscape(spelling)
			for _, path := range []string{
				"/api/v1/reports/host-state?host=" + q,
				"/api/v1/reports/host-state?environment=" + q,
				"/api/v1/reports/environment-state?target=" + q,
			} {
				code, body, _ := h.do("GET", path, "")
				var l struct{ Items []json.RawMessage }
				if err := json.Unmarshal([]byte(body), &l); code != 200 || err != nil || len(l.Items) != 1 {
					t.Errorf("%s: %d, %d rows, want 1: %s", path, code, len(l.Items), body)
				}
			}
			code, body, _ := h.do("GET", "/api/v1/rollouts?target="+q+"&environment="+q+"&version=0.0.1", "")
			if code != 200 || !strings.Contains(body, `"succeeded": 1`) {
				t.Errorf("gate with target %+q: %d %s", spelling, code, body)
			}
		}
		code, body, _ := h.do("GET", "/api/v1/environments?order="+url.QueryEscape(nfd+",prod"), "")
		if code != 200 || !strings.Contains(body, `"`+nfc+`"`) {
			t.Errorf("environments: %d %s", code, body)
		}
		code, body, hdr := h.do("GET", "/api/v1/reports/host-state?host=%20", "")
		if p := problem(t, code, body, hdr, 400); !namesField(p, "host", -1) {
			t.Errorf("a blank host filter: %s", body)
		}
	})
}

// Logs never carry a huge value whole: a request whose path holds a
// 200 KB host name fails (the store is closed), and the error line is cut.
func TestErrorLogsAreBounded(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	var logs bytes.Buffer
	srv := httptest.NewServer(api.New(st, ingest.New(st), api.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler())
	t.Cleanup(srv.Close)
	h := &hub{t: t, st: st, srv: srv}
	st.Close()
	huge := strings.Repeat("h", 200_000)
	if code, _, _ := h.do("DELETE", "/api/v1/hosts/"+huge+"/reconcilers/x", ""); code < 500 {
		t.Errorf("DELETE with the store closed: %d", code)
	}
	if !strings.Contains(logs.String(), "hhhh") {
		t.Fatalf("nothing logged: %q", logs.String())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 10_000 {
			t.Errorf("a log line of %d bytes: %.200s…", len(line), line)
		}
	}
}
