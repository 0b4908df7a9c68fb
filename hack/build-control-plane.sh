#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok) from the
# Go module proxy at pinned versions. Built binaries are kept in a per-user cache keyed by version, so a fresh
# clone links them in seconds; the clone's bin/ only holds links (or copies) of the cached files.
#
# Usage: hack/build-control-plane.sh [OUT_DIR]   (default: bin/control-plane)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/bin/control-plane}"
cache="${SPARKPLACE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sparkplace}"
mkdir -p "$out" "$cache"
# One build at a time per cache: a second caller (another clone's make, an e2e TestMain) waits for the first
# and then finds the binaries cached, instead of building the same thing into the same temporary folders.
exec 9>"$cache/.build.lock"
flock 9

# log prints progress with the seconds elapsed since the script started: a cold build takes minutes.
log() { printf '[control-plane %4ss] %s\n' "$SECONDS" "$*" >&2; }

# link_into copies a cached file into the output folder: a hard link when the file systems allow it.
link_into() { ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"; }

# throwaway_module prints a fresh temporary module directory for a build that must not touch the project's go.mod.
throwaway_module() {
  local dir
  dir="$(mktemp -d "${TMPDIR:-/tmp}/sparkplace-build.XXXXXX")"
  (cd "$dir" && go mod init sparkplace.local/build >/dev/null 2>&1)
  printf '%s' "$dir"
}

build_kubernetes() {
  local dest="$cache/k8s-$K8S_VERSION"
  if [[ -x "$dest/kube-apiserver" && -x "$dest/kube-scheduler" && -x "$dest/kube-controller-manager" ]]; then
    log "kubernetes v$K8S_VERSION: cached in $dest"
    return
  fi
  log "kubernetes v$K8S_VERSION: building kube-apiserver, kube-scheduler, kube-controller-manager (about 5-8 minutes cold)"
  local mod; mod="$(throwaway_module)"
  (
    cd "$mod"
    go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
    local kmod; kmod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    # k8s.io/kubernetes replaces its staging modules with local paths; pin each to the matching published version.
    local minor="v0.${K8S_VERSION#*.}"
    {
      echo "require k8s.io/kubernetes v$K8S_VERSION"
      sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$kmod/go.mod" | while read -r m; do
        echo "replace $m => $m $minor"
      done
    } >>go.mod
    cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
    log "kubernetes: resolving modules"
    go mod tidy >/dev/null 2>&1 || go mod tidy
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    for c in kube-apiserver kube-scheduler kube-controller-manager; do
      log "kubernetes: building $c"
      go build -trimpath -ldflags="-s -w" -o "$dest.tmp/$c" "k8s.io/kubernetes/cmd/$c"
    done
  )
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  rm -rf "$mod"
}

build_etcd() {
  local dest="$cache/etcd-$ETCD_VERSION"
  if [[ -x "$dest/etcd" ]]; then log "etcd v$ETCD_VERSION: cached in $dest"; return; fi
  log "etcd v$ETCD_VERSION: building (about 1 minute)"
  local mod; mod="$(throwaway_module)"
  (
    cd "$mod"
    for m in api client/pkg client/v3 pkg server; do
      case "$m" in client/v3) p="go.etcd.io/etcd/client/v3";; *) p="go.etcd.io/etcd/$m/v3";; esac
      echo "require $p v$ETCD_VERSION" >>go.mod
    done
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    go build -trimpath -ldflags="-s -w" -o "$dest.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  rm -rf "$mod"
}

build_kwok() {
  local dest="$cache/kwok-$KWOK_VERSION"
  if [[ -x "$dest/kwok" && -d "$dest/stages" ]]; then log "kwok v$KWOK_VERSION: cached in $dest"; return; fi
  log "kwok v$KWOK_VERSION: building (about 1 minute)"
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/stages"
  GOBIN="$dest.tmp" go install -trimpath -ldflags="-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  local kdir
  kdir="$(cd "$(mktemp -d)" && go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  # kwok refuses to start without stages. The "fast" ones make nodes Ready and pods Running at once; the lease
  # heartbeat keeps nodes Ready (kwok renews their Leases with --node-lease-duration-seconds). Every folder has a
  # kustomization.yaml: skip it, it is not a stage.
  local stage_dir f
  for stage_dir in node/fast node/heartbeat-with-lease pod/fast; do
    for f in "$kdir/kustomize/stage/$stage_dir"/*.yaml; do
      [[ "$(basename "$f")" == kustomization.yaml ]] || cp "$f" "$dest.tmp/stages/"
    done
  done
  chmod u+w "$dest.tmp/stages/"*
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

versions="$(printf 'k8s=%s etcd=%s kwok=%s' "$K8S_VERSION" "$ETCD_VERSION" "$KWOK_VERSION")"
if [[ "$(cat "$out/VERSIONS" 2>/dev/null)" == "$versions" ]] &&
  [[ -x "$out/kube-apiserver" && -x "$out/kube-scheduler" && -x "$out/kube-controller-manager" ]] &&
  [[ -x "$out/etcd" && -x "$out/kwok" ]] && compgen -G "$out/kwok-stages/*.yaml" >/dev/null; then
  log "up to date in $out ($versions)"
  exit 0
fi

build_kubernetes
build_etcd
build_kwok

for f in "$cache/k8s-$K8S_VERSION"/* "$cache/etcd-$ETCD_VERSION/etcd" "$cache/kwok-$KWOK_VERSION/kwok"; do
  link_into "$f" "$out/$(basename "$f")"
done
rm -rf "$out/kwok-stages" && mkdir -p "$out/kwok-stages"
for f in "$cache/kwok-$KWOK_VERSION/stages"/*; do link_into "$f" "$out/kwok-stages/$(basename "$f")"; done
printf '%s\n' "$versions" >"$out/VERSIONS"
log "ready in $out ($(cat "$out/VERSIONS"))"
