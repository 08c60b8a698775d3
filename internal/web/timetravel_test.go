package web_test

import (
	"html"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A time travel given as a duration ago keeps it in the form (sending the
// form again moves with the clock) and links the moment's permalink, an
// absolute time that shows the same view.
func TestTimeTravelPermalink(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	smallFleet(t, st)
	srv := newUI(t, st, nil)
	for _, page := range []string{"/environments", "/hosts"} {
		asked := time.Now()
		resp, body := get(t, noRedirect, srv.URL+page+"?environment=prod&at=2d")
		if resp.StatusCode != 200 || !strings.Contains(body, "Time travel") {
			t.Fatalf("GET %s?at=2d: %d\n%.600s", page, resp.StatusCode, body)
		}
		if !strings.Contains(body, `name="at" value="2d"`) {
			t.Errorf("%s?at=2d: the form does not keep 2d:\n%s", page, between(body, `<label class="at">`, `</label>`))
		}
		href := html.UnescapeString(between(body, `<a href="`+page+`?`, `" rel="bookmark">Permalink</a>`))
		q, err := url.ParseQuery(href)
		if err != nil || q.Get("environment") != "prod" {
			t.Fatalf("%s: permalink query %q (%v), want the filters kept", page, href, err)
		}
		at, err := time.Parse(time.RFC3339, q.Get("at"))
		if want := asked.Add(-48 * time.Hour); err != nil || at.Sub(want).Abs() > time.Minute {
			t.Fatalf("%s: permalink at=%q (%v), want an absolute time near %v", page, q.Get("at"), err, want.UTC())
		}
		resp, body = get(t, noRedirect, srv.URL+page+"?"+href)
		if resp.StatusCode != 200 || !strings.Contains(body, "Time travel") || !strings.Contains(body, `name="at" value="`+q.Get("at")+`"`) {
			t.Errorf("GET the permalink %s?%s: %d, want the same moment in the form\n%.600s", page, href, resp.StatusCode, body)
		}
	}
}
