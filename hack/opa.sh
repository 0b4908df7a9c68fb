#!/usr/bin/env bash
# Builds the opa CLI from the OPA module version go.mod pins, so `make lint` checks, formats and tests the policy
# bundle with exactly the OPA that sparkplace embeds. The binary is kept in the per-user cache keyed by version
# (like the control plane); OUT only gets a link (or copy) of it.
#
# Usage: hack/opa.sh [OUT]   (default: bin/opa)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/bin/opa}"
cache="${SPARKPLACE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sparkplace}"

version="$(cd "$root" && go list -m -f '{{.Version}}' github.com/open-policy-agent/opa)"
dest="$cache/opa-$version"
mkdir -p "$cache"
# One build at a time per cache: a second clone (or CI) waits for the first instead of building beside it.
exec 9>"$dest.lock"
flock 9
if [[ ! -x "$dest/opa" ]]; then
  printf '[opa] building opa %s into %s (a few minutes cold, more on a busy machine)\n' "$version" "$dest" >&2
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  # go install pkg@version builds with OPA's own go.mod, not ours: the opa CLI exactly as OPA releases it.
  GOBIN="$dest.tmp" GOFLAGS=-mod=mod go install "github.com/open-policy-agent/opa@$version"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
fi
mkdir -p "$(dirname "$out")"
ln -f "$dest/opa" "$out" 2>/dev/null || cp -f "$dest/opa" "$out"
