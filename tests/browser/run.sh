#!/usr/bin/env bash
# Runs the browser tests: headless Chromium (Debian's package) driven by playwright-core through
# the example app's chat and dashboard pages (test.mjs) and its live pages (live.mjs).
# Screenshots land in <target>/browser/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../support/example-app.sh
. "$here/../support/example-app.sh"

[ -x /usr/bin/chromium ] || apt_install chromium
ensure_node
log "npm ci (tests/browser)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

start_example_app browser
out="$target_dir/browser"
mkdir -p "$out"

log "node test.mjs"
status=0
(cd "$here" && FAWKES_URL="$url" SCREENSHOT_DIR="$out" node test.mjs) || status=$?
if [ "$status" = 0 ]; then
  log "node live.mjs (the official phoenix_live_view client)"
  (cd "$here" && FAWKES_URL="$url" SCREENSHOT_DIR="$out" node live.mjs) || status=$?
fi
if [ "$status" != 0 ]; then
  show_app_log
fi
exit "$status"
