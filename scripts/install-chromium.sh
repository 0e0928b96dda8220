#!/usr/bin/env bash
# Debian's Chromium for the headless browser tests (the HTML report; the pages).
exec "$(dirname "$0")/install-debian-package.sh" chromium chromium "headless browser tests"
