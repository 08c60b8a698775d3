package model

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"unicode"
)

// Endpoint is where a reconciler reads manifests from and where a deployment
// target's manifests are written: a repository (Git or OCI), a branch (or
// tag) and a path inside it.
//
// Reconcilers often know only a single joined string such as
// "https://github.com/org/repo/dev/drone" (repo, branch and path joined),
// while targets know the three parts. Both reduce to the same Key, which is
// what the hub compares.
type Endpoint struct {
	StorageType string // "git" or "oci"
	Repo        string // normalized repository URL; empty when only the joined form is known
	Branch      string
	Path        string // cleaned; "" is the root
	// Joined is true when only the joined form was reported, so Repo holds
	// repository, branch and path together and the split is unknown.
	Joined bool
}

// Storage types of a manifests endpoint.
const (
	StorageGit = "git"
	StorageOCI = "oci"
)

// NewEndpoint normalizes the three parts of a target's manifests location.
func NewEndpoint(storageType, repo, branch, p string) (Endpoint, error) {
	for _, part := range []string{branch, p} {
		if strings.ContainsFunc(part, unicode.IsControl) {
			return Endpoint{}, fmt.Errorf("%s contains control characters", Quote(part))
		}
	}
	st, err := normalizeStorageType(storageType)
	if err != nil {
		return Endpoint{}, err
	}
	r, err := NormalizeRepo(repo)
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{StorageType: st, Repo: r, Branch: NormalizeBranch(branch), Path: CleanPath(p)}, nil
}

// ParseEndpoint reads the joined form "repo/branch/path" that reconcilers
// report. The split between repo, branch and path is unknown, so only Key is
// meaningful; Repo holds the whole normalized string.
func ParseEndpoint(storageType, joined string) (Endpoint, error) {
	st, err := normalizeStorageType(storageType)
	if err != nil {
		return Endpoint{}, err
	}
	r, err := NormalizeRepo(joined)
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{StorageType: st, Repo: r, Joined: true}, nil
}

// Key is the canonical comparison form: repository host and path without
// scheme, credentials, ".git" or trailing slash, then branch, then cleaned
// path. "https://github.com/org/repo" + "dev" + "./drone/" and
// "https://github.com/org/repo.git/dev/drone" both give
// "github.com/org/repo/dev/drone".
func (e Endpoint) Key() string {
	joined := e.Repo // one concatenation: every report's key is computed
	switch {
	case e.Branch != "" && e.Path != "":
		joined = e.Repo + "/" + e.Branch + "/" + e.Path
	case e.Branch != "":
		joined = e.Repo + "/" + e.Branch
	case e.Path != "":
		joined = e.Repo + "/" + e.Path
	}
	return endpointKey(joined)
}

// BranchKey identifies the branch (repository and branch) that GitOps commits
// belong to. It is empty when the endpoint's split is unknown.
func (e Endpoint) BranchKey() string {
	if e.Joined || e.Repo == "" {
		return ""
	}
	return endpointKey(e.Repo) + "@" + e.Branch
}

// String is the human form, as a user would write it.
func (e Endpoint) String() string {
	s := e.Repo
	if e.Branch != "" {
		s += "/" + e.Branch
	}
	if e.Path != "" {
		s += "/" + e.Path
	}
	return s
}

// endpointKey drops the scheme of a normalized URL and any ".git" segment
// suffix, so that https, ssh and the joined reconciler form compare equal.
func endpointKey(normalized string) string {
	s := normalized
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if isOwnKey(s) {
		return s // the common case, without building a copy
	}
	return keySegments(s)
}

