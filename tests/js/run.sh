#!/usr/bin/env bash
# Runs the Node.js compatibility suite: the official `phoenix` client (unmodified, from npm)
# against the example app, started on a free port with the test channels on.
#
# Extra arguments go to `node --test` (for example a test file to run alone).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../support/example-app.sh
. "$here/../support/example-app.sh"

ensure_node
log "npm ci (tests/js)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

start_example_app js FAWKES_EXAMPLE_TEST_CHANNELS=1

log "node --test (phoenix $(node -p 'require("'"$here"'/node_modules/phoenix/package.json").version'))"
status=0
(cd "$here" && FAWKES_URL="$url" node --test "$@") || status=$?
if [ "$status" != 0 ]; then
  show_app_log
fi
exit "$status"
