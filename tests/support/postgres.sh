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

dir="$(mktemp -d /tmp/fawkes-postgres.XXXXXX)"
# Postgres refuses to run as root: as root, the cluster belongs to `nobody`.
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown nobody "$dir"
  as_owner=(runuser -u nobody --)
fi

port=""
for candidate in $(seq 55432 55532); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
    port="$candidate"
    break
  fi
done
[ -n "$port" ] || { echo "no free port in 55432-55532" >&2; exit 1; }

stop() {
  "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

log "$("$pg_bin/initdb" --version) on 127.0.0.1:$port"
"${as_owner[@]}" "$pg_bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log"
"${as_owner[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
  start >/dev/null

log "cargo test -p example-app $* (on Postgres)"
EXAMPLE_APP_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres" \
  cargo test -p example-app "$@"
