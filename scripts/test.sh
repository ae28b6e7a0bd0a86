#!/usr/bin/env bash
# Runs the whole test suite: every crate's unit, integration, doc and
# compile-fail tests, then the loom model checks of the lock-free code.
# Installs what the tests need itself: crates from Cargo, NVRTC and ptxas
# from PyPI wheels into target/cuda-tools (scripts/provision-cuda.sh), and
# igraph from PyPI wheels into target/bench-tools (scripts/provision-bench.sh),
# the Vulkan loader with Mesa's lavapipe from apt
# (scripts/provision-vulkan.sh), so the wgpu tests run on a real driver;
# Debian's nats-server (scripts/provision-nats.sh); and the Python package's
# venv (scripts/provision-python.sh) whose wheel it builds and tests
# (scripts/test-python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== provisioning NVRTC and ptxas (pip wheels, project-local)"
# The CUDA compile tests then run for real (and fail, not skip, if the tools
# are unusable). Kernels that need a GPU still skip, saying why.
# shellcheck disable=SC1090
source "$(bash scripts/provision-cuda.sh --env-file)"

echo "== provisioning igraph (pip wheels, project-local)"
# `bench pagerank` and its tests then compare our ranks with igraph's for
# real (and fail, not skip, if igraph is unusable).
# shellcheck disable=SC1090
source "$(bash scripts/provision-bench.sh --env-file)"

echo "== provisioning Vulkan (libvulkan1 + mesa-vulkan-drivers: lavapipe)"
# The wgpu tests then run for real on lavapipe (and fail, not skip, if no
# adapter is found: the script exports DOTCOMPUTE_REQUIRE_WGPU=1).
eval "$(bash scripts/provision-vulkan.sh)"
# Mesa's window-system code asks for this even when nothing is drawn.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

echo "== provisioning nats-server (Debian package)"
# The dotcompute-nats tests start their own nats-server on loopback from it
# (and fail, not skip, when it is provisioned but unusable). Without root
# outside CI they skip, saying why; in CI a missing server is an error.
if NATS_ENV="$(bash scripts/provision-nats.sh --env-file)"; then
  # shellcheck disable=SC1090
  source "$NATS_ENV"
elif [ "${CI:-}" = true ]; then
  echo "test.sh: nats-server could not be provisioned (see above)" >&2
  exit 1
else
  echo "test.sh: warning: no nats-server; the NATS tests will skip" >&2
fi

echo "== cargo test --workspace"
cargo test --workspace --locked

echo "== Python package: maturin wheel + pytest (python/tests)"
bash scripts/test-python.sh

if [ -x scripts/loom.sh ]; then
  echo "== loom model checks"
  bash scripts/loom.sh
fi
