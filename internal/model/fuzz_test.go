package model

import "testing"

func FuzzNormalizeRevision(f *testing.F) {
	for _, s := range []string{"main@sha1:" + sha, "dev/" + sha, "v1@sha256:" + dgst, sha[:7], "", "@", "/", "sha1:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeRevision(s)
		if err != nil {
			return
		}
		if len(got) < MinAbbrevLen || len(got) > 64 || !isHex(got) {
			t.Fatalf("NormalizeRevision(%q) = %q: not a hex object id", s, got)
		}
		if again, err := NormalizeRevision(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, got, again, err)
		}
	})
}

func FuzzEndpointKey(f *testing.F) {
	for _, s := range []string{"https://github.com/org/repo/dev/drone", "git@github.com:org/repo.git", "https://u:p@h/x/", "oci://r/x", "::", "%zz"} {
		f.Add(s, "dev", "./a/")
	}
	f.Fuzz(func(t *testing.T, repo, branch, p string) {
		ep, err := NewEndpoint("git", repo, branch, p)
		if err != nil {
			return
		}
		k := ep.Key()
		// A string endpointKey returns as it is would come out of the
		// segments unchanged.
		for _, s := range []string{repo, branch, p, k} {
			if isOwnKey(s) && keySegments(s) != s {
				t.Fatalf("%q is not its own key: %q", s, keySegments(s))
			}
		}
		// The key of a normalized endpoint is stable under re-normalization.
		again, err := NewEndpoint("git", ep.Repo, ep.Branch, ep.Path)
		if err != nil || again.Key() != k {
			t.Fatalf("key not stable: %q -> %q (%v)", k, again.Key(), err)
		}
	})
}
