#!/usr/bin/env bash
# Runs the whole test suite: every crate's unit, integration, doc and
# compile-fail tests, then the loom model checks of the lock-free code.
# Installs what the tests need itself: crates from Cargo, NVRTC and ptxas
# from PyPI wheels into target/cuda-tools (scripts/provision-cuda.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== provisioning NVRTC and ptxas (pip wheels, project-local)"
# The CUDA compile tests then run for real (and fail, not skip, if the tools
# are unusable). Kernels that need a GPU still skip, saying why.
# shellcheck disable=SC1090
source "$(bash scripts/provision-cuda.sh --env-file)"

echo "== cargo test --workspace"
cargo test --workspace --locked

if [ -x scripts/loom.sh ]; then
  echo "== loom model checks"
  bash scripts/loom.sh
fi
