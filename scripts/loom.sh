#!/usr/bin/env bash
# Model-checks with loom the SPSC ring protocol (crates/dotcompute/src/ring/loom_tests.rs)
# and the process tier's nap handshake (crates/dotcompute/src/ipc/nap_gate.rs).
# A separate target dir keeps the `--cfg loom` build from invalidating the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
# `--skip ring_channel`: the spin tier's RingChannel (runtime/ring_channel.rs)
# matches "ring" but its tests are plain threaded tests, not loom models.
RUSTFLAGS="--cfg loom" cargo test -p dotcompute --release --lib -j 2 "$@" -- ring ipc::nap_gate --skip ring_channel
