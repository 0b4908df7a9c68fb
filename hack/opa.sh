#!/usr/bin/env bash
# Builds the opa CLI from the OPA module version go.mod pins, so `make lint` checks, formats and tests the policy
# bundle with exactly the OPA that sparkplace embeds (cached per user; OUT gets a link).
#
# Usage: hack/opa.sh [OUT]   (default: bin/opa)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$root/hack/go-tool.sh" opa github.com/open-policy-agent/opa github.com/open-policy-agent/opa "${1:-$root/bin/opa}"
