package model

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Text rules, the same for every input and every store engine:
//
//   - Text must be valid UTF-8 and must not contain NUL. Invalid bytes are
//     refused rather than replaced with U+FFFD, so that two different
//     names never become one.
//   - Names (workspaces, applications, workloads, environments, targets,
//     versions, hosts, reconcilers, label keys) are trimmed of surrounding
//     white space, must not contain control characters, and are stored in
//     Unicode normalization form C: "café" typed as one code point or as
//     "e" + a combining accent is one name. Names have no length limit.
//   - A status message keeps at most MaxStatusMessage bytes: a longer one
//     is cut at a character boundary and ends with a marker saying how
//     long it was; the full length is kept beside it.

// MaxStatusMessage is the most bytes of a status message the hub keeps.
const MaxStatusMessage = 4096

// TextProblem says what makes s unacceptable as text, or "".
func TextProblem(s string) string {
	if !utf8.ValidString(s) {
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				return fmt.Sprintf("is not valid UTF-8 (byte %d): send text in UTF-8", i)
			}
			i += n
		}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Sprintf("contains a NUL character (byte %d): remove it", i)
	}
	return ""
}

// NameProblem says what makes s unacceptable as a name, or "".
func NameProblem(s string) string {
	if p := TextProblem(s); p != "" {
		return p
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return fmt.Sprintf("contains a control character (byte %d): names are printable text", i)
	}
	return ""
}

// NormalizeName is the stored form of a name: trimmed, in Unicode
// normalization form C. The name must pass NameProblem.
func NormalizeName(s string) string {
	return norm.NFC.String(strings.TrimSpace(s))
}

// Name checks a name field, recording a problem in v, and returns its
// stored form. required names must not be empty.
func (v *ValidationError) Name(field, value string, required bool) string {
	if p := NameProblem(value); p != "" {
		v.Add(field, "%s", p)
		return ""
	}
	n := NormalizeName(value)
	if required && n == "" {
		v.Add(field, "is required and must not be empty")
	}
	return n
}

// Text checks a free-text field (a status message), recording a problem
// in v.
func (v *ValidationError) Text(field, value string) string {
	if p := TextProblem(value); p != "" {
		v.Add(field, "%s", p)
		return ""
	}
	return value
}

// Labels checks label keys (names) and values (text) and returns them
// normalized; nil stays nil.
func (v *ValidationError) Labels(field string, labels map[string]string) map[string]string {
	if labels == nil {
		return nil
	}
	out := make(map[string]string, len(labels))
	for k, val := range labels {
		nk := v.Name(field+"["+Quote(k)+"]", k, true)
		out[nk] = v.Text(field+"["+Quote(k)+"]", val)
	}
	return out
}

// TruncateMessage cuts a status message to MaxStatusMessage bytes. It
// returns the message to keep and, when it was cut, its full length in
// bytes (else 0).
func TruncateMessage(msg string) (string, int) {
	if len(msg) <= MaxStatusMessage {
		return msg, 0
	}
	marker := fmt.Sprintf(" … [truncated: %d bytes]", len(msg))
	cut := MaxStatusMessage - len(marker)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + marker, len(msg)
}

// Quote shortens a value for an error message: at most 64 bytes of it,
// quoted, so that a hostile or huge value is never echoed whole.
func Quote(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}
