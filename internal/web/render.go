package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// parseTemplates parses each page template with the layout and partials.
func (s *Server) parseTemplates() error {
	s.pages = map[string]*template.Template{}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New(name).Funcs(s.funcs()).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", f)
		if err != nil {
			return err
		}
		s.pages[name] = t
	}
	return nil
}

// nav is the navigation bar: path, label, and the key of its "g" shortcut.
var nav = []struct{ Path, Label, Key string }{
	{"/", "Overview", "o"},
	{"/environments", "Environments", "e"},
	{"/hosts", "Hosts", "h"},
	{"/history", "History", "y"},
	{"/discrepancies", "Discrepancies", "m"},
	{"/drift", "Drift", "d"},
	{"/dora", "DORA", "r"},
	{"/compare", "Compare", "c"},
}

// layoutData is what the layout reads besides the page's view.
type layoutData struct {
	*view
	Menu    any
	Path    string
	Query   url.Values
	URL     string // path and query of this page
	Asset   string // ?v= of static URLs
	AuthOn  bool
	CSRF    string
	Search  string
	Now     time.Time
	Exports []exportLink
}

type exportLink struct {
	Label, CSV, JSON string
}

// render writes a page: the view inside the layout.
func (s *Server) render(w http.ResponseWriter, r *http.Request, v *view) {
	t := s.pages[v.Template]
	if t == nil {
		s.log.Error("no template", "template", v.Template)
		http.Error(w, "the page's template is missing", http.StatusInternalServerError)
		return
	}
	d := layoutData{view: v, Menu: nav, Path: r.URL.Path, Query: r.URL.Query(), URL: r.URL.RequestURI(), Asset: s.version,
		AuthOn: s.opts.Auth != nil, Search: r.URL.Query().Get("q"), Now: s.rep.Now()}
	if d.AuthOn {
		d.CSRF = s.csrfToken(w, r)
	}
	for _, name := range sortedTableNames(v.Tables) {
		tb := v.Tables[name]
		q := r.URL.Query()
		q.Del("cursor")
		q.Set("table", name)
		q.Set("format", "csv")
		csv := r.URL.Path + "?" + q.Encode()
		q.Set("format", "json")
		d.Exports = append(d.Exports, exportLink{Label: tb.label, CSV: csv, JSON: r.URL.Path + "?" + q.Encode()})
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		s.log.Error("render", "template", v.Template, "err", err)
		http.Error(w, "the page could not be rendered; the hub's log says why", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "HX-Request")
	status := v.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// filterBar is the state of a page's filter form.
type filterBar struct {
	Action string
	Filter reports.Filter
	Names  reports.Names
	// Fields are the filters the page takes (see filterParams), and
	// Extra its other parameters to keep when the form is sent.
	Fields []string
	AtOK   bool // the page travels in time
	// At, Since and Until are the times as typed (a duration ago stays
	// one when the form is sent again).
	At, Since, Until string
	// Assigned: the time range bounds when versions were assigned
	// (History, DORA), not when a status began.
	Assigned bool
	Hidden   url.Values
}

// Has reports whether the bar shows a field.
func (b filterBar) Has(field string) bool {
	for _, f := range b.Fields {
		if f == field {
			return true
		}
	}
	return false
}

// Active reports whether any filter is set.
func (b filterBar) Active() bool {
	f := b.Filter
	return f != (reports.Filter{}) || b.At != ""
}

// newFilterBar reads the names for the pickers.
func (s *Server) newFilterBar(r *http.Request, action string, f reports.Filter, fields ...string) (filterBar, error) {
	names, err := s.rep.Names(r.Context())
	if err != nil {
		return filterBar{}, err
	}
	q := r.URL.Query()
	return filterBar{Action: action, Filter: f, Names: names, Fields: fields, At: q.Get("at"), Since: q.Get("since"), Until: q.Get("until")}, nil
}
