#!/usr/bin/env bash
# Builds promtool from the Prometheus module version go.mod pins (the parser the chart tests use), so the alert
# rules are unit-tested by Prometheus' own `promtool test rules` (cached per user; OUT gets a link).
#
# Usage: hack/promtool.sh [OUT]   (default: bin/promtool)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$root/hack/go-tool.sh" promtool github.com/prometheus/prometheus github.com/prometheus/prometheus/cmd/promtool "${1:-$root/bin/promtool}"
