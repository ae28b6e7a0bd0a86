#!/usr/bin/env bash
# Provisions the comparison library the workload benchmarks measure beside
# ours, without root: python-igraph (C core; its PageRank is PRPACK), the
# library a Python user would pick for PageRank (`pip install igraph`),
# installed with pip from pinned wheels into a project-local prefix
# (target/bench-tools by default, ignored by git).
#
# Pinned: igraph==1.0.0 (manylinux abi3 wheel) and its one required
# dependency texttable==1.7.0 (`Requires-Dist: texttable>=1.6.2`; every other
# Requires-Dist of the wheel is behind an extra). Installed with --no-deps so
# nothing else is pulled in.
#
# Idempotent: when the pinned versions are already there it only rewrites the
# env file (a fraction of a second).
#
# Output: an env file (target/bench-tools/env.sh) to `source`, whose lines are
# also printed on stdout, so either of these works:
#   source "$(bash scripts/provision-bench.sh --env-file)"
#   eval "$(bash scripts/provision-bench.sh)"
#
# Variables it exports (read by `dotcompute bench pagerank` and its tests):
#   DOTCOMPUTE_PYTHON            the interpreter the wheels were installed for
#   PYTHONPATH                   prefixed with the install folder
#   DOTCOMPUTE_REQUIRE_IGRAPH=1  the igraph comparison fails, instead of
#                                reporting "not measured", if igraph is unusable
#
# Options: --prefix DIR (default target/bench-tools), --env-file (print only the env file's path),
#          --force (reinstall).
set -euo pipefail
cd "$(dirname "$0")/.."

IGRAPH_VERSION="${DOTCOMPUTE_IGRAPH_WHEEL_VERSION:-1.0.0}"
TEXTTABLE_VERSION="${DOTCOMPUTE_TEXTTABLE_WHEEL_VERSION:-1.7.0}"
# shellcheck source=lib/pip-prefix.sh
source scripts/lib/pip-prefix.sh
pip_prefix_options provision-bench.sh target/bench-tools "$@"

# The interpreter itself, not a wrapper (a pyenv shim costs ~50 ms a start).
PYTHON="$("$PYTHON" -c 'import sys; print(sys.executable)')"
# The marker names the interpreter too: the wheel is abi3 but a different
# Python may still need a different platform tag.
PY_TAG="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
WANT="igraph=$IGRAPH_VERSION texttable=$TEXTTABLE_VERSION python=$PY_TAG"
pip_prefix_install "$WANT" --only-binary=:all: "igraph==$IGRAPH_VERSION" "texttable==$TEXTTABLE_VERSION"

if ! PYTHONPATH="$PREFIX/pkgs" "$PYTHON" -c 'import igraph' 2>/dev/null; then
  echo "provision-bench.sh: igraph does not import from $PREFIX/pkgs; run with --force" >&2
  exit 1
fi

pip_prefix_env_file <<ENV
export DOTCOMPUTE_PYTHON="$PYTHON"
export PYTHONPATH="$PREFIX/pkgs\${PYTHONPATH:+:\$PYTHONPATH}"
export DOTCOMPUTE_REQUIRE_IGRAPH=1
ENV

