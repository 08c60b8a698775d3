package web

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// statusView is how a status shows: a colour (class), an icon and words,
// so that it reads without colour too.
type statusView struct {
	Class string
	Icon  string
	Label string
}

// statusOf shows a deployment status, a gate host state or an Overview
// cell state. Unknown and empty states (such as hosts that have not
// reported yet) show grey.
func statusOf(s string) statusView {
	switch s {
	case "success", "succeeded", reports.CellUpToDate:
		label := "success"
		if s == reports.CellUpToDate {
			label = "up to date"
		}
		return statusView{"st-ok", "✓", label}
	case "failure", "failed", reports.CellFailing:
		label := "failed"
		if s == reports.CellFailing {
			label = "failing"
		}
		return statusView{"st-fail", "✕", label}
	case "in_progress", reports.CellRolling:
		label := "in progress"
		if s == reports.CellRolling {
			label = "rolling out"
		}
		return statusView{"st-prog", "◔", label}
	case reports.CellDrifted:
		return statusView{"st-drift", "⚠", "drifted"}
	case "partial":
		return statusView{"st-partial", "◑", "some hosts"}
	case reports.CellNoHosts:
		return statusView{"st-none", "∅", "no hosts"}
	case "", "not_reported":
		return statusView{"st-none", "○", "not yet reported"}
	}
	return statusView{"st-none", "?", strings.ReplaceAll(s, "_", " ")}
}

// driftLabel says what a drift kind means.
func driftLabel(kind string) string {
	switch kind {
	case reports.DriftVersion:
		return "other version"
	case reports.DriftFailed:
		return "failed"
	case reports.DriftUnknown:
		return "unknown commit"
	case reports.DriftUnplaced:
		return "no target"
	case reports.DriftStale:
		return "stale"
	case reports.DriftNoHosts:
		return "no hosts"
	case reports.DriftNotReported:
		return "not yet reported"
	}
	return strings.ReplaceAll(kind, "_", " ")
}

// ellipsis cuts s to n characters, the last of them "…", when it is longer.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// absTime is a time as the UI writes it in full.
func absTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// timeTag shows a time relative to now ("3 h ago"), with the absolute time
// on hover; the page's script keeps it current and shows the hover in local
// time.
func timeTag(t time.Time, now time.Time) template.HTML {
	if t.IsZero() {
		return `<span class="muted">—</span>`
	}
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
		t.UTC().Format(time.RFC3339), absTime(t), template.HTMLEscapeString(relative(t, now))))
}

// relative says how long ago (or ahead) t is.
func relative(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + humanDuration(-d.Seconds())
	}
	if d < 45*time.Second {
		return "just now"
	}
	return humanDuration(d.Seconds()) + " ago"
}

// humanDuration writes seconds as the two largest units: "3 d 4 h",
// "12 min", "40 s".
func humanDuration(sec float64) string {
	if math.IsNaN(sec) || sec < 0 {
		return "—"
	}
	s := int64(math.Round(sec))
	units := []struct {
		n    int64
		name string
	}{{86400, "d"}, {3600, "h"}, {60, "min"}, {1, "s"}}
	var parts []string
	for _, u := range units {
		if s >= u.n && len(parts) < 2 {
			parts = append(parts, fmt.Sprintf("%d %s", s/u.n, u.name))
			s %= u.n
		} else if len(parts) > 0 {
			break
		}
	}
	if len(parts) == 0 {
		return "0 s"
	}
	return strings.Join(parts, " ")
}

// shortSHA is the first 8 characters of a commit, as forges abbreviate.
func shortSHA(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// commitTag shows a commit abbreviated, linked to its forge page when the
// repository is on a known forge, the full commit on hover.
func (s *Server) commitTag(repo, sha string) template.HTML {
	if sha == "" {
		return `<span class="muted">—</span>`
	}
	short, full := template.HTMLEscapeString(shortSHA(sha)), template.HTMLEscapeString(sha)
	if u := commitURL(repo, sha, s.opts.Forges); u != "" {
		return template.HTML(fmt.Sprintf(`<a class="sha" href="%s" title="%s (opens the repository)" rel="noreferrer noopener" target="_blank">%s</a>`,
			template.HTMLEscapeString(u), full, short))
	}
	return template.HTML(fmt.Sprintf(`<code class="sha" title="%s">%s</code>`, full, short))
}

// funcs are the template functions.
func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"status":  statusOf,
		"drift":   driftLabel,
		"abs":     absTime,
		"dur":     humanDuration,
		"short":   shortSHA,
		"link":    link,
		"commit":  s.commitTag,
		"targetq": targetValues,
		"filterq": filterValues,
		"ago":     func(t time.Time) template.HTML { return timeTag(t, s.rep.Now()) },
		"agop": func(t *time.Time) template.HTML {
			if t == nil {
				return `<span class="muted">—</span>`
			}
			return timeTag(*t, s.rep.Now())
		},
		"durp": func(sec *float64) string {
			if sec == nil {
				return "—"
			}
			return humanDuration(*sec)
		},
		"pct": func(n, total int) int {
			if total <= 0 {
				return 0
			}
			return n * 100 / total
		},
		"percent": func(r *float64) string {
			if r == nil {
				return "—"
			}
			return fmt.Sprintf("%.0f %%", *r*100)
		},
		"perday": func(f float64) string { return fmt.Sprintf("%.2f", f) },
		"compare": func(repo, from, to string) string {
			return compareURL(repo, from, to, s.opts.Forges)
		},
		"commitURL": func(repo, sha string) string { return commitURL(repo, sha, s.opts.Forges) },
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return fmt.Sprintf("%d %s", n, one)
			}
			return fmt.Sprintf("%d %s", n, many)
		},
		"join":     strings.Join,
		"list":     func(xs ...string) []string { return xs },
		"display":  displayRepo,
		"hostlink": func(host string) string { return "/hosts/" + url.PathEscape(host) },
		"mul":      func(a, b int) int { return a * b },
		"addf":     func(a, b float64) float64 { return a + b },
		"unknownFlag": func(version string) string {
			if version == "" {
				return "1"
			}
			return ""
		},
		"versionIf": func(known bool, v string) string {
			if known {
				return v
			}
			return ""
		},
		"sides": func(fromEnv string, from reports.ComparisonSide, toEnv string, to reports.ComparisonSide) [][2]any {
			return [][2]any{{fromEnv, from}, {toEnv, to}}
		},
		"add": func(a, b int) int { return a + b },
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
		"query": func(q url.Values, k string) string { return q.Get(k) },
		"has": func(list []string, v string) bool {
			for _, x := range list {
				if x == v {
					return true
				}
			}
			return false
		},
	}
}

// displayRepo shortens a repository URL for reading: no scheme.
func displayRepo(repo string) string {
	_, rest, ok := strings.Cut(repo, "://")
	if !ok {
		return repo
	}
	return rest
}
