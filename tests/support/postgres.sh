#!/usr/bin/env bash
# Runs the example app's in-process tests on Postgres: a throwaway cluster in a temp dir,
# listening on loopback only, stopped and removed on exit. Installs Postgres when its binaries
# are missing (as root, from Debian's packages).
#
#   tests/support/postgres.sh                 # every example-app test file
#   tests/support/postgres.sh --test api      # arguments go to `cargo test -p example-app`
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '\n==> %s\n' "$*"; }

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return
  fi
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return; }
  done
  return 0
}

pg_bin="$(find_pg_bin)"
if [ -z "$pg_bin" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Postgres (initdb, pg_ctl) is missing: run as root or install it first" >&2
    exit 1
  fi
  log "installing postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bin="$(find_pg_bin)"
  [ -n "$pg_bin" ] || { echo "no initdb after installing postgresql" >&2; exit 1; }
fi

# The cluster's directory, and the port it listens on, once started.
dir=""
port=""
stop() {
  if [ -n "$dir" ]; then
    "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  fi
}
trap stop EXIT

# A free loopback port below the kernel's ephemeral range (where the local ports of outgoing
# connections come from: one of those holding the port makes the server's bind fail although
# nothing listens there), starting somewhere random in 15432-16431.
free_port() {
  local offset candidate
  offset=$((RANDOM % 1000))
  for i in $(seq 0 999); do
    candidate=$((15432 + (offset + i) % 1000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "no free port in 15432-16431" >&2
  return 1
}

# Starts a fresh cluster; on failure shows why (the server's log) and leaves nothing behind.
start_cluster() {
  dir="$(mktemp -d /tmp/fawkes-postgres.XXXXXX)"
  # Postgres refuses to run as root: as root, the cluster belongs to `nobody`.
  as_owner=()
  if [ "$(id -u)" = 0 ]; then
    chown nobody "$dir"
    as_owner=(runuser -u nobody --)
  fi
  port="$(free_port)"
  log "$("$pg_bin/initdb" --version) on 127.0.0.1:$port"
  if ! "${as_owner[@]}" "$pg_bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    stop
    dir=""
    return 1
  fi
  # Dynamic shared memory in files under the data directory rather than /dev/shm, which some
  # containers mount small or read-only.
  if ! "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200 -c dynamic_shared_memory_type=mmap" \
    start >/dev/null; then
    echo "--- the server's log:" >&2
    tail -n 40 "$dir/server.log" >&2 || true
    stop
    dir=""
    return 1
  fi
}

as_owner=()
started=""
for attempt in 1 2 3; do
  if start_cluster; then
    started=1
    break
  fi
  echo "Postgres did not start (attempt $attempt of 3)" >&2
  sleep 1
done
[ -n "$started" ] || { echo "Postgres would not start: see its log above" >&2; exit 1; }

log "cargo test -p example-app $* (on Postgres)"
EXAMPLE_APP_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres" \
  cargo test -p example-app "$@"
