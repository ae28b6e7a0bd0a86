#!/usr/bin/env bash
# Instructions per message, from valgrind's callgrind: repeatable on a noisy,
# shared machine where wall time is not. Runs one contestant's workload twice
# (N1 and N2 messages) and prints (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up
# and shutdown cancel out (counters are also zeroed where the measured part
# starts, after warm-up); keeps the N2 profile for callgrind_annotate.
#
#   bash perf-comparison/callgrind.sh "dotcompute async send+receive" current-thread round_trip
#   bash perf-comparison/callgrind.sh "tokio mpsc" current-thread one_way 20000 60000
#
# Spinning waits (thread/spin tiers, multi-thread runtimes) make counts
# depend on scheduling; the current-thread async cases are deterministic.
set -euo pipefail
cd "$(dirname "$0")"
name=${1:?contestant name (substring)}
runtime=${2:?runtime (substring)}
workload=${3:?workload}
n1=${4:-10000}
n2=${5:-30000}
out=${CALLGRIND_OUT:-target/callgrind}
mkdir -p "$out"
cargo build --release --locked -q 2>/dev/null || cargo build --release
bin=target/release/dotcompute-perf-comparison
tag=$(echo "$name-$runtime-$workload" | tr -c 'a-zA-Z0-9\n' '_')
ir() {
  local n=$1 file="$out/$tag.$1.out"
  valgrind --tool=callgrind --zero-before='*measure_start*' --callgrind-out-file="$file" "$bin" --rounds 1 --warmup 1000 \
    --samples "$n" --messages "$n" --only "$name" --runtime "$runtime" --workloads "$workload" \
    >/dev/null 2>"$out/$tag.$n.log"
  grep -m1 -E '^(summary|totals):' "$file" | awk '{print $2}'
}
a=$(ir "$n1")
b=$(ir "$n2")
echo "$name | $runtime | $workload: $(( (b - a) / (n2 - n1) )) instructions per message (Ir $a at $n1, $b at $n2)"
echo "profile: $out/$tag.$n2.out (callgrind_annotate --inclusive=yes $out/$tag.$n2.out | head -60)"
