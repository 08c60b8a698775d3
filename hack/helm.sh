#!/usr/bin/env bash
# Runs the project's pinned helm, installing it into .cache/bin first if it is
# missing or was built for another version. Our machines can only get helm by
# building it through the Go module proxy.
#
# Usage: hack/helm.sh <helm args...>     e.g. hack/helm.sh lint charts/tidemark
#
# HELM_VERSION overrides the pinned version; TIDEMARK_BIN_DIR the install folder.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${TIDEMARK_BIN_DIR:-${repo_root}/.cache/bin}"
helm="${bin_dir}/helm"
stamp="${bin_dir}/.helm.version"

up_to_date() {
	[[ -x "${helm}" && -f "${stamp}" && "$(cat "${stamp}")" == "${HELM_VERSION}" ]]
}

install_helm() {
	# Build helm from its own module, unaffected by ours.
	export GOWORK=off GOFLAGS='' CGO_ENABLED=0
	local mod major minor
	# Like helm's Makefile, stamp the default Kubernetes version that
	# `helm template` and `helm lint` assume from the client-go helm is built
	# with (a plain `go install` leaves it at v1.20).
	mod="$(go mod download -json "helm.sh/helm/v3@${HELM_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
	read -r major minor < <(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/1 \1/p' "${mod}")
	if [[ -z "${minor:-}" ]]; then
		echo "helm.sh: cannot find k8s.io/client-go in ${mod}" >&2
		exit 1
	fi
	local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
	local pkg
	for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		ldflags+=" -X ${pkg}.k8sVersionMajor=${major} -X ${pkg}.k8sVersionMinor=${minor}"
	done
	echo "helm.sh: installing helm ${HELM_VERSION} (Kubernetes ${major}.${minor}) into ${bin_dir}..." >&2
	GOBIN="${bin_dir}" go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
	echo "${HELM_VERSION}" >"${stamp}"
}

if ! up_to_date; then
	mkdir -p "${bin_dir}"
	# Serialise concurrent installs (e.g. parallel test packages).
	if command -v flock >/dev/null 2>&1; then
		exec 9>"${bin_dir}/.helm.lock"
		flock 9
	fi
	up_to_date || (install_helm)
	exec 9>&-
fi

exec "${helm}" "$@"
