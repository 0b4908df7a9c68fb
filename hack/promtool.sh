#!/usr/bin/env bash
# Builds promtool from the Prometheus module version go.mod pins (the parser the chart tests use), so the
# alert rules are unit-tested by Prometheus' own `promtool test rules`. The binary is kept in the per-user
# cache keyed by version (like the control plane and opa); OUT only gets a link (or copy) of it.
#
# Usage: hack/promtool.sh [OUT]   (default: bin/promtool)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/bin/promtool}"
cache="${SPARKPLACE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sparkplace}"

version="$(cd "$root" && go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"
dest="$cache/promtool-$version"
mkdir -p "$cache"
# One build at a time per cache: concurrent test runs wait for it instead of building twice.
exec 9>"$dest.lock"
flock 9
if [[ ! -x "$dest/promtool" ]]; then
  printf '[promtool] building promtool %s into %s (several minutes cold)\n' "$version" "$dest" >&2
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  # go install pkg@version builds with Prometheus' own go.mod, not ours: promtool exactly as released.
  GOBIN="$dest.tmp" GOFLAGS=-mod=mod go install "github.com/prometheus/prometheus/cmd/promtool@$version"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
fi
mkdir -p "$(dirname "$out")"
ln -f "$dest/promtool" "$out" 2>/dev/null || cp -f "$dest/promtool" "$out"
