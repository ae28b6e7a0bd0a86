#!/usr/bin/env bash
# Provisions the CUDA compile tools the device tests use, without root and
# without a GPU: NVRTC (libnvrtc.so.12) from the `nvidia-cuda-nvrtc-cu12`
# wheel and `ptxas` from the `nvidia-cuda-nvcc-cu12` wheel, installed with pip
# into a project-local prefix (target/cuda-tools by default, ignored by git).
#
# Idempotent: when the pinned versions are already there it only rewrites the
# env file (a fraction of a second).
#
# Output: an env file (target/cuda-tools/env.sh) to `source`, whose lines are
# also printed on stdout, so either of these works:
#   source "$(bash scripts/provision-cuda.sh --env-file)"
#   eval "$(bash scripts/provision-cuda.sh)"
#
# Variables it exports (read by crates/dotcompute/src/device):
#   DOTCOMPUTE_NVRTC_LIB       absolute path of libnvrtc.so.12 (preloaded by the compiler)
#   DOTCOMPUTE_PTXAS           absolute path of ptxas
#   DOTCOMPUTE_REQUIRE_NVRTC=1 the compile tests fail, instead of skipping, if the tools are unusable
#   LD_LIBRARY_PATH            prefixed with the NVRTC lib folder (for other programs that dlopen it)
#
# Options: --prefix DIR (default target/cuda-tools), --env-file (print only the env file's path),
#          --force (reinstall).
set -euo pipefail
cd "$(dirname "$0")/.."

NVRTC_VERSION="${DOTCOMPUTE_NVRTC_WHEEL_VERSION:-12.9.86}"
NVCC_VERSION="${DOTCOMPUTE_NVCC_WHEEL_VERSION:-12.9.86}"
# shellcheck source=lib/pip-prefix.sh
source scripts/lib/pip-prefix.sh
pip_prefix_options provision-cuda.sh target/cuda-tools "$@"
pip_prefix_install "nvrtc=$NVRTC_VERSION nvcc=$NVCC_VERSION" \
  "nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION" "nvidia-cuda-nvcc-cu12==$NVCC_VERSION"

NVRTC_DIR="$PREFIX/pkgs/nvidia/cuda_nvrtc/lib"
NVRTC_LIB="$NVRTC_DIR/libnvrtc.so.12"
PTXAS="$PREFIX/pkgs/nvidia/cuda_nvcc/bin/ptxas"
for f in "$NVRTC_LIB" "$PTXAS"; do
  if [ ! -e "$f" ]; then
    echo "provision-cuda.sh: expected $f after install; run with --force" >&2
    exit 1
  fi
done
chmod +x "$PTXAS"

pip_prefix_env_file <<ENV
export DOTCOMPUTE_NVRTC_LIB="$NVRTC_LIB"
export DOTCOMPUTE_PTXAS="$PTXAS"
export DOTCOMPUTE_REQUIRE_NVRTC=1
export LD_LIBRARY_PATH="$NVRTC_DIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
ENV

