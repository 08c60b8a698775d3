package api

// Authentication: bearer tokens with scopes. Static tokens come from a file
// or flags; in Kubernetes, service-account tokens are checked through the
// TokenReview API. Tokens are never logged: only the names they map to.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// ParseScopes reads a comma-separated list of scopes ("read", "write",
// "read,write").
func ParseScopes(s string) ([]Scope, error) {
	var scopes []Scope
	for part := range strings.SplitSeq(s, ",") {
		switch sc := Scope(strings.TrimSpace(part)); sc {
		case ScopeRead, ScopeWrite:
			scopes = append(scopes, sc)
		default:
			return nil, fmt.Errorf("scope %q: use read, write or read,write", part)
		}
	}
	return scopes, nil
}

// StaticTokens authenticates bearer tokens against a fixed list. Only the
// SHA-256 digests of the tokens are kept, and a presented token's digest is
// compared with every entry in constant time.
type StaticTokens struct {
	entries []staticToken
}

type staticToken struct {
	digest [sha256.Size]byte
	name   string
	read   bool
	write  bool
}

// Add registers a token under a name (the subject logged for its
// requests) with its scopes.
func (s *StaticTokens) Add(token, name string, scopes ...Scope) error {
	if len(token) < 16 {
		return fmt.Errorf("token %q: shorter than 16 characters", name)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return fmt.Errorf("token %q: contains white space", name)
	}
	e := staticToken{digest: sha256.Sum256([]byte(token)), name: name}
	for _, sc := range scopes {
		switch sc {
		case ScopeRead:
			e.read = true
		case ScopeWrite:
			e.write = true
		default:
			return fmt.Errorf("token %q: unknown scope %q", name, sc)
		}
	}
	for _, o := range s.entries {
		if o.digest == e.digest {
			return fmt.Errorf("token %q: the same token is also configured as %q", name, o.name)
		}
	}
	s.entries = append(s.entries, e)
	return nil
}

// Len is the number of tokens.
func (s *StaticTokens) Len() int { return len(s.entries) }

// ReadTokens reads a tokens file: one token per line,
//
//	<token> <scope>[,<scope>] <name>
//
// where scopes are read and write; blank lines and lines starting with #
// are ignored. Errors name the line, never the token.
func (s *StaticTokens) ReadTokens(r io.Reader, source string) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return fmt.Errorf("%s:%d: want \"<token> <scope>[,<scope>] <name>\", got %d fields", source, n, len(fields))
		}
		scopes, err := ParseScopes(fields[1])
		if err != nil {
			return fmt.Errorf("%s:%d: %w", source, n, err)
		}
		if err := s.Add(fields[0], fields[2], scopes...); err != nil {
			return fmt.Errorf("%s:%d: %w", source, n, err)
		}
	}
	return sc.Err()
}

// ReadTokensFile reads a tokens file (see ReadTokens).
func (s *StaticTokens) ReadTokensFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.ReadTokens(f, path)
}

// Authenticate implements Authenticator.
func (s *StaticTokens) Authenticate(r *http.Request, scope Scope) (string, error) {
	token := BearerToken(r)
	if token == "" {
		return "", ErrUnauthenticated
	}
	digest := sha256.Sum256([]byte(token))
	found := -1
	for i := range s.entries {
		if subtle.ConstantTimeCompare(digest[:], s.entries[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", ErrUnauthenticated
	}
	e := s.entries[found]
	if (scope == ScopeRead && !e.read) || (scope == ScopeWrite && !e.write) {
		return e.name, ErrForbidden
	}
	return e.name, nil
}

// Chain tries authenticators in order: the first that recognizes the token
// (grants the scope, or knows the token but refuses the scope) decides.
// A request is unauthenticated only when none recognizes its token.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(r *http.Request, scope Scope) (string, error) {
	if BearerToken(r) == "" {
		return "", ErrUnauthenticated
	}
	for _, a := range c {
		subject, err := a.Authenticate(r, scope)
		if errors.Is(err, ErrUnauthenticated) {
			continue
		}
		return subject, err
	}
	return "", ErrUnauthenticated
}

// TokenReviewOptions map Kubernetes service accounts to scopes. Entries are
// "<namespace>/<service account>"; "<namespace>/*" is every service account
// of the namespace.
type TokenReviewOptions struct {
	Read  []string
	Write []string
	// Audiences, when set, are the audiences the tokens must be issued for.
	Audiences []string
	// CacheTTL is how long a successful review is reused (default 1 minute).
	CacheTTL time.Duration
	// Timeout bounds each TokenReview call (default 5 seconds).
	Timeout time.Duration
}

// TokenReview authenticates Kubernetes service-account tokens with the
// TokenReview API and maps the service accounts to scopes. Successful
// reviews are cached (by token digest) for CacheTTL.
type TokenReview struct {
	client authnclient.TokenReviewInterface
	opts   TokenReviewOptions
	read   map[string]bool
	write  map[string]bool
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]reviewed
}

