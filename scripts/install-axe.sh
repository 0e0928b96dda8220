#!/usr/bin/env bash
# axe-core (npm), pinned, for the accessibility checks of the pages in the
# browser tests: installed into .axe/ (skipped when that version is there).
set -euo pipefail
VERSION=4.10.3
DIR="${AXE_DIR:-.axe}"
if [ -f "$DIR/node_modules/axe-core/axe.min.js" ] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/axe-core/package.json"; then
  exit 0
fi
mkdir -p "$DIR"
npm install --prefix "$DIR" --no-audit --no-fund --no-save --loglevel=error "axe-core@$VERSION"
test -f "$DIR/node_modules/axe-core/axe.min.js"
