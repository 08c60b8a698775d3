package model

import (
	"strings"
	"testing"
)

const (
	sha  = "5ce065315cc1702b6cb4eb9d3f804413706570d8"
	dgst = "b3e5c5f2a7d1c0f1e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6"
)

func TestNormalizeRevision(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{in: "main@sha1:" + sha, want: sha},
		{in: "refs/heads/main@sha1:" + sha, want: sha},
		{in: "refs/heads/release/1.0@sha1:" + sha, want: sha},
		{in: "main/" + sha, want: sha},
		{in: "dev/" + sha, want: sha},
		{in: "sha1:" + sha, want: sha},
		{in: sha, want: sha},
		{in: strings.ToUpper(sha), want: sha},
		{in: "  " + sha + "\n", want: sha},
		{in: "MAIN@SHA1:" + strings.ToUpper(sha), want: sha},
		{in: sha[:7], want: sha[:7]},
		{in: "main@sha1:" + sha[:12], want: sha[:12]},
		{in: "v1.2.3@sha256:" + dgst, want: dgst},
		{in: "latest@sha256:" + strings.ToUpper(dgst), want: dgst},
		{in: "sha256:" + dgst, want: dgst},
		{in: "latest/sha256:" + dgst, want: dgst},
		{in: "", err: "empty"},
		{in: "   ", err: "empty"},
		{in: "main", err: "does not contain a commit"},
		{in: "main@sha1:", err: "does not contain a commit"},
		{in: "1.2.3", err: "does not contain a commit"},
		{in: "abc12", err: "too short"},
		{in: "main@md5:" + sha, err: "unknown digest algorithm"},
		{in: sha + dgst, err: "longer"},
		{in: "main@sha1:" + sha + "x", err: "does not contain a commit"},
	}
	for _, c := range cases {
		got, err := NormalizeRevision(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("NormalizeRevision(%q) = %q, %v; want error containing %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("NormalizeRevision(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestCommitsMatch(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{sha, sha, true},
		{sha[:7], sha, true},
		{sha, sha[:10], true},
		{sha[:6], sha, false}, // too short to trust
		{"5ce0653aaaaaaa", sha, false},
		{dgst, sha, false},
	}
	for _, c := range cases {
		if got := CommitsMatch(c.a, c.b); got != c.want {
			t.Errorf("CommitsMatch(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestEndpointKeys(t *testing.T) {
	const want = "github.com/org/repo/dev/drone"
	split := []struct{ repo, branch, path string }{
		{"https://github.com/org/repo", "dev", "drone"},
		{"https://github.com/org/repo.git", "dev", "./drone/"},
		{"https://github.com/org/repo/", "dev", "/drone"},
		{"HTTPS://GitHub.COM/org/repo", "dev", "drone"},
		{"https://user:s3cret@github.com/org/repo", "dev", "drone"},
		{"https://x-access-token:ghp_abc@github.com/org/repo.git/", "refs/heads/dev", "drone/."},
		{"https://github.com:443/org/repo", "dev", "drone"},
		{"ssh://git@github.com/org/repo.git", "dev", "drone"},
		{"git@github.com:org/repo.git", "dev", "drone"},
		{"github.com/org/repo", "dev", "drone"},
		{"https://github.com/org/repo?ref=x#frag", "dev", "drone"},
		{"https://github.com/org/repo", "dev", "drone//"},
	}
	for _, c := range split {
		ep, err := NewEndpoint("git", c.repo, c.branch, c.path)
		if err != nil {
			t.Errorf("NewEndpoint(%q, %q, %q): %v", c.repo, c.branch, c.path, err)
			continue
		}
		if ep.Key() != want {
			t.Errorf("NewEndpoint(%q, %q, %q).Key() = %q, want %q", c.repo, c.branch, c.path, ep.Key(), want)
		}
	}
	joined := []string{
		"https://github.com/org/repo/dev/drone",
		"https://github.com/org/repo.git/dev/drone/",
		"https://GITHUB.com/org/repo/dev/./drone",
		"https://token@github.com/org/repo/dev/drone",
	}
	for _, j := range joined {
		ep, err := ParseEndpoint("", j)
		if err != nil || ep.Key() != want {
			t.Errorf("ParseEndpoint(%q).Key() = %q, %v; want %q", j, ep.Key(), err, want)
		}
	}
	// The root: "." and "" are the same path.
	for _, p := range []string{".", "", "/", "./"} {
		ep, _ := NewEndpoint("git", "https://github.com/org/repo", "main", p)
		if ep.Key() != "github.com/org/repo/main" || ep.Path != "" {
			t.Errorf("path %q: key %q path %q; want the root", p, ep.Key(), ep.Path)
		}
	}
	// Different paths, branches and hosts stay different.
	a, _ := NewEndpoint("git", "https://github.com/org/repo", "dev", "drone")
	for _, other := range []struct{ repo, branch, path string }{
		{"https://github.com/org/repo", "dev", "drone2"},
		{"https://github.com/org/repo", "stage", "drone"},
		{"https://gitlab.com/org/repo", "dev", "drone"},
		{"https://github.com:8443/org/repo", "dev", "drone"},
	} {
		b, _ := NewEndpoint("git", other.repo, other.branch, other.path)
		if a.Key() == b.Key() {
			t.Errorf("%v and %v share key %q", a, b, a.Key())
		}
	}
	// OCI endpoints.
	oci, err := NewEndpoint("oci", "oci://GHCR.io/org/manifests", "", "./app")
	if err != nil || oci.Key() != "ghcr.io/org/manifests/app" {
		t.Errorf("oci endpoint key = %q, %v", oci.Key(), err)
	}
	// Credentials never survive normalization.
	r, _ := NormalizeRepo("https://user:hunter2@github.com/org/repo")
	if strings.Contains(r, "hunter2") || strings.Contains(r, "user") {
		t.Errorf("NormalizeRepo kept credentials: %q", r)
	}
	if _, err := NewEndpoint("svn", "https://x/y", "", ""); err == nil {
		t.Error("storage type svn accepted")
	}
	if _, err := NormalizeRepo("https:///nohost"); err == nil {
		t.Error("URL without host accepted")
	}
	// Found by FuzzMap: a host of dots named nothing, and the endpoint's
	// key came out empty.
	for _, repo := range []string{"http://./", "https://../org/repo", "ssh://git@-/repo"} {
		if r, err := NormalizeRepo(repo); err == nil {
			t.Errorf("NormalizeRepo(%q) = %q, want an error: the host has no letter or digit", repo, r)
		}
	}
}

func TestBranchKey(t *testing.T) {
	a, _ := NewEndpoint("git", "https://github.com/org/repo.git", "dev", "a")
	b, _ := NewEndpoint("git", "git@github.com:org/repo", "refs/heads/dev", "b")
	if a.BranchKey() == "" || a.BranchKey() != b.BranchKey() {
		t.Errorf("branch keys %q and %q differ", a.BranchKey(), b.BranchKey())
	}
	j, _ := ParseEndpoint("git", "https://github.com/org/repo/dev/a")
	if j.BranchKey() != "" {
		t.Errorf("joined endpoint has branch key %q; its split is unknown", j.BranchKey())
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]Status{"success": StatusSuccess, "Failure": StatusFailure, "in-progress": StatusInProgress, "IN_PROGRESS": StatusInProgress, "in progress": StatusInProgress} {
		if got, err := ParseStatus(in); err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseStatus("ok"); err == nil || !strings.Contains(err.Error(), "success, failure, in_progress") {
		t.Errorf("ParseStatus(ok) error = %v", err)
	}
}
