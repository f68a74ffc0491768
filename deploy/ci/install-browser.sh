#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the operations-page browser test
# (tests/integration/operators/test_ops_page_browser.py drives /usr/bin/chromium over the
# DevTools protocol on a pipe: no Python browser package, no downloaded browser build).
#
# Idempotent: does nothing when chromium is already installed; runs `apt-get update` only when the
# package lists do not know the package yet. Needs root (CI and the dev machines run as root).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed: $(chromium --version 2>/dev/null || echo unknown version)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-browser.sh: need root (or sudo) to apt-get install chromium" >&2; exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# apt-cache knows nothing before the first update on a fresh machine.
if ! apt-cache show chromium >/dev/null 2>&1; then
  $SUDO apt-get update
fi
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
echo "installed: $(chromium --version)"
