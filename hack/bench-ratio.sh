#!/usr/bin/env bash
# Runs the admission benchmark (BenchmarkAdmission in webhook/: sparkplace's admissions, cache hits and misses
# of Spark-shaped pods, each case interleaved with a no-op handler that decodes and encodes reviews alike)
# COUNT times and prints, per case, the median wall time and process CPU time per admission and the median
# (min-max) over the runs of each run's ratio to the no-op measured interleaved with it.
#
# Usage: hack/bench-ratio.sh [COUNT]   (default 10; BENCHTIME, default 2000x, is each case's admissions per run)
set -euo pipefail
count="${1:-10}"
benchtime="${BENCHTIME:-2000x}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(mktemp)"
trap 'rm -f "$out" "$out.test"' EXIT
go test -c -o "$out.test" ./webhook
for _ in $(seq "$count"); do
  (cd webhook && "$out.test" -test.run '^$' -test.bench 'Admission/' -test.benchtime "$benchtime" -test.count 1) | grep '^BenchmarkAdmission' >>"$out"
done
awk '
  function sorted(list, a,   n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n
  }
  function median(list,   a, n) { n = sorted(list, a); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function spread(list,   a, n) { n = sorted(list, a); return sprintf("%.2fx (%.2f-%.2f)", median(list), a[1], a[n]) }
  {
    name = $1; sub(/^BenchmarkAdmission\//, "", name); sub(/-[0-9]+$/, "", name)
    if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    for (i = 2; i < NF; i++) {
      if ($(i + 1) == "ns/op") wall[name] = wall[name] " " $i
      if ($(i + 1) == "cpu-ns/op") cpu[name] = cpu[name] " " $i
      if ($(i + 1) == "wall/noop") wr[name] = wr[name] " " $i
      if ($(i + 1) == "cpu/noop") cr[name] = cr[name] " " $i
      if ($(i + 1) == "misses/op") miss[name] = miss[name] " " $i
    }
  }
  END {
    printf "runs: %d; ratios: median (min-max) over the runs of each run'"'"'s ratio to the no-op interleaved with the case\n", '"$count"'
    printf "%-26s %11s %11s %24s %24s %9s\n", "handler", "wall ns/op", "cpu ns/op", "wall/noop", "cpu/noop", "misses/op"
    for (k = 1; k <= n; k++) {
      h = order[k]
      printf "%-26s %11.0f %11.0f %24s %24s %9.3f\n", h, median(wall[h]), median(cpu[h]), spread(wr[h]), spread(cr[h]), median(miss[h])
    }
  }' "$out"