// keySegments joins the segments of s, each without its trailing ".git",
// leaving out empty and "." ones.
func keySegments(s string) string {
	parts := strings.Split(s, "/")
	out := parts[:0]
	for _, p := range parts {
		p = trimGit(p)
		if p == "" || p == "." {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, "/")
}

// isOwnKey reports whether keySegments would keep every segment of s as
// it is.
func isOwnKey(s string) bool {
	for {
		seg, rest, more := strings.Cut(s, "/")
		if seg == "" || seg == "." || trimGit(seg) != seg {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// trimGit removes every trailing ".git" (and space) from a path or segment.
func trimGit(s string) string {
	for {
		t := strings.TrimSuffix(strings.TrimRight(s, " \t"), ".git")
		if t == s {
			return t
		}
		s = t
	}
}

func normalizeStorageType(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "git":
		return StorageGit, nil
	case "oci":
		return StorageOCI, nil
	default:
		return "", fmt.Errorf("storage type %s is not supported: use \"git\" or \"oci\"", Quote(s))
	}
}

// NormalizeRepo returns a repository URL with lower-case scheme and host, no
// credentials, query, fragment, default port, ".git" suffix or trailing
// slash. SCP-like SSH addresses (git@host:org/repo) become ssh:// URLs.
// A URL without a scheme is taken as https.
func NormalizeRepo(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("repository URL is empty")
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "", fmt.Errorf("repository URL %s contains control characters", Quote(raw))
	}
	if !strings.Contains(s, "://") {
		// git@github.com:org/repo is SSH; github.com/org/repo is https.
		if at := strings.Index(s, "@"); at >= 0 {
			if colon := strings.Index(s[at:], ":"); colon > 0 && !strings.Contains(s[:at+colon], "/") {
				host := s[at+1 : at+colon]
				s = "ssh://" + s[:at+1] + host + "/" + strings.TrimPrefix(s[at+colon+1:], "/")
			}
		}
		if !strings.Contains(s, "://") {
			s = "https://" + s
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("repository URL %s is not a valid URL", Quote(raw))
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("repository URL %s has no host", Quote(raw))
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https", "http", "ssh", "git", "oci":
	default:
		return "", fmt.Errorf("repository URL %s: scheme %s is not one of https, http, ssh, git, oci", Quote(raw), Quote(u.Scheme))
	}
	host := strings.ToLower(u.Hostname())
	if strings.ContainsFunc(host, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-._:", r)
	}) || !strings.ContainsFunc(host, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
		// A host is more than dots and dashes: "http://./" names none.
		return "", fmt.Errorf("repository URL %s has an invalid host %s", Quote(raw), Quote(host))
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", fmt.Errorf("repository URL %s has an invalid IPv6 host %s", Quote(raw), Quote(host))
		}
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !isDefaultPort(scheme, port) {
		host += ":" + port
	}
	p := path.Clean("/" + u.EscapedPath())
	for { // until stable: "/a/.git" -> "/a/" -> "/a"
		q := path.Clean("/" + strings.TrimSuffix(trimGit(p), "/"))
		if q == p {
			break
		}
		p = q
	}
	if p == "/" {
		p = ""
	}
	return scheme + "://" + host + p, nil
}

func isDefaultPort(scheme, port string) bool {
	switch scheme {
	case "https", "oci":
		return port == "443"
	case "http":
		return port == "80"
	case "ssh":
		return port == "22"
	}
	return false
}

// NormalizeBranch removes surrounding space and slashes and a
// "refs/heads/" prefix, until none is left, so that normalizing twice
// changes nothing.
func NormalizeBranch(b string) string {
	for {
		n := strings.Trim(strings.TrimPrefix(strings.TrimSpace(b), "refs/heads/"), "/ \t\r\n")
		if n == b {
			return n
		}
		b = n
	}
}

// CleanPath makes "./a/", "a" and "/a" the same path, and "." and "" the root.
// Surrounding space is removed until none is left, so that cleaning twice
// changes nothing.
func CleanPath(p string) string {
	for {
		c := strings.TrimPrefix(path.Clean("/"+strings.TrimSpace(p)), "/")
		if c == p {
			return c
		}
		p = c
	}
}
