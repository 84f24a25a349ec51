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

# Two nodes sharing one Redis and one database, as replicas would: every test talks to the
# first, the cluster tests to both. The second starts once the first has migrated the database.
start_redis
start_example_app js-a REDIS_URL="$redis_url" NODE_NAME=js-a
url_a="$url"
start_example_app js-b REDIS_URL="$redis_url" NODE_NAME=js-b \
  DATABASE_URL="sqlite://$work/js-a.db?mode=rwc"
url_b="$url"
# A third serves TLS with a self-signed certificate, which Node trusts through
# NODE_EXTRA_CA_CERTS (tls.test.js).
ensure_work
tls_dir="$work/tls"
log "a self-signed certificate for localhost and 127.0.0.1"
(cd "$root" && cargo run -q -p tests --bin tls-cert -- "$tls_dir")
start_example_app js-tls TLS_CERT_FILE="$tls_dir/cert.pem" TLS_KEY_FILE="$tls_dir/key.pem"
url_tls="$url"

log "node --test (phoenix $(node -p 'require("'"$here"'/node_modules/phoenix/package.json").version'))"
status=0
(cd "$here" && FAWKES_URL="$url_a" FAWKES_URL_B="$url_b" FAWKES_TLS_URL="$url_tls" \
  NODE_EXTRA_CA_CERTS="$tls_dir/cert.pem" node --test "$@") || status=$?

# curl over TLS: HTTP/2 by ALPN; then new files and a SIGHUP, and the new certificate is the
# one served (a client trusting only the old one is refused).
if [ "$status" = 0 ]; then
  command -v curl >/dev/null 2>&1 || apt_install curl
  log "curl --http2 over TLS, and the certificate reloaded on SIGHUP"
  version="$(curl -sS --http2 --cacert "$tls_dir/cert.pem" -o /dev/null -w '%{http_version}' "$url_tls/healthz")"
  if [ "$version" != 2 ]; then
    echo "curl --http2 over TLS spoke HTTP/$version" >&2
    status=1
  fi
  cp "$tls_dir/cert.pem" "$tls_dir/old.pem"
  (cd "$root" && cargo run -q -p tests --bin tls-cert -- "$tls_dir/next")
  cp "$tls_dir/next/cert.pem" "$tls_dir/cert.pem"
  cp "$tls_dir/next/key.pem" "$tls_dir/key.pem"
  kill -HUP "${app_pid_of[js-tls]}"
  reloaded=""
  for _ in $(seq 1 50); do
    if curl -sS --cacert "$tls_dir/cert.pem" -o /dev/null "$url_tls/healthz" 2>/dev/null; then
      reloaded=yes
      break
    fi
    sleep 0.1
  done
  if [ -z "$reloaded" ]; then
    echo "the new certificate was not served within 5 s of SIGHUP" >&2
    status=1
  elif curl -sS --cacert "$tls_dir/old.pem" -o /dev/null "$url_tls/healthz" 2>/dev/null; then
    echo "the old certificate is still served after SIGHUP" >&2
    status=1
  else
    echo "HTTP/$version over TLS; the certificate reloaded on SIGHUP"
  fi
fi
if [ "$status" != 0 ]; then
  show_app_log
fi
exit "$status"
