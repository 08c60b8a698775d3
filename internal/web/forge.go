package web

import (
	"net/url"
	"strings"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The forges commit links know.
const (
	ForgeGitHub    = "github"
	ForgeGitLab    = "gitlab"
	ForgeBitbucket = "bitbucket"
	ForgeAzure     = "azure"
)

// forgeRepo is a repository on a forge: the forge and the repository's web
// address.
type forgeRepo struct {
	forge string
	web   string // https://host/org/repo, without a trailing slash
}

// repoOnForge finds the forge and web address of a repository URL (any
// form the hub stores or reports carry: https, ssh, scp-like). forges maps
// hosts to forges for self-hosted ones; otherwise the host tells
// (github.com, gitlab.com or a host with "gitlab" in it, bitbucket.org,
// dev.azure.com or *.visualstudio.com). ok is false for a repository on no
// known forge (or an OCI repository).
func repoOnForge(repo string, forges map[string]string) (forgeRepo, bool) {
	norm, err := model.NormalizeRepo(repo)
	if err != nil {
		return forgeRepo{}, false
	}
	u, err := url.Parse(norm)
	if err != nil || u.Scheme == "oci" {
		return forgeRepo{}, false
	}
	host := u.Hostname()
	p := strings.TrimSuffix(u.Path, "/")
	forge := forges[host]
	if forge == "" {
		forge = forges[u.Host]
	}
	if forge == "" {
		switch {
		case host == "github.com" || strings.HasPrefix(host, "github."):
			forge = ForgeGitHub
		case host == "gitlab.com" || strings.Contains(host, "gitlab"):
			forge = ForgeGitLab
		case host == "bitbucket.org":
			forge = ForgeBitbucket
		case host == "dev.azure.com" || host == "ssh.dev.azure.com" || strings.HasSuffix(host, ".visualstudio.com") || strings.Contains(p, "/_git/"):
			forge = ForgeAzure
		default:
			return forgeRepo{}, false
		}
	}
	webHost := host
	if u.Scheme == "https" || u.Scheme == "http" {
		webHost = u.Host // keep a non-default port of the web server
	}
	if forge == ForgeAzure {
		// ssh://git@ssh.dev.azure.com/v3/org/project/repo is
		// https://dev.azure.com/org/project/_git/repo.
		if host == "ssh.dev.azure.com" || host == "vs-ssh.visualstudio.com" {
			parts := strings.Split(strings.TrimPrefix(p, "/v3/"), "/")
			if len(parts) != 3 {
				return forgeRepo{}, false
			}
			return forgeRepo{forge, "https://dev.azure.com/" + parts[0] + "/" + parts[1] + "/_git/" + parts[2]}, true
		}
		if !strings.Contains(p, "/_git/") {
			return forgeRepo{}, false
		}
	}
	if p == "" {
		return forgeRepo{}, false
	}
	return forgeRepo{forge, "https://" + webHost + p}, true
}

// commitURL is the forge's page of a commit of the repository, or "".
func commitURL(repo, sha string, forges map[string]string) string {
	r, ok := repoOnForge(repo, forges)
	if !ok || sha == "" || !isHex(sha) {
		return ""
	}
	switch r.forge {
	case ForgeGitLab:
		return r.web + "/-/commit/" + sha
	case ForgeBitbucket:
		return r.web + "/commits/" + sha
	default: // GitHub, Azure DevOps
		return r.web + "/commit/" + sha
	}
}

// compareURL is the forge's comparison of two commits of the repository
// (from the older to the newer), or "".
func compareURL(repo, from, to string, forges map[string]string) string {
	r, ok := repoOnForge(repo, forges)
	if !ok || from == "" || to == "" || from == to || !isHex(from) || !isHex(to) {
		return ""
	}
	switch r.forge {
	case ForgeGitLab:
		return r.web + "/-/compare/" + from + "..." + to
	case ForgeBitbucket:
		return r.web + "/branches/compare/" + to + "%0D" + from
	case ForgeAzure:
		return r.web + "/branchCompare?baseVersion=GC" + from + "&targetVersion=GC" + to
	default:
		return r.web + "/compare/" + from + "..." + to
	}
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}
