#!/usr/bin/env bash
# install-debian-package.sh COMMAND PACKAGE WHY: installs PACKAGE from the
# distribution (which keeps it patched) unless COMMAND is already on PATH;
# a test tool's own download does not work on a closed network.
set -euo pipefail
command="$1" package="$2" why="$3"
if command -v "$command" >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing Debian's $package ($why)"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null
"$command" --version
