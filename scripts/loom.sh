#!/usr/bin/env bash
# Model-checks with loom the SPSC ring protocol (crates/dotcompute/src/ring/loom_tests.rs),
# the GPU ring-kernel protocol (crates/dotcompute/src/gpu/protocol/ring/loom_tests.rs)
# and the process tier's nap handshake (crates/dotcompute/src/ipc/nap_gate.rs).
# A separate target dir keeps the `--cfg loom` build from invalidating the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
# Every loom model lives in a module named `loom_tests`, so that is the
# filter (a broader one such as "ring" also picked plain threaded tests,
# which panic under --cfg loom outside a model).
RUSTFLAGS="--cfg loom" cargo test -p dotcompute --release --lib -j 2 "$@" -- loom_tests
