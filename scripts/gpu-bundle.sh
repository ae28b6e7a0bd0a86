#!/usr/bin/env bash
# Builds, on a machine without a GPU, everything the GPU checks run, and
# puts it in .device-bin/ (git-ignored) with run.sh, for a GPU machine that
# has the NVIDIA driver and CUDA (NVRTC) but no Rust toolchain:
#   bash scripts/gpu-bundle.sh            # here
#   bash .device-bin/run.sh OUT_DIR       # there, from the repository root
# run.sh runs the CUDA tests with DOTCOMPUTE_REQUIRE_GPU=1 (a missing GPU
# fails them instead of skipping) and the GPU benchmarks, writing logs and
# JSON into OUT_DIR. NVRTC is not bundled (over 100 MB): run.sh looks for
# the machine's libnvrtc, or takes DOTCOMPUTE_NVRTC_LIB.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.device-bin
rm -rf "$BIN" && mkdir -p "$BIN"
cargo build --release --locked -p dotcompute-cli
cp target/release/dotcompute "$BIN/"
# The runtime's CUDA tests (features: CUDA and its baselines) and the
# workloads' CUDA tests, each binary named after its crate and test.
{
  cargo test --release --locked -p dotcompute --features cuda-baselines --no-run \
    --test gpu_cuda --test device_cuda --message-format=json 2>/dev/null
  cargo test --release --locked -p dotcompute-workloads --no-run \
    --test pagerank_device --test anomaly_gpu --message-format=json 2>/dev/null
} | python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        crate = m["package_id"].split("#")[0].rsplit("/", 1)[-1]
        name = ("workload_" if "workloads" in crate else "") + m["target"]["name"]
        shutil.copy(m["executable"], sys.argv[1] + "/" + name)
        print("bundled", name)
' "$BIN"
cat > "$BIN/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the bundled GPU tests and benchmarks; logs and JSON go to $1.
set -uo pipefail
OUT="${1:?usage: run.sh OUT_DIR}"; mkdir -p "$OUT"
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${DOTCOMPUTE_NVRTC_LIB:-}" ]; then
  DOTCOMPUTE_NVRTC_LIB="$(ls /usr/local/cuda/lib64/libnvrtc.so* /usr/local/cuda/targets/*/lib/libnvrtc.so* 2>/dev/null | grep -v builtins | head -1)"
  export DOTCOMPUTE_NVRTC_LIB
fi
echo "NVRTC: ${DOTCOMPUTE_NVRTC_LIB:-none found}" | tee "$OUT/env.txt"
nvidia-smi -L >> "$OUT/env.txt" 2>&1
"$HERE/dotcompute" info > "$OUT/info.txt" 2>&1
export DOTCOMPUTE_REQUIRE_GPU=1 RUST_BACKTRACE=1
for t in "$HERE"/gpu_cuda "$HERE"/device_cuda "$HERE"/workload_pagerank_device "$HERE"/workload_anomaly_gpu; do
  [ -x "$t" ] || continue
  timeout 300 "$t" --test-threads=1 > "$OUT/test-$(basename "$t").log" 2>&1
  echo "$(basename "$t"): exit $?" | tee -a "$OUT/summary.txt"
done
timeout 300 "$HERE/dotcompute" bench latency --tier gpu --samples 100000 --json "$OUT/gpu-latency.json" --svg "$OUT/gpu-latency.svg" > "$OUT/bench-latency.log" 2>&1
echo "bench latency: exit $?" | tee -a "$OUT/summary.txt"
timeout 300 "$HERE/dotcompute" bench throughput --tier gpu --messages 2000000 --json "$OUT/gpu-throughput.json" > "$OUT/bench-throughput.log" 2>&1
echo "bench throughput: exit $?" | tee -a "$OUT/summary.txt"
RUN
chmod +x "$BIN/run.sh"
# Debug info makes the bundle ~185 MB; the device tool carries 64 MiB.
for f in "$BIN"/*; do
  [ "$(basename "$f")" = run.sh ] || strip "$f"
done
du -sh "$BIN"
