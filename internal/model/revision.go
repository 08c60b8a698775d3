package model

import (
	"fmt"
	"strings"
)

// MinAbbrevLen is the shortest abbreviated commit the hub accepts; it is
// Git's default abbreviation length.
const MinAbbrevLen = 7

// MaxRevisionLen is the length of the longest revision: a SHA-256 digest.
const MaxRevisionLen = 64

// NormalizeRevision reduces every revision format reconcilers report to one
// canonical key: the object id (Git SHA-1, Git SHA-256 or OCI digest) in
// lower case.
//
//	main@sha1:<sha>            Flux v2 GitRepository
//	refs/heads/main@sha1:<sha> Flux, full ref
//	main/<sha>                 Flux legacy
//	sha1:<sha>, sha256:<dgst>  bare algorithm-prefixed ids
//	<sha>                      Argo CD, Azure Arc
//	<tag>@sha256:<digest>      Flux OCIRepository
//
// Abbreviated ids (at least MinAbbrevLen hex digits) are kept abbreviated;
// CommitsMatch relates them to their full form.
func NormalizeRevision(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("revision is empty")
	}
	id := s
	if i := strings.LastIndex(id, "@"); i >= 0 {
		id = id[i+1:]
	} else if i := strings.LastIndex(id, "/"); i >= 0 {
		id = id[i+1:]
	}
	if i := strings.Index(id, ":"); i >= 0 {
		switch strings.ToLower(id[:i]) {
		case "sha1", "sha256":
			id = id[i+1:]
		default:
			return "", fmt.Errorf("revision %s has unknown digest algorithm %s: use sha1 or sha256", Quote(raw), Quote(id[:i]))
		}
	}
	id = strings.ToLower(id)
	if !isHex(id) {
		return "", fmt.Errorf("revision %s does not contain a commit id or digest: expected forms are <sha>, <branch>@sha1:<sha>, <branch>/<sha> or <tag>@sha256:<digest>", Quote(raw))
	}
	switch {
	case len(id) < MinAbbrevLen:
		return "", fmt.Errorf("revision %s is too short: give at least %d hex digits of the commit", Quote(raw), MinAbbrevLen)
	case len(id) > MaxRevisionLen:
		return "", fmt.Errorf("revision %s is longer than a SHA-256 digest", Quote(raw))
	}
	return id, nil
}

// IsAbbreviated reports whether a normalized revision is shorter than a full
// SHA-1.
func IsAbbreviated(rev string) bool { return len(rev) < 40 }

// CommitsMatch reports whether two normalized revisions name the same object:
// equal, or one an abbreviation of the other.
func CommitsMatch(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return len(a) >= MinAbbrevLen && strings.HasPrefix(b, a)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
