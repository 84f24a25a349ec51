#!/usr/bin/env bash
# The reliability suite: the example app pushed past its limits on one node (limits.sh), a
# cluster of two behind haproxy through restarts, crashes and a Redis outage (cluster.sh), and
# the pubsub adapter through a Redis restart in process. Every scenario prints
# `RELIABILITY <name> key=value ...` lines; docs/reliability.md explains them. Loopback only,
# every wait bounded. SOAK_SECS (default 60) sets the soak's length.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

status=0
"$here/limits.sh" || status=1
"$here/cluster.sh" || status=1

printf '\n==> %s\n' "pubsub adapter through a Redis restart (figures on stderr)"
(cd "$root" && cargo test -p tests --all-features --test redis_pubsub -- --nocapture \
  after_a_redis_restart a_node_that_never_returns 2>&1 | grep -E "^RELIABILITY|test result|panicked|FAILED") || status=1

exit "$status"
