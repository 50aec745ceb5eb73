#!/usr/bin/env bash
# wgpu on a machine without a GPU: Mesa's lavapipe (a Vulkan driver on the CPU) from Debian.
#   scripts/setup-lavapipe.sh     # apt-get install mesa-vulkan-drivers libvulkan1 (needs root)
# Then run with XDG_RUNTIME_DIR set to a 0700 directory (the script prints one to use).
set -euo pipefail
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json > /dev/null 2>&1 || ! ldconfig -p | grep -q libvulkan.so.1; then
  command -v apt-get > /dev/null || { echo "lavapipe needs Debian/Ubuntu's mesa-vulkan-drivers and libvulkan1" >&2; exit 1; }
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -q mesa-vulkan-drivers libvulkan1 > /dev/null \
    || { $sudo apt-get update -q > /dev/null && $sudo apt-get install -y -q mesa-vulkan-drivers libvulkan1 > /dev/null; } \
    || { echo "apt-get could not install mesa-vulkan-drivers libvulkan1" >&2; exit 1; }
fi
runtime=${XDG_RUNTIME_DIR:-/tmp/s2s-runtime-$(id -u)}
mkdir -p "$runtime" && chmod 0700 "$runtime"
echo "lavapipe is installed: $(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -1)" >&2
echo "export XDG_RUNTIME_DIR=$runtime"
