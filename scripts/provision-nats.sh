#!/usr/bin/env bash
# Provisions the NATS server the dotcompute-nats tests and benchmarks run
# against: Debian's `nats-server` package (2.9.x on bookworm), installed with
# apt when it is missing. The tests start their own server from this binary
# on loopback, on a free port, with a temporary JetStream store; nothing is
# started here and no system service is used.
#
# Idempotent: when a usable nats-server is already installed it only
# rewrites the env file.
#
# Output: an env file (target/nats-tools/env.sh) to `source`, whose lines are
# also printed on stdout, so either of these works:
#   source "$(bash scripts/provision-nats.sh --env-file)"
#   eval "$(bash scripts/provision-nats.sh)"
#
# Variables it exports (read by the dotcompute-nats tests and benchmark):
#   DOTCOMPUTE_NATS_SERVER=PATH   the nats-server binary
#   DOTCOMPUTE_REQUIRE_NATS=1     tests that need the server fail, instead of
#                                 skipping, if it cannot be started
#
# Options: --env-file (print only the env file's path).
# Exit status 1, with the reason on stderr, when no nats-server can be had
# (not installed and not root, or apt failed).
set -euo pipefail
cd "$(dirname "$0")/.."

ENV_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --env-file) ENV_ONLY=1 ;;
    *) echo "provision-nats.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

find_server() {
  if [ -n "${DOTCOMPUTE_NATS_SERVER:-}" ] && [ -x "$DOTCOMPUTE_NATS_SERVER" ]; then
    echo "$DOTCOMPUTE_NATS_SERVER"; return 0
  fi
  command -v nats-server 2>/dev/null && return 0
  # Debian installs it in /usr/sbin, which is not on every user's PATH.
  [ -x /usr/sbin/nats-server ] && { echo /usr/sbin/nats-server; return 0; }
  return 1
}

if ! SERVER="$(find_server)"; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "provision-nats.sh: nats-server is not installed and cannot be installed here (needs root and apt-get): install Debian's nats-server package" >&2
    exit 1
  fi
  echo "provision-nats.sh: installing Debian's nats-server package" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends nats-server >&2; then
    apt-get -o DPkg::Lock::Timeout=300 update >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends nats-server >&2
  fi
  SERVER="$(find_server)" || { echo "provision-nats.sh: nats-server still not found after apt-get install" >&2; exit 1; }
fi

# `nats-server --version` prints e.g. "nats-server: v2.9.10".
VERSION="$("$SERVER" --version 2>&1 | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n1)"
case "$VERSION" in
  2.9.* | 2.1[0-9].* | 2.[2-9][0-9].*) ;;
  *) echo "provision-nats.sh: $SERVER reports version '${VERSION:-unknown}'; JetStream as used here needs 2.9 or newer" >&2; exit 1 ;;
esac

OUT=target/nats-tools
mkdir -p "$OUT"
ENV_FILE="$PWD/$OUT/env.sh"
cat >"$ENV_FILE" <<ENV
export DOTCOMPUTE_NATS_SERVER="$SERVER"
export DOTCOMPUTE_REQUIRE_NATS=1
ENV
if [ "$ENV_ONLY" = 1 ]; then
  echo "$ENV_FILE"
else
  cat "$ENV_FILE"
fi
