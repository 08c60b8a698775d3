package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// A body bodyTextProblem accepts decodes to exactly the text it holds:
// encoding/json adds no U+FFFD of its own (from bytes that are not UTF-8
// or from lone surrogate escapes). A body it refuses has bytes that are
// not UTF-8, a NUL, or a lone surrogate escape. decodePush never panics,
// and each of its errors is one the API answers 4xx.
func FuzzBodyText(f *testing.F) {
	for _, s := range []string{
		`{"a":"b"}`, `["\ud83d\ude80"]`, `["\ud800"]`, `["\udc00\ud800"]`, `["\\ud800"]`, `["\ud800\u0041"]`,
		"[\"\xff\"]", "[\"a\x00\"]", `["\ufffd"]`, "[\"\xef\xbf\xbd\"]", `{"kind":"List","items":[{"kind":"Reconciler"}]}`,
		`["\u"]`, `"\`, `[{"spec":{"hostName":"\u0000"}}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		problem := bodyTextProblem(body)
		var x any
		if problem == "" && json.Unmarshal(body, &x) == nil {
			// Every U+FFFD decoded was in the body: as UTF-8 or escaped.
			sent := bytes.Count(body, []byte("\ufffd")) + strings.Count(strings.ToLower(string(body)), `\ufffd`)
			if got := countReplacement(x); got > sent {
				t.Errorf("%q decodes with %d U+FFFD, %d sent", body, got, sent)
			}
		}
		if problem != "" && utf8.Valid(body) && !bytes.Contains(body, []byte{0}) && !strings.Contains(problem, "surrogate") {
			t.Errorf("%q refused: %s", body, problem)
		}
		for _, kinds := range [][]string{{resource.KindReconciler}, {resource.KindDeploymentDescriptor, resource.KindReconciler}, {resource.KindAzureResourceGraph}} {
			_, err := decodePush(bytes.NewReader(body), kinds...)
			var bad *badRequest
			if _, input := inputProblem(err); err != nil && !input && !errors.As(err, &bad) {
				t.Errorf("%q: %v is neither invalid input nor a bad request", body, err)
			}
		}
	})
}

// countReplacement counts U+FFFD in every string of a decoded JSON value.
func countReplacement(x any) int {
	switch x := x.(type) {
	case string:
		return strings.Count(x, "\ufffd")
	case []any:
		n := 0
		for _, e := range x {
			n += countReplacement(e)
		}
		return n
	case map[string]any:
		n := 0
		for k, e := range x {
			n += strings.Count(k, "\ufffd") + countReplacement(e)
		}
		return n
	}
	return 0
}

// Whatever the query string, the filters, the gate's parameters and the
// promotion order that parse are valid text with names in their stored
// form, an accepted cursor is base64url of valid text, and every error
// names its parameter.
func FuzzQueryParams(f *testing.F) {
	for _, q := range []string{
		"host=a&limit=5&cursor=bzox", "workspace=cafe%CC%81&status=success", "since=2026-01-02T15:04:05Z&until=x",
		"target=drone&version=1.0.0&commit=5ce0653", "endpoint=https%3A%2F%2Fgithub.com%2Fa%2Fb%2Fdev%2Fdrone",
		"order=prod,%20dev,,qa", "host=%00", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{"h":"\u0000"}`)),
		"host=%20", "limit=-1", "limit=99999999999999999999",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		params := map[string]bool{"query": true}
		for k := range q {
			params[k] = true
		}
		checkErr := func(err error) {
			var qe *queryError
			if !errors.As(err, &qe) || !params[qe.param] {
				t.Fatalf("%q: %v does not name a parameter of the query", raw, err)
			}
		}
		isName := func(what, s string) {
			if s != "" && (model.NameProblem(s) != "" || model.NormalizeName(s) != s) {
				t.Fatalf("%q: %s %q is not a name in its stored form", raw, what, s)
			}
		}
		if f, p, err := parseFilter(q); err != nil {
			checkErr(err)
		} else {
			for _, n := range []string{f.Workspace, f.Application, f.Environment, f.Workload, f.Target, f.Host} {
				isName("filter", n)
			}
			if p.Cursor != "" {
				b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
				if err != nil || model.TextProblem(string(b)) != "" {
					t.Fatalf("%q: cursor %q accepted", raw, p.Cursor)
				}
			}
			if p.Limit < 0 {
				t.Fatalf("%q: limit %d", raw, p.Limit)
			}
		}
		if g, err := parseGateQuery(q); err != nil {
			checkErr(err)
		} else {
			for _, n := range []string{g.Target, g.Workload, g.Application, g.Workspace, g.Environment, g.Version} {
				isName("gate parameter", n)
			}
			if model.TextProblem(g.Endpoint) != "" || model.TextProblem(g.Commit) != "" {
				t.Fatalf("%q: gate endpoint %q or commit %q accepted", raw, g.Endpoint, g.Commit)
			}
		}
		if order, err := parseOrder(q); err != nil {
			checkErr(err)
		} else {
			for _, e := range order {
				if e == "" {
					t.Fatalf("%q: an empty environment in the order", raw)
				}
				isName("environment", e)
			}
		}
		for _, p := range queryProblems(raw) {
			if !params[p.Field] {
				t.Fatalf("%q: problem names %q, not a parameter of the query", raw, p.Field)
			}
		}
	})
}
