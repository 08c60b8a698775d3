#!/usr/bin/env bash
# Regenerates the web UI's screenshots in docs/screenshots (the README shows
# them): the browser test takes them on the demo fleet, light and dark,
# desktop and phone. With pngquant installed (apt-get install pngquant) the
# PNGs are quantized to a fraction of their size.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/docs/screenshots"
mkdir -p "$out"
CI="${CI:-true}" go test -count=1 -run 'TestBrowser/sqlite' ./internal/web/ -args -screenshots "$out"
if command -v pngquant >/dev/null 2>&1; then
	pngquant --force --skip-if-larger --strip --quality 70-95 --ext .png "$out"/*.png
fi
du -sh "$out"
