#!/usr/bin/env bash
# Builds the Python package (maturin, the abi3 wheel of crates/dotcompute-python
# plus python/dotcompute) into the project-local venv and runs its pytest
# suite (python/tests). Called by scripts/test.sh; runs on its own too.
# Extra arguments go to pytest (e.g. -k runtime).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck disable=SC1090
source "$(bash scripts/provision-python.sh --env-file)"
PY="$DOTCOMPUTE_PYTHON_VENV/bin/python"

rm -rf target/python-wheels
# A debug build: it shares the workspace's compiled dependencies with
# `cargo test`, and the tests check behaviour, not speed.
"$DOTCOMPUTE_PYTHON_VENV/bin/maturin" build --quiet --interpreter "$PY" --out target/python-wheels
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall target/python-wheels/dotcompute-*.whl

# From the repository root the package resolves to the installed wheel (python/
# is not on sys.path), so the tests check what a user installs.
"$PY" -m pytest -q -p no:cacheprovider python/tests "$@"
