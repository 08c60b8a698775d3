#!/usr/bin/env bash
# Runs the project's pinned helm, installing it into .cache/bin first if it is
# missing or a different version. There is no other way to get helm on our
# machines than building it through the Go module proxy.
#
# Usage: hack/helm.sh <helm args...>     e.g. hack/helm.sh lint charts/tidemark
#
# HELM_VERSION overrides the pinned version; TIDEMARK_BIN_DIR the install folder.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${TIDEMARK_BIN_DIR:-${repo_root}/.cache/bin}"
helm="${bin_dir}/helm"

installed_version() {
	"${helm}" version --template '{{ .Version }}' 2>/dev/null || true
}

if [[ ! -x "${helm}" || "$(installed_version)" != "${HELM_VERSION}" ]]; then
	mkdir -p "${bin_dir}"
	# Serialise concurrent installs (e.g. parallel test packages).
	if command -v flock >/dev/null 2>&1; then
		exec 9>"${bin_dir}/.helm.lock"
		flock 9
	fi
	if [[ ! -x "${helm}" || "$(installed_version)" != "${HELM_VERSION}" ]]; then
		echo "helm.sh: installing helm ${HELM_VERSION} into ${bin_dir} (go install)..." >&2
		# GOWORK/GOFLAGS: build helm from its own module, unaffected by ours.
		GOWORK=off GOFLAGS= CGO_ENABLED=0 GOBIN="${bin_dir}" \
			go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
			"helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
	fi
	exec 9>&-
fi

exec "${helm}" "$@"
