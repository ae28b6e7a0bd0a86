#!/usr/bin/env bash
# Model-checks the SPSC ring protocol with loom (crates/dotcompute/src/ring/loom_tests.rs).
# A separate target dir keeps the `--cfg loom` build from invalidating the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
RUSTFLAGS="--cfg loom" cargo test -p dotcompute --release --lib ring -j 2 "$@"
