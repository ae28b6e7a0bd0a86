#!/usr/bin/env bash
# Builds (release) and runs the peer comparison; arguments go to it
# (--rounds N, --quick, --only NAME,..., --workloads ..., --json FILE).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --locked -q 2>/dev/null || cargo build --release
exec target/release/dotcompute-perf-comparison "$@"
