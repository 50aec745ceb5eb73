#!/usr/bin/env bash
# Headless Chromium for the test of `s2s serve`'s page (tests/serve.rs): Debian's chromium.
#   scripts/setup-chromium.sh     # apt-get install chromium (needs root); prints its path
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  command -v apt-get > /dev/null || { echo "the page test needs Debian/Ubuntu's chromium package" >&2; exit 1; }
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -q chromium > /dev/null \
    || { $sudo apt-get update -q > /dev/null && $sudo apt-get install -y -q chromium > /dev/null; } \
    || { echo "apt-get could not install chromium" >&2; exit 1; }
fi
/usr/bin/chromium --version >&2
echo /usr/bin/chromium
