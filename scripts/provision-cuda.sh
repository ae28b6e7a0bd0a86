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
PREFIX="target/cuda-tools"
PRINT_ENV_FILE_ONLY=0
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --env-file) PRINT_ENV_FILE_ONLY=1; shift ;;
    --force) FORCE=1; shift ;;
    *) echo "provision-cuda.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
MARKER="$PREFIX/.installed"
WANT="nvrtc=$NVRTC_VERSION nvcc=$NVCC_VERSION"

PYTHON="${PYTHON:-$(command -v python3 || command -v python || true)}"
if [ -z "$PYTHON" ]; then
  echo "provision-cuda.sh: python3 is needed (pip installs the NVIDIA wheels)" >&2
  exit 1
fi

if [ "$FORCE" = 1 ] || [ ! -f "$MARKER" ] || [ "$(cat "$MARKER")" != "$WANT" ]; then
  echo "provision-cuda.sh: installing nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION and nvidia-cuda-nvcc-cu12==$NVCC_VERSION into $PREFIX" >&2
  rm -rf "$PREFIX/pkgs"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --no-cache-dir \
    --target "$PREFIX/pkgs" \
    "nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION" "nvidia-cuda-nvcc-cu12==$NVCC_VERSION" >&2
  echo "$WANT" > "$MARKER"
fi

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

ENV_FILE="$PREFIX/env.sh"
cat > "$ENV_FILE" <<ENV
export DOTCOMPUTE_NVRTC_LIB="$NVRTC_LIB"
export DOTCOMPUTE_PTXAS="$PTXAS"
export DOTCOMPUTE_REQUIRE_NVRTC=1
export LD_LIBRARY_PATH="$NVRTC_DIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
ENV

if [ "$PRINT_ENV_FILE_ONLY" = 1 ]; then
  echo "$ENV_FILE"
else
  cat "$ENV_FILE"
fi
