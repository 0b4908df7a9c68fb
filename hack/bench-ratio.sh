#!/usr/bin/env bash
# Runs the admission benchmark (sparkplace's executor admission, a driver admission with its zone choice over
# a 5,000-node capacity index, and a no-op handler that decodes and encodes the same review) COUNT times,
# alternating them in each run so machine load hits all alike, and prints the median wall time and process
# CPU time per admission of each, and their ratios to the no-op handler.
#
# Usage: hack/bench-ratio.sh [COUNT]   (default 10)
set -euo pipefail
count="${1:-10}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
go test -c -o "$out.test" ./webhook
for _ in $(seq "$count"); do
  (cd webhook && "$out.test" -test.run '^$' -test.bench 'Admission/(noop|executor|driver-capacity)$' -test.count 1) | grep '^BenchmarkAdmission' >>"$out"
done
rm -f "$out.test"
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    name = $1; sub(/^BenchmarkAdmission\//, "", name); sub(/-[0-9]+$/, "", name)
    for (i = 2; i < NF; i++) {
      if ($(i + 1) == "ns/op") wall[name] = wall[name] " " $i
      if ($(i + 1) == "cpu-ns/op") cpu[name] = cpu[name] " " $i
    }
  }
  END {
    printf "runs: %d\n", '"$count"'
    printf "%-16s %14s %16s\n", "handler", "wall ns/op", "cpu ns/op"
    for (h in wall) printf "%-16s %14.0f %16.0f\n", h, median(wall[h]), median(cpu[h])
    printf "ratio executor/noop: wall %.2fx, cpu %.2fx\n", median(wall["executor"]) / median(wall["noop"]), median(cpu["executor"]) / median(cpu["noop"])
    printf "ratio driver-capacity/noop: wall %.2fx, cpu %.2fx\n", median(wall["driver-capacity"]) / median(wall["noop"]), median(cpu["driver-capacity"]) / median(cpu["noop"])
  }' "$out"
