# Shared by the provision-*.sh scripts: pinned wheels installed with pip into
# a project-local prefix, an idempotence marker, and an env file to source.
# Source it, then call, in order:
#   pip_prefix_options SCRIPT DEFAULT_PREFIX "$@"   sets PREFIX, PYTHON, FORCE, PRINT_ENV_FILE_ONLY
#   pip_prefix_install WANT PIP_ARGS...            installs into $PREFIX/pkgs unless the marker says WANT
#   pip_prefix_env_file < LINES                    writes $PREFIX/env.sh, prints it (or its path)

pip_prefix_options() {
  PIP_PREFIX_SCRIPT="$1"
  PREFIX="$2"
  shift 2
  PRINT_ENV_FILE_ONLY=0
  FORCE=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --prefix) PREFIX="$2"; shift 2 ;;
      --env-file) PRINT_ENV_FILE_ONLY=1; shift ;;
      --force) FORCE=1; shift ;;
      *) echo "$PIP_PREFIX_SCRIPT: unknown option $1" >&2; exit 2 ;;
    esac
  done
  mkdir -p "$PREFIX"
  PREFIX="$(cd "$PREFIX" && pwd)"
  PYTHON="${PYTHON:-$(command -v python3 || command -v python || true)}"
  if [ -z "$PYTHON" ]; then
    echo "$PIP_PREFIX_SCRIPT: python3 is needed (pip installs the pinned wheels)" >&2
    exit 1
  fi
}

pip_prefix_install() {
  local want="$1"
  shift
  local marker="$PREFIX/.installed"
  if [ "$FORCE" = 1 ] || [ ! -f "$marker" ] || [ "$(cat "$marker")" != "$want" ]; then
    echo "$PIP_PREFIX_SCRIPT: installing $* into $PREFIX ($want)" >&2
    rm -rf "$PREFIX/pkgs"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --no-cache-dir \
      --target "$PREFIX/pkgs" "$@" >&2
    echo "$want" > "$marker"
  fi
}

pip_prefix_env_file() {
  local env_file="$PREFIX/env.sh"
  cat > "$env_file"
  if [ "$PRINT_ENV_FILE_ONLY" = 1 ]; then
    echo "$env_file"
  else
    cat "$env_file"
  fi
}
