#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser tests (idempotent; the Makefile calls it).
# Playwright drives this browser through executable_path, so it never downloads one of its own.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser tests need Chromium at $CHROMIUM; install it with your package manager" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "==> installing chromium from Debian's packages"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
"$CHROMIUM" --version
