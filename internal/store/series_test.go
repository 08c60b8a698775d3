package store

import (
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"
)

// The groups as encode writes them read back the same, by the fast path
// and by encoding/json alike; anything else is read by encoding/json or
// refused, never misread.
func FuzzParseSeriesGroups(f *testing.F) {
	f.Add("a1b2", "success", 3, "sha1:ff", "in_progress", 1)
	f.Add("quote\"d", "fail\\ure", 0, "ünïcode\t", "", 12)
	f.Add(`["x",`, `"]`, -1, "", "]", 7)
	f.Fuzz(func(t *testing.T, c1, s1 string, n1 int, c2, s2 string, n2 int) {
		if !utf8.ValidString(c1) || !utf8.ValidString(s1) || !utf8.ValidString(c2) || !utf8.ValidString(s2) {
			t.Skip("commits and statuses are checked text: JSON would replace the invalid bytes")
		}
		v := seriesValue{{c1, s1}: n1}
		v[seriesKey{c2, s2}] += n2
		if v[seriesKey{c2, s2}] == 0 {
			delete(v, seriesKey{c2, s2})
		}
		enc := v.encode()
		fast, ok := parseEncodedGroups(enc)
		if !ok {
			t.Fatalf("%q: the fast path refused what encode wrote", enc)
		}
		var raw [][3]any
		if err := json.Unmarshal([]byte(enc), &raw); err != nil {
			t.Fatalf("%q is not JSON: %v", enc, err)
		}
		back := seriesValue{}
		for _, g := range fast {
			back[seriesKey{g.Commit, g.Status}] = g.Hosts
		}
		if len(back) != len(v) || len(raw) != len(v) {
			t.Fatalf("%q: read %v (%d by encoding/json), want %v", enc, back, len(raw), v)
		}
		for k, n := range v {
			if back[k] != n {
				t.Fatalf("%q: read %v, want %v", enc, back, v)
			}
		}
		// Any string: the fast path reads what encoding/json reads, or
		// leaves it to it.
		for _, s := range []string{c1, s1, c2 + s2} {
			gs, ok := parseEncodedGroups(s)
			if !ok {
				continue
			}
			var raw [][3]any
			if err := json.Unmarshal([]byte(s), &raw); err != nil || len(raw) != len(gs) {
				t.Fatalf("%q: fast path read %v, encoding/json %v (%v)", s, gs, raw, err)
			}
			for i, r := range raw {
				if r[0] != gs[i].Commit || r[1] != gs[i].Status || r[2] != float64(gs[i].Hosts) {
					t.Fatalf("%q: fast path read %v, encoding/json %v", s, gs, raw)
				}
			}
		}
		if gs, err := ParseSeriesGroups(enc); err != nil || !slices.Equal(gs, fast) {
			t.Fatalf("%q: ParseSeriesGroups %v %v", enc, gs, err)
		}
	})
}
