#!/usr/bin/env bash
# Builds the envtest control-plane binaries (kube-apiserver, etcd, kubectl)
# from the pinned Go modules under hack/tools/envtest and caches them in a
# git-ignored folder. setup-envtest cannot download binaries on our machines,
# so this is how tests get a real API server.
#
# Usage:
#   KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go test ./...
#
# The cache folder defaults to <repo>/.cache/envtest-1.37.2 and can be changed
# with TIDEMARK_ENVTEST_DIR. Binaries already present are not rebuilt; delete
# the folder (or a single binary) to force a rebuild. Build output goes to
# stderr; the only line on stdout is the cache folder's absolute path, printed
# last.
#
# Cost on a 2-core machine: ~6 minutes cold (kube-apiserver ~5 of them), well
# under a minute with a warm Go build cache, nothing once cached.
set -euo pipefail

K8S_VERSION=v1.37.2

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/hack/tools/envtest"
assets_dir="${TIDEMARK_ENVTEST_DIR:-${repo_root}/.cache/envtest-${K8S_VERSION#v}}"

mkdir -p "${assets_dir}"
assets_dir="$(cd "${assets_dir}" && pwd)"

# Serialise concurrent callers (e.g. several test packages starting at once)
# so that they do not build the same binary twice.
if command -v flock >/dev/null 2>&1; then
	exec 9>"${assets_dir}/.lock"
	flock 9
fi

# The tools modules are self-contained: never let a go.work or the caller's
# module settings leak in. -mod=mod lets the go command fill in go.sum entries
# if the local module cache is missing something.
export GOWORK=off
export GOFLAGS="-mod=mod ${GOFLAGS:-}"
export CGO_ENABLED="${CGO_ENABLED:-0}"

k8s_ldflags="-s -w"
k8s_ldflags+=" -X k8s.io/component-base/version.gitVersion=${K8S_VERSION}"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMajor=$(echo "${K8S_VERSION#v}" | cut -d. -f1)"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMinor=$(echo "${K8S_VERSION#v}" | cut -d. -f2)"

# build NAME DIR PACKAGE LDFLAGS: builds PACKAGE from inside module DIR into
# ${assets_dir}/NAME unless it already exists. The binary is written under a
# temporary name and renamed, so an interrupted build never leaves a partial
# binary that a later run would mistake for a finished one.
build() {
	local name="$1" dir="$2" pkg="$3" ldflags="$4"
	local out="${assets_dir}/${name}"
	if [[ -x "${out}" ]]; then
		echo "envtest-assets: ${name} already built" >&2
		return 0
	fi
	echo "envtest-assets: building ${name} (${pkg})..." >&2
	local start=${SECONDS}
	local tmp="${out}.tmp.$$"
	# shellcheck disable=SC2064 # expand now: ${tmp} is local
	trap "rm -f '${tmp}'" EXIT
	(cd "${dir}" && go build -trimpath -ldflags "${ldflags}" -o "${tmp}" "${pkg}") >&2
	mv -f "${tmp}" "${out}"
	trap - EXIT
	echo "envtest-assets: built ${name} in $((SECONDS - start))s" >&2
}

build etcd "${tools_dir}/etcd" . "-s -w"
build kube-apiserver "${tools_dir}" k8s.io/kubernetes/cmd/kube-apiserver "${k8s_ldflags}"
build kubectl "${tools_dir}" k8s.io/kubernetes/cmd/kubectl "${k8s_ldflags}"

echo "${assets_dir}"
