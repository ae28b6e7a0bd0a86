#!/usr/bin/env bash
# Provisions what the Python package's build and tests need, without root:
# a virtual environment under target/ (target/python-venv by default,
# ignored by git) with pinned wheels from PyPI:
#   maturin==1.16.0                builds the abi3 wheel from crates/dotcompute-python
#   numpy==2.4.6                   host arrays (a dependency of the package)
#   pytest==9.2.0 (+ iniconfig 2.3.1, packaging 26.4, pluggy 1.7.0, pygments 2.21.0)
#   msgpack==1.2.4                 the tests check the wire format against msgpack-python
#   uvloop==0.23.0                 the tests and the benchmark run on uvloop too
#   pydotcompute==0.2.0            the original, for the bug probes and the benchmark
#                                  (--no-deps: it needs only numpy and msgpack)
# Everything is installed with --no-deps, so nothing unpinned comes in.
#
# Idempotent: when the pinned set is already there it only rewrites the env
# file. Output: an env file (target/python-venv/env.sh) to `source`, whose
# lines are also printed, so either works:
#   source "$(bash scripts/provision-python.sh --env-file)"
#   eval "$(bash scripts/provision-python.sh)"
#
# Variables it exports:
#   DOTCOMPUTE_PYTHON_VENV            the virtual environment
#   DOTCOMPUTE_REQUIRE_PYDOTCOMPUTE=1 the comparison tests fail, instead of
#                                     skipping, if PyDotCompute is missing
#
# Options: --venv DIR (default target/python-venv), --env-file (print only the
#          env file's path), --force (recreate).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/python-venv
PRINT_ENV_FILE_ONLY=0
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --env-file) PRINT_ENV_FILE_ONLY=1; shift ;;
    --force) FORCE=1; shift ;;
    *) echo "provision-python.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-$(command -v python3 || true)}"
if [ -z "$PYTHON" ]; then
  echo "provision-python.sh: python3 (3.11 or newer) is needed" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "provision-python.sh: $("$PYTHON" --version) is too old: the package needs CPython 3.11 or newer" >&2
  exit 1
fi

PINS=(
  maturin==1.16.0
  numpy==2.4.6
  pytest==9.2.0 iniconfig==2.3.1 packaging==26.4 pluggy==1.7.0 pygments==2.21.0
  msgpack==1.2.4
  uvloop==0.23.0
  pydotcompute==0.2.0
)
WANT="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ${PINS[*]}"
MARKER="$VENV/.dotcompute-pins"
if [ "$FORCE" = 1 ] || [ ! -x "$VENV/bin/python" ] || [ ! -f "$MARKER" ] || [ "$(cat "$MARKER")" != "$WANT" ]; then
  echo "provision-python.sh: creating $VENV (${PINS[*]})" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps \
    --only-binary=:all: "${PINS[@]}" >&2
  echo "$WANT" > "$MARKER"
fi

VENV_ABS="$(cd "$VENV" && pwd)"
ENV_FILE="$VENV_ABS/env.sh"
cat > "$ENV_FILE" <<ENV
export DOTCOMPUTE_PYTHON_VENV="$VENV_ABS"
export DOTCOMPUTE_REQUIRE_PYDOTCOMPUTE=1
ENV
if [ "$PRINT_ENV_FILE_ONLY" = 1 ]; then
  echo "$ENV_FILE"
else
  cat "$ENV_FILE"
fi
