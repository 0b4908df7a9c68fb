#!/usr/bin/env bash
# Prints the path of controller-gen at a pinned version, building it from the Go module proxy into the per-user
# cache on first use (about a minute cold), so `make generate` and its CI check need nothing installed.
#
# Usage: hack/controller-gen.sh   (prints the binary's path; progress goes to stderr)
set -euo pipefail

CONTROLLER_TOOLS_VERSION="${CONTROLLER_TOOLS_VERSION:-v0.23.0}"

cache="${SPARKPLACE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sparkplace}"
dest="$cache/controller-gen-$CONTROLLER_TOOLS_VERSION"
if [[ ! -x "$dest/controller-gen" ]]; then
  echo "controller-gen $CONTROLLER_TOOLS_VERSION: building into $dest" >&2
  mkdir -p "$dest"
  # go install pkg@version builds in module mode with the tool's own go.mod, leaving the project's alone.
  GOBIN="$dest" GOFLAGS=-mod=mod go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
fi
printf '%s\n' "$dest/controller-gen"
