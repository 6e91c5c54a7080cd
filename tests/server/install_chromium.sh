#!/usr/bin/env bash
# Install headless Chromium (and its chromedriver) from Debian for the web page test.
#
# Usage: tests/server/install_chromium.sh
#
# Does nothing when a chromium binary is already on PATH. Needs root (CI runs as root); any
# failure (no root, no network, no package) is reported on stderr and ignored, because the
# page test then skips with its reason instead of failing the run.
set -uo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    echo "chromium already installed" >&2
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "not root: skipping the chromium install (the page test will skip)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >&2 && apt-get install -y -qq chromium chromium-driver >&2; then
    echo "installed $(chromium --version 2>/dev/null)" >&2
else
    echo "could not install chromium (the page test will skip)" >&2
fi
exit 0
