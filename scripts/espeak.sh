#!/usr/bin/env bash
# Make sure espeak-ng (the voice target's offline English caller voice) is installed.
#
#   bash scripts/espeak.sh        # installs Debian's `espeak-ng` package when missing
#
# Japanese speaks through pyopenjtalk-plus (a pip wheel, the `voice` extra); English needs
# this system package. Safe to run again: it only installs when the program is missing.
set -euo pipefail

if command -v espeak-ng >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "espeak.sh: no espeak-ng found and no apt-get to install it; install espeak-ng by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends espeak-ng >&2
