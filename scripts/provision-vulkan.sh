#!/usr/bin/env bash
# Provisions a Vulkan driver the wgpu backend's tests run on: the Vulkan
# loader (libvulkan1) and Mesa's Vulkan drivers (mesa-vulkan-drivers), which
# include lavapipe, a conformant Vulkan implementation on the CPU (its
# adapter is named "llvmpipe"). With it every wgpu kernel really executes on
# a machine without a GPU; on a machine with a GPU its own Vulkan driver is
# found beside lavapipe.
#
# Installs with apt when the packages are missing and we are root (CI runs
# as root on Debian); waits up to 5 minutes for another apt to release its
# lock. Idempotent: with both packages installed it only checks and prints.
#
# Output: the environment to export, on stdout (the progress goes to
# stderr), so this works:
#   eval "$(bash scripts/provision-vulkan.sh)"
# Variables it exports (read by the wgpu tests):
#   DOTCOMPUTE_REQUIRE_WGPU=1   when the driver is installed: a test that
#                               finds no wgpu adapter fails instead of
#                               skipping. Under CI=true it is exported even
#                               when the install failed, so CI fails loudly.
#
# Options: --check (install nothing; report what is there).
set -euo pipefail

check_only=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    *) echo "provision-vulkan.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PACKAGES=(libvulkan1 mesa-vulkan-drivers)

missing() {
  local out=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      out+=("$p")
    fi
  done
  echo "${out[@]:-}"
}

installed=1
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "provision-vulkan.sh: not a Debian system (no dpkg-query); looking for a Vulkan loader only" >&2
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    echo "provision-vulkan.sh: no libvulkan.so.1 found; install your distribution's Vulkan loader and Mesa drivers" >&2
    installed=0
  fi
else
  need="$(missing)"
  if [ -n "$need" ]; then
    if [ "$check_only" = 1 ]; then
      echo "provision-vulkan.sh: missing: $need" >&2
      installed=0
    elif [ "$(id -u)" != 0 ]; then
      echo "provision-vulkan.sh: missing: $need, and not root: install them with apt-get install $need" >&2
      installed=0
    else
      echo "provision-vulkan.sh: installing $need with apt" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt() { apt-get -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3 "$@"; }
      # shellcheck disable=SC2086
      if ! apt install -y --no-install-recommends $need >&2; then
        apt update >&2 || true
        # shellcheck disable=SC2086
        apt install -y --no-install-recommends $need >&2 || installed=0
      fi
      if [ -n "$(missing)" ]; then
        installed=0
      fi
    fi
  fi
fi

if [ "$installed" = 1 ]; then
  icds="$(ls /usr/share/vulkan/icd.d/ 2>/dev/null | tr '\n' ' ')"
  echo "provision-vulkan.sh: Vulkan loader and Mesa drivers present (ICDs: ${icds:-none})" >&2
  echo "export DOTCOMPUTE_REQUIRE_WGPU=1"
elif [ "${CI:-}" = "true" ]; then
  echo "provision-vulkan.sh: could not install the Vulkan driver; the wgpu tests will fail (CI=true)" >&2
  echo "export DOTCOMPUTE_REQUIRE_WGPU=1"
else
  echo "provision-vulkan.sh: no Vulkan driver; the wgpu tests will skip, saying why" >&2
fi
