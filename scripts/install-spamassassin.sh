#!/usr/bin/env bash
# Debian's SpamAssassin, to score every kind of message the stack sends
# (tests/tests/e2e/deliverability.rs). Local rules only: the tests run it
# with network tests off (-L), so no DNS blocklist is consulted.
set -euo pipefail
if command -v spamassassin >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing Debian's spamassassin (deliverability tests)"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends spamassassin >/dev/null
spamassassin --version