type reviewed struct {
	username string
	expires  time.Time
}

// maxReviewCache bounds the review cache; when full, expired entries are
// dropped, then all.
const maxReviewCache = 10000

// NewTokenReview returns a TokenReview authenticator talking to the API
// server of cfg.
func NewTokenReview(cfg *rest.Config, opts TokenReviewOptions) (*TokenReview, error) {
	// JSON rather than protobuf: reviews are rare (cached), and any API
	// server or proxy in front of it speaks JSON.
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	c, err := authnclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("TokenReview client: %w", err)
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = time.Minute
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	t := &TokenReview{client: c.TokenReviews(), opts: opts, read: map[string]bool{}, write: map[string]bool{},
		now: time.Now, cache: map[[sha256.Size]byte]reviewed{}}
	for _, l := range []struct {
		flag string
		in   []string
		out  map[string]bool
	}{{"read", opts.Read, t.read}, {"write", opts.Write, t.write}} {
		for _, sa := range l.in {
			ns, name, ok := strings.Cut(strings.TrimSpace(sa), "/")
			if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
				return nil, fmt.Errorf("%s service account %q: want <namespace>/<name> or <namespace>/*", l.flag, sa)
			}
			l.out[ns+"/"+name] = true
		}
	}
	return t, nil
}

// Authenticate implements Authenticator.
func (t *TokenReview) Authenticate(r *http.Request, scope Scope) (string, error) {
	token := BearerToken(r)
	if token == "" {
		return "", ErrUnauthenticated
	}
	username, err := t.review(r.Context(), token)
	if err != nil {
		return "", err
	}
	grants := t.read
	if scope == ScopeWrite {
		grants = t.write
	}
	ns, sa, ok := serviceAccount(username)
	if !ok || !(grants[ns+"/"+sa] || grants[ns+"/*"]) {
		return username, ErrForbidden
	}
	return username, nil
}

// review returns the username of an authenticated token, from the cache
// or the API server.
func (t *TokenReview) review(ctx context.Context, token string) (string, error) {
	key := sha256.Sum256([]byte(token))
	now := t.now()
	t.mu.Lock()
	c, ok := t.cache[key]
	t.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.username, nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	res, err := t.client.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: t.opts.Audiences}}, metav1.CreateOptions{})
	if err != nil {
		// The error comes from the API server or the transport; neither
		// includes the request body, so the token stays out of logs.
		return "", fmt.Errorf("TokenReview: %w", err)
	}
	if !res.Status.Authenticated || res.Status.User.Username == "" {
		return "", ErrUnauthenticated
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.cache) >= maxReviewCache {
		for k, v := range t.cache {
			if !now.Before(v.expires) {
				delete(t.cache, k)
			}
		}
		if len(t.cache) >= maxReviewCache {
			clear(t.cache)
		}
	}
	t.cache[key] = reviewed{username: res.Status.User.Username, expires: now.Add(t.opts.CacheTTL)}
	return res.Status.User.Username, nil
}

// serviceAccount splits a Kubernetes service-account username,
// system:serviceaccount:<namespace>:<name>.
func serviceAccount(username string) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(username, "system:serviceaccount:")
	if !ok {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, ":")
	return ns, name, ok && ns != "" && name != ""
}
