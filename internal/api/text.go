package api

// Hostile bytes stop at the edge, the same for both store engines: a
// request body must be UTF-8 JSON whose strings decode to what was sent,
// every query parameter and path value must be valid text, and a cursor
// must be one the hub could have issued. Each refusal is a 400 naming the
// parameter, or the byte of the body.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// bodyTextProblem says what makes a request body unacceptable before it is
// decoded as JSON, or "". encoding/json would silently replace bytes that
// are not UTF-8, and \u escapes of lone UTF-16 surrogates, with U+FFFD,
// so that two different names could become one: both are refused. A NUL
// byte is not JSON; a \u0000 escape is left to the checks of each field,
// which name it.
func bodyTextProblem(body []byte) string {
	if !utf8.Valid(body) {
		for i := 0; i < len(body); {
			r, n := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && n <= 1 {
				return fmt.Sprintf("is not valid UTF-8 at byte %d: send JSON in UTF-8", i)
			}
			i += n
		}
	}
	if i := bytes.IndexByte(body, 0); i >= 0 {
		return fmt.Sprintf("contains a NUL byte at byte %d: remove it", i)
	}
	inString := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(body) && body[i+1] != 'u' {
				i++ // a one-character escape, such as \" or \\
				continue
			}
			r, ok := hex4(body, i+2)
			if !ok {
				continue // not JSON: the decoder says so
			}
			switch {
			case r >= 0xD800 && r < 0xDC00: // high surrogate: a low one must follow
				if low, ok := hex4(body, i+8); ok && body[i+6] == '\\' && body[i+7] == 'u' && low >= 0xDC00 && low < 0xE000 {
					i += 11
					continue
				}
				return fmt.Sprintf("has a lone UTF-16 surrogate %s at byte %d: escape a character beyond U+FFFF as a surrogate pair, or send it as UTF-8", body[i:i+6], i)
			case r >= 0xDC00 && r < 0xE000:
				return fmt.Sprintf("has a lone UTF-16 surrogate %s at byte %d: escape a character beyond U+FFFF as a surrogate pair, or send it as UTF-8", body[i:i+6], i)
			}
			i += 5
		}
	}
	return ""
}

// hex4 reads the four hexadecimal digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// identifier is a key that a field path can name after a dot.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkJSONText records in v every string of a decoded JSON value, keys
// included, that is not acceptable text, naming it by its path (such as
// spec.subscriptions[2] or metadata.labels["app.kubernetes.io/name"]).
func checkJSONText(v *model.ValidationError, path string, x any) {
	switch x := x.(type) {
	case string:
		if p := model.TextProblem(x); p != "" {
			v.Add(path, "%s", p)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			p := path + "[" + model.Quote(k) + "]"
			if identifier.MatchString(k) {
				p = strings.TrimPrefix(path+"."+k, ".")
			}
			if pr := model.TextProblem(k); pr != "" {
				v.Add(p, "the key %s", pr)
			}
			checkJSONText(v, p, x[k])
		}
	case []any:
		for i, e := range x {
			checkJSONText(v, fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

// queryProblems checks a query string: it must decode (no malformed
// escape), name each parameter once, and carry only valid text. Every
// problem is named by its parameter ("query" when the string cannot be
// read or a name is not text).
func queryProblems(raw string) []ProblemField {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return []ProblemField{{Field: "query", Problem: "cannot be read (" + err.Error() + "): percent-encode the values"}}
	}
	var out []ProblemField
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if p := model.TextProblem(k); p != "" {
			out = append(out, ProblemField{Field: "query", Problem: "a parameter name " + p})
			continue
		}
		vs := q[k]
		if len(vs) > 1 {
			out = append(out, ProblemField{Field: k, Problem: fmt.Sprintf("is given %d times: give it once", len(vs))})
			continue
		}
		if p := model.TextProblem(vs[0]); p != "" {
			out = append(out, ProblemField{Field: k, Problem: p})
		}
	}
	return out
}

// wildcards are the names of a route pattern's path wildcards.
var wildcards = regexp.MustCompile(`\{([^{}.]+)(?:\.\.\.)?\}`)

// RequestProblems checks what a request carries besides its body, after a
// ServeMux routed it: each path value of its route and its query string
// (see queryProblems) must be valid text. Other handlers of the hub (the
// web UI) call it too, so that no engine sees such bytes.
func RequestProblems(r *http.Request) []ProblemField {
	var problems []ProblemField
	for _, m := range wildcards.FindAllStringSubmatch(r.Pattern, -1) {
		if p := model.TextProblem(r.PathValue(m[1])); p != "" {
			problems = append(problems, ProblemField{Field: m[1], Problem: p})
		}
	}
	return append(problems, queryProblems(r.URL.RawQuery)...)
}

// checkRequest answers 400 before h runs when the query string or a path
// value of the matched route is not valid text.
func checkRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if problems := RequestProblems(r); len(problems) > 0 {
			writeProblem(w, r, Problem{Type: problemBase + "invalid-query", Title: "Invalid query", Status: http.StatusBadRequest,
				Detail: "Parameters must be valid UTF-8 text without NUL characters, each given once.", Errors: problems})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// cursorProblem checks a page cursor before the reports read it, or says
// "". The hub issues cursors as unpadded base64url of UTF-8 text (JSON
// for some reports): anything else was not issued by the hub, and text in
// a forged one must not reach the store.
func cursorProblem(c string) string {
	const restart = "is not a cursor this hub issued: start again without it"
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || model.TextProblem(string(b)) != "" {
		return restart
	}
	if len(b) > 0 && b[0] == '{' {
		var x any
		if json.Unmarshal(b, &x) != nil {
			return restart
		}
		var v model.ValidationError
		if checkJSONText(&v, "", x); v.Err() != nil {
			return restart
		}
	}
	return ""
}
