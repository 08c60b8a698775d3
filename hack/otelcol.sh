#!/usr/bin/env bash
# Builds the OpenTelemetry Collector the OTLP tests run (an OTLP receiver,
# the batch processor, the otlp and otlphttp exporters) with the pinned
# collector builder, and caches it in a git-ignored folder. The Collector has
# no Debian package and our machines cannot download release binaries, so
# the builder compiles it from the Go module proxy.
#
# Usage:
#   TIDEMARK_OTELCOL=$(hack/otelcol.sh) go test ./internal/sources/otlp/
#
# The cache folder defaults to <repo>/.cache/otelcol-<version> and can be
# changed with TIDEMARK_OTELCOL_DIR. A binary already present is not rebuilt.
# Build output goes to stderr; the only line on stdout is the binary's
# absolute path, printed last.
#
# Cost on a 2-core machine: ~70 s cold (most of it compiling), nothing once
# cached.
set -euo pipefail

OTELCOL_VERSION=0.165.0

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${repo_root}/hack/tools/otelcol/builder-config.yaml"
dir="${TIDEMARK_OTELCOL_DIR:-${repo_root}/.cache/otelcol-${OTELCOL_VERSION}}"
mkdir -p "${dir}"
dir="$(cd "${dir}" && pwd)"
bin="${dir}/otelcol-tidemark"

# Serialise concurrent callers (several test packages) so that they do not
# build the Collector twice.
if command -v flock >/dev/null 2>&1; then
	exec 9>"${dir}/.lock"
	flock 9
fi

if [[ -x "${bin}" ]]; then
	echo "otelcol: ${bin} already built" >&2
	echo "${bin}"
	exit 0
fi

# Build in the Collector's own modules, unaffected by ours.
export GOWORK=off GOFLAGS='' CGO_ENABLED=0
start=${SECONDS}
if [[ ! -x "${dir}/bin/builder" ]]; then
	echo "otelcol: installing the collector builder v${OTELCOL_VERSION}..." >&2
	GOBIN="${dir}/bin" go install "go.opentelemetry.io/collector/cmd/builder@v${OTELCOL_VERSION}" >&2
fi
echo "otelcol: building the Collector (${config})..." >&2
build="${dir}/build.$$"
trap 'rm -rf "${build}"' EXIT
"${dir}/bin/builder" --config "${config}" --output-path "${build}" >&2
# Rename into place last, so an interrupted build never leaves a partial
# binary that a later run would take for a finished one.
mv -f "${build}/otelcol-tidemark" "${bin}"
echo "otelcol: built in $((SECONDS - start))s" >&2
echo "${bin}"
