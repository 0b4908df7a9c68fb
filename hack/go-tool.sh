#!/usr/bin/env bash
# Builds a Go command-line tool at the version of its module that go.mod pins, keeps the binary in the per-user
# cache keyed by version (like the control plane), and links (or copies) it to OUT. opa.sh and promtool.sh use it.
#
# Usage: hack/go-tool.sh NAME MODULE PACKAGE OUT
set -euo pipefail

name="$1" module="$2" package="$3" out="$4"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SPARKPLACE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sparkplace}"

version="$(cd "$root" && go list -m -f '{{.Version}}' "$module")"
dest="$cache/$name-$version"
mkdir -p "$cache"
# One build at a time per cache: a second clone (or CI) waits for the first instead of building beside it.
exec 9>"$dest.lock"
flock 9
if [[ ! -x "$dest/$name" ]]; then
  printf '[%s] building %s %s into %s (several minutes cold, more on a busy machine)\n' "$name" "$name" "$version" "$dest" >&2
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  # go install pkg@version builds with the tool's own go.mod, not ours: the tool exactly as its project releases it.
  GOBIN="$dest.tmp" GOFLAGS=-mod=mod go install "$package@$version"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
fi
mkdir -p "$(dirname "$out")"
ln -f "$dest/$name" "$out" 2>/dev/null || cp -f "$dest/$name" "$out"
