#!/usr/bin/env bash
# Debian's SpamAssassin, to score every kind of message the stack sends
# (tests/tests/e2e/deliverability.rs). The tests run it with network tests
# off (-L), so no DNS blocklist is consulted.
exec "$(dirname "$0")/install-debian-package.sh" spamassassin spamassassin "deliverability tests"
