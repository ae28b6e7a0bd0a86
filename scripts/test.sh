#!/usr/bin/env bash
# Runs the whole test suite: every crate's unit, integration, doc and
# compile-fail tests, then the loom model checks of the lock-free code.
# Installs nothing by hand: everything comes from Cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace --locked

if [ -x scripts/loom.sh ]; then
  echo "== loom model checks"
  bash scripts/loom.sh
fi
