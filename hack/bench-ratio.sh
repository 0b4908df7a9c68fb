#!/usr/bin/env bash
# Runs the admission benchmark (BenchmarkAdmission in webhook/: sparkplace's admissions, cache hits and misses
# of Spark-shaped pods, beside a no-op handler that decodes and encodes the same reviews) COUNT times, all
# cases in each run so that machine load hits them alike, and prints the median wall time and process CPU
# time per admission of each case and its ratios to the no-op handler.
#
# Usage: hack/bench-ratio.sh [COUNT]   (default 10)
set -euo pipefail
count="${1:-10}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(mktemp)"
trap 'rm -f "$out" "$out.test"' EXIT
go test -c -o "$out.test" ./webhook
for _ in $(seq "$count"); do
  (cd webhook && "$out.test" -test.run '^$' -test.bench 'Admission/' -test.count 1) | grep '^BenchmarkAdmission' >>"$out"
done
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    name = $1; sub(/^BenchmarkAdmission\//, "", name); sub(/-[0-9]+$/, "", name)
    if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    for (i = 2; i < NF; i++) {
      if ($(i + 1) == "ns/op") wall[name] = wall[name] " " $i
      if ($(i + 1) == "cpu-ns/op") cpu[name] = cpu[name] " " $i
      if ($(i + 1) == "misses/op") miss[name] = miss[name] " " $i
    }
  }
  END {
    printf "runs: %d\n", '"$count"'
    printf "%-28s %12s %12s %10s %10s %10s\n", "handler", "wall ns/op", "cpu ns/op", "wall/noop", "cpu/noop", "misses/op"
    w0 = median(wall["noop"]); c0 = median(cpu["noop"])
    for (k = 1; k <= n; k++) {
      h = order[k]
      printf "%-28s %12.0f %12.0f %9.2fx %9.2fx %10.3f\n", h, median(wall[h]), median(cpu[h]), median(wall[h]) / w0, median(cpu[h]) / c0, median(miss[h])
    }
  }' "$out"
