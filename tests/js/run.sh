#!/usr/bin/env bash
# Runs the Node.js compatibility suite: the official `phoenix` client (unmodified, from npm)
# against the example app, two nodes sharing a throwaway Redis, started on free ports with the
# test channels on.
#
# Extra arguments go to `node --test` (for example a test file to run alone).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../support/example-app.sh
. "$here/../support/example-app.sh"

ensure_node
log "npm ci (tests/js)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

# Two nodes sharing one Redis, as replicas would: every test talks to the first, the cluster
# tests to both.
start_redis
start_example_app js-a REDIS_URL="$redis_url" NODE_NAME=js-a
url_a="$url"
start_example_app js-b REDIS_URL="$redis_url" NODE_NAME=js-b
url_b="$url"

log "node --test (phoenix $(node -p 'require("'"$here"'/node_modules/phoenix/package.json").version'))"
status=0
(cd "$here" && FAWKES_URL="$url_a" FAWKES_URL_B="$url_b" node --test "$@") || status=$?
if [ "$status" != 0 ]; then
  show_app_log
fi
exit "$status"
