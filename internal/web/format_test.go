package web

import (
	"testing"
)

func TestCommitLinks(t *testing.T) {
	const sha = "5ce065315cc1702b6cb4eb9d3f804413706570d8"
	forges := map[string]string{"git.corp.example": ForgeGitLab, "code.example:8443": ForgeGitHub}
	for _, c := range []struct{ repo, commit, compare string }{
		{"https://github.com/org/repo", "https://github.com/org/repo/commit/" + sha, "https://github.com/org/repo/compare/aaaaaaa..." + sha},
		{"git@github.com:org/repo.git", "https://github.com/org/repo/commit/" + sha, ""},
		{"https://user:secret@github.com/org/repo.git/", "https://github.com/org/repo/commit/" + sha, ""},
		{"https://gitlab.com/group/sub/repo", "https://gitlab.com/group/sub/repo/-/commit/" + sha, "https://gitlab.com/group/sub/repo/-/compare/aaaaaaa..." + sha},
		{"https://gitlab.example.com/team/repo", "https://gitlab.example.com/team/repo/-/commit/" + sha, ""},
		{"ssh://git@git.corp.example:2222/team/repo.git", "https://git.corp.example/team/repo/-/commit/" + sha, ""},
		{"https://code.example:8443/org/repo", "https://code.example:8443/org/repo/commit/" + sha, ""},
		{"https://bitbucket.org/team/repo", "https://bitbucket.org/team/repo/commits/" + sha, "https://bitbucket.org/team/repo/branches/compare/" + sha + "%0Daaaaaaa"},
		{"https://dev.azure.com/org/project/_git/repo", "https://dev.azure.com/org/project/_git/repo/commit/" + sha,
			"https://dev.azure.com/org/project/_git/repo/branchCompare?baseVersion=GCaaaaaaa&targetVersion=GC" + sha},
		{"https://org@dev.azure.com/org/project/_git/repo", "https://dev.azure.com/org/project/_git/repo/commit/" + sha, ""},
		{"git@ssh.dev.azure.com:v3/org/project/repo", "https://dev.azure.com/org/project/_git/repo/commit/" + sha, ""},
		{"https://org.visualstudio.com/project/_git/repo", "https://org.visualstudio.com/project/_git/repo/commit/" + sha, ""},
		{"https://tfs.corp.example/tfs/Coll/project/_git/repo", "https://tfs.corp.example/tfs/Coll/project/_git/repo/commit/" + sha, ""},
		{"https://git.unknown.example/org/repo", "", ""},
		{"oci://ghcr.io/org/manifests", "", ""},
		{"not a url at all", "", ""},
	} {
		if got := commitURL(c.repo, sha, forges); got != c.commit {
			t.Errorf("commitURL(%q) = %q, want %q", c.repo, got, c.commit)
		}
		if c.compare != "" {
			if got := compareURL(c.repo, "aaaaaaa", sha, forges); got != c.compare {
				t.Errorf("compareURL(%q) = %q, want %q", c.repo, got, c.compare)
			}
		}
	}
	// Never a link for something that is not a commit.
	if u := commitURL("https://github.com/org/repo", "../../evil", nil); u != "" {
		t.Errorf("a non-hex commit got a link: %s", u)
	}
	if u := compareURL("https://github.com/org/repo", sha, sha, nil); u != "" {
		t.Errorf("comparing a commit with itself: %s", u)
	}
}

func TestSafeCSV(t *testing.T) {
	in := []string{"=cmd()", "+1+1", "@sum", "-1.5", "-x", "plain", ""}
	got := safeCSV(in)
	want := []string{"'=cmd()", "'+1+1", "'@sum", "-1.5", "'-x", "plain", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("safeCSV(%q) = %q, want %q", in[i], got[i], want[i])
		}
	}
	if in[0] != "=cmd()" {
		t.Error("safeCSV changed its input")
	}
}

func TestHumanDuration(t *testing.T) {
	for sec, want := range map[float64]string{0: "0 s", 40: "40 s", 125: "2 min 5 s", 3600: "1 h", 90061: "1 d 1 h", 86400 * 40: "40 d"} {
		if got := humanDuration(sec); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", sec, got, want)
		}
	}
}

func TestStatusOfUnknown(t *testing.T) {
	// Statuses the hub may add later (hosts registered before their first
	// report) show grey, in words.
	for _, s := range []string{"", "not_reported", "something_new"} {
		v := statusOf(s)
		if v.Class != "st-none" || v.Label == "" {
			t.Errorf("statusOf(%q) = %+v", s, v)
		}
	}
}

func TestEllipsis(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"prod · api · eastus", 30, "prod · api · eastus"},
		{"prod · payment-gateway · southeastasia", 30, "prod · payment-gateway · sout…"},
		{"ééééé", 4, "ééé…"}, // characters, not bytes
		{"abcd", 4, "abcd"},
	} {
		if got := ellipsis(c.in, c.n); got != c.want {
			t.Errorf("ellipsis(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
