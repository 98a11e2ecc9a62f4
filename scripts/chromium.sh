#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed, then print its path.
#
#   bash scripts/chromium.sh          # installs Debian's `chromium` package when missing
#
# The HTML report's browser test (tests/test_report_browser.py) and the README screenshot
# need a real browser. Debian ships one as a package, so nothing is downloaded outside the
# system's package manager. Safe to run again: it only installs when no browser is found.
set -euo pipefail

find_browser() {
  local name
  for name in chromium chromium-browser google-chrome-stable google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

if path="$(find_browser)"; then
  echo "$path"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium.sh: no chromium found and no apt-get to install it; install Chromium by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# fonts-noto-cjk: the reports are full of Japanese; without it every answer renders as boxes.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >&2

if path="$(find_browser)"; then
  echo "$path"
else
  echo "chromium.sh: installed the chromium package but found no browser binary" >&2
  exit 1
fi
