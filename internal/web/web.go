// Package web serves Tidemark's web UI: server-rendered pages over the same
// reports as the API (internal/reports), with a little JavaScript (vendored
// htmx) for live updates. Every asset is embedded; nothing is fetched from
// elsewhere at run time. Every view is a URL: filters, time travel and
// paging live in the query string.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/reports"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the UI.
type Options struct {
	// Auth is the API's authenticator: when set, the UI asks for a read
	// token once and keeps it in a session cookie; nil leaves the UI open,
	// as the API is.
	Auth   api.Authenticator
	Logger *slog.Logger
	// Forges maps a repository host to its forge ("github", "gitlab",
	// "bitbucket", "azure"), for self-hosted forges whose host does not
	// say which they are; commit links use it.
	Forges map[string]string
	// StaleAfter is the stale limit the Drift page shows (0: the reports'
	// default).
	StaleAfter time.Duration
}

// Server is the web UI.
type Server struct {
	rep     *reports.Service
	opts    Options
	log     *slog.Logger
	pages   map[string]*template.Template
	assets  map[string]asset
	version string // digest of the assets, for cache busting
}

// asset is an embedded static file with its ETag.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New returns the UI over a reports service.
func New(rep *reports.Service, opts Options) (*Server, error) {
	for host, forge := range opts.Forges {
		switch forge {
		case ForgeGitHub, ForgeGitLab, ForgeBitbucket, ForgeAzure:
		default:
			return nil, fmt.Errorf("forge %s=%s: use github, gitlab, bitbucket or azure", host, forge)
		}
	}
	s := &Server{rep: rep, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.loadAssets(); err != nil {
		return nil, err
	}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) loadAssets() error {
	s.assets = map[string]asset{}
	all := sha256.New()
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".md") || strings.HasSuffix(p, ".txt") {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		all.Write(sum[:])
		ct := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}[path.Ext(p)]
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		s.assets["/"+p] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	s.version = hex.EncodeToString(all.Sum(nil)[:6])
	return err
}

// Handler routes the UI. Mount it at "/" beside the API (see Combine).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /static/", s.static)
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /login/check", s.loginCheck)
	mux.HandleFunc("POST /logout", s.logout)

	page := func(pattern string, h pageHandler) { mux.Handle(pattern, s.requireSession(s.serve(h))) }
	page("GET /{$}", s.overview)
	page("GET /overview/headline", s.headline)
	page("GET /environments", s.environmentState)
	page("GET /hosts", s.hostState)
	page("GET /hosts/{host}", s.host)
	page("GET /history", s.history)
	page("GET /discrepancies", s.discrepancies)
	page("GET /drift", s.drift)
	page("GET /dora", s.dora)
	page("GET /rollout", s.rollout)
	page("GET /search", s.search)
	page("GET /compare", s.compare)
	page("GET /", s.notFound)
	return securityHeaders(mux)
}

// Combine serves the API under /api/, /healthz and /readyz and the UI
// everywhere else, from one listener.
func Combine(apiHandler, ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", apiHandler)
	mux.Handle("/healthz", apiHandler)
	mux.Handle("/readyz", apiHandler)
	mux.Handle("/", ui)
	return mux
}

// contentSecurityPolicy allows only the hub's own scripts and styles: no
// inline script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers every UI response carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.ServeHTTP(w, r)
	})
}

// static serves embedded assets; URLs carry ?v=<digest>, so they may be
// cached for long.
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	if r.URL.Query().Get("v") == s.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// pageHandler answers one page: the view to render, or an error.
type pageHandler func(r *http.Request) (*view, error)

// view is what a page handler hands to the layout.
type view struct {
	Template string // the page template, e.g. "environments"
	Title    string
	Nav      string // the active navigation entry
	// Refresh, when > 0, reloads the page's live region every so many
	// seconds while the tab is visible.
	Refresh int
	// FullReload reloads the whole page instead (a page whose next state
	// is another page, such as the welcome page once data arrives).
	FullReload bool
	Status     int // HTTP status, default 200
	Data       any
	// Tables are the page's downloadable tables, by name: format=csv or
	// format=json (with table=name when there are several) exports one
	// instead of rendering the page.
	Tables map[string]table
}

// serve runs a page handler: an export when format= asks for one, else the
// page, and errors as pages that say what went wrong.
func (s *Server) serve(h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := h(r)
		if err != nil {
			s.renderError(w, r, err)
			return
		}
		if format := r.URL.Query().Get("format"); format != "" && format != "html" {
			s.export(w, r, v, format)
			return
		}
		s.render(w, r, v)
	})
}

// inputError is bad input from the URL: the page says which parameter and
// how to fix it.
type inputError struct{ param, problem string }

func (e *inputError) Error() string { return e.param + ": " + e.problem }

// renderError shows an error as a page: bad input 400, unknown things 404,
// anything else 503 (the store is the only thing that fails), logged.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	var ie *inputError
	var ge *reports.GateError
	v := &view{Template: "error", Title: "Something went wrong"}
	d := errorData{}
	switch {
	case errors.As(err, &ie):
		v.Status, v.Title = http.StatusBadRequest, "Invalid "+ie.param
		d.Message, d.Param = ie.Error(), ie.param
	case errors.Is(err, reports.ErrBadCursor):
		v.Status, v.Title = http.StatusBadRequest, "Invalid page link"
		d.Message = "This page link is not one the hub made (or it is too old). Start again from the first page."
	case errors.As(err, &ge):
		v.Status, v.Title = http.StatusBadRequest, "No such rollout"
		if ge.NotFound {
			v.Status = http.StatusNotFound
		}
		d.Message, d.Param = ge.Error(), ge.Param
	case errors.Is(err, reports.ErrNotFound):
		v.Status, v.Title = http.StatusNotFound, "Not found"
		d.Message = err.Error()
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		return // the browser went away
	default:
		s.log.Error("page failed", "path", r.URL.Path, "err", err)
		v.Status, v.Title = http.StatusServiceUnavailable, "The hub could not answer"
		d.Message = "The store did not answer this request. It is safe to reload the page; if it keeps failing, check the hub's log and /readyz."
		w.Header().Set("Retry-After", "5")
	}
	v.Data = d
	s.render(w, r, v)
}

type errorData struct {
	Message string
	Param   string
}

func (s *Server) notFound(r *http.Request) (*view, error) {
	return &view{Template: "error", Title: "Page not found", Status: http.StatusNotFound,
		Data: errorData{Message: "There is no page at " + r.URL.Path + ". The pages are listed at the top."}}, nil
}
