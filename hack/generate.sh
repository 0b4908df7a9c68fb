#!/usr/bin/env bash
# Generates the deep-copy code and the CRD manifests from the Go types in jobs/api with controller-gen.
#
# Usage: hack/generate.sh            write jobs/api/*/zz_generated.deepcopy.go and manifests/base/jobs/crds/
#        hack/generate.sh --verify   fail (listing the differences) when the checked-in files are out of date
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gen="$(hack/controller-gen.sh)"
crds="manifests/base/jobs/crds"

generate() { # generate CRD_DIR
  "$gen" object paths=./jobs/api/...
  "$gen" crd paths=./jobs/api/... output:crd:artifacts:config="$1"
}

if [[ "${1:-}" != "--verify" ]]; then
  generate "$crds"
  exit 0
fi

# Verify: generate into a scratch copy of the tree's generated files and compare.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mapfile -t deepcopy < <(git ls-files -- 'jobs/api/**/zz_generated.deepcopy.go')
for f in "${deepcopy[@]}"; do mkdir -p "$tmp/$(dirname "$f")"; cp "$f" "$tmp/$f"; done
"$gen" object paths=./jobs/api/... 
"$gen" crd paths=./jobs/api/... output:crd:artifacts:config="$tmp/crds"
status=0
for f in "${deepcopy[@]}"; do
  if ! diff -u "$tmp/$f" "$f"; then status=1; fi
  cp "$tmp/$f" "$f" # leave the working tree as it was
done
if ! diff -ru "$crds" "$tmp/crds"; then status=1; fi
if (( status != 0 )); then
  echo "generated files are out of date: run 'make generate' and commit the result" >&2
fi
exit "$status"
