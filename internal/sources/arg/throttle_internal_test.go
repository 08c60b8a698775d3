package arg

import (
	"testing"
	"time"
)

func TestParseResetsAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"00:00:05": 5 * time.Second, "00:01:00.5": 60500 * time.Millisecond, "3": 3 * time.Second} {
		if got, ok := parseResetsAfter(in); !ok || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "soon", "-1", "99:00:00", "1:2", "1e9"} {
		if got, ok := parseResetsAfter(in); ok {
			t.Errorf("%q parsed as %v", in, got)
		}
	}
}
