#!/usr/bin/env bash
# Debian's Chromium for the headless browser tests (the HTML report; the
# pages). Installed once from the distribution, which keeps it patched; a
# test tool's own browser download does not work on a closed network.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing Debian's chromium (headless browser tests)"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version
