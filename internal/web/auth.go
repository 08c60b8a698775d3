package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/api"
)

// Sessions: when the API has tokens, the UI asks for a read token once and
// keeps it in a cookie that scripts cannot read (HttpOnly) and that no
// other site can make the browser send (SameSite=Strict). Every request
// checks the token with the API's authenticator, so the UI grants exactly
// what the API grants that token, and a revoked token stops working at
// once. The cookie holds the token rather than a server-side session id so
// that any replica of the hub accepts it.
//
// The only requests that change anything (log in, log out) are POSTs that
// must come from the hub's own pages: same origin, and a CSRF token that
// matches a cookie (double submit).

const (
	sessionCookie = "tidemark_session"
	csrfCookie    = "tidemark_csrf"
	sessionTTL    = 12 * time.Hour
	maxFormBytes  = 64 << 10
)

// requireSession sends requests without a valid session to the login
// page; with no authenticator the UI is open.
func (s *Server) requireSession(h http.Handler) http.Handler {
	if s.opts.Auth == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.checkSession(r)
		switch {
		case err == nil:
			h.ServeHTTP(w, r)
		case errors.Is(err, api.ErrUnauthenticated):
			to := link("/login", "next", r.URL.RequestURI())
			if r.Header.Get("HX-Request") != "" {
				w.Header().Set("HX-Redirect", to)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
		case errors.Is(err, api.ErrForbidden):
			s.render(w, r, &view{Template: "error", Title: "Not allowed", Status: http.StatusForbidden,
				Data: errorData{Message: "The token you signed in with does not grant the read scope. Sign out and sign in with a read token."}})
		default:
			s.renderError(w, r, err)
		}
	})
}

// checkSession authenticates the request's session cookie for reading.
func (s *Server) checkSession(r *http.Request) error {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return api.ErrUnauthenticated
	}
	token, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(token) == 0 {
		return api.ErrUnauthenticated
	}
	return s.authenticate(r, string(token))
}

// authenticate asks the API's authenticator whether token may read.
func (s *Server) authenticate(r *http.Request, token string) error {
	req := r.Clone(r.Context())
	req.Header = http.Header{"Authorization": {"Bearer " + token}}
	_, err := s.opts.Auth.Authenticate(req, api.ScopeRead)
	return err
}

type loginData struct {
	Next  string
	Error string
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if s.opts.Auth == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, r, &view{Template: "login", Title: "Sign in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// loginCheck says whether the browser's session is valid:
// {"signedIn": true|false}. The login page asks, because a link from
// another site does not carry the SameSite=Strict cookie, though a request
// from the hub's own page does.
func (s *Server) loginCheck(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if s.opts.Auth != nil && s.checkSession(r) != nil {
		_, _ = w.Write([]byte(`{"signedIn":false}`))
		return
	}
	_, _ = w.Write([]byte(`{"signedIn":true}`))
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.opts.Auth == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !s.formFromHub(w, r) {
		return
	}
	next := safeNext(r.PostFormValue("next"))
	token := strings.TrimSpace(r.PostFormValue("token"))
	fail := func(status int, msg string) {
		s.render(w, r, &view{Template: "login", Title: "Sign in", Status: status, Data: loginData{Next: next, Error: msg}})
	}
	if token == "" {
		fail(http.StatusBadRequest, "Enter a token.")
		return
	}
	switch err := s.authenticate(r, token); {
	case errors.Is(err, api.ErrUnauthenticated):
		fail(http.StatusUnauthorized, "The hub does not know this token. Check it and try again.")
		return
	case errors.Is(err, api.ErrForbidden):
		fail(http.StatusForbidden, "This token does not grant the read scope; the UI needs a read token.")
		return
	case err != nil:
		s.log.Error("login: authenticate", "err", err)
		fail(http.StatusServiceUnavailable, "The hub could not check the token just now. Try again in a moment.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(token)), Path: "/",
		MaxAge: int(sessionTTL.Seconds()), HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.formFromHub(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// formFromHub checks that a POST comes from one of the hub's own pages:
// the browser says it is same-origin, and the form's CSRF token matches
// the cookie. It answers 403 otherwise.
func (s *Server) formFromHub(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	deny := func(msg string) bool {
		s.render(w, r, &view{Template: "error", Title: "Request refused", Status: http.StatusForbidden, Data: errorData{Message: msg}})
		return false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return deny("The form was sent from another site. Open the hub's own page and send it again.")
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return deny("The form was sent from another origin. Open the hub's own page and send it again.")
		}
	}
	if err := r.ParseForm(); err != nil {
		return deny("The form could not be read.")
	}
	c, err := r.Cookie(csrfCookie)
	sent := r.PostFormValue("csrf")
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(sent)) != 1 {
		return deny("The form has expired. Reload the page and send it again.")
	}
	return true
}

// csrfToken returns the browser's CSRF token, setting the cookie when it
// has none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 64 && isHex(c.Value) {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails
	token := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: "/", HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
	return token
}

// secure reports whether the browser reached the hub over TLS (directly or
// through a proxy that says so), so that cookies are sent only over TLS.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// safeNext keeps a post-login destination on the hub: a path, never
// another host.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}
