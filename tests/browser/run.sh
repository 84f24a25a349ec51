#!/usr/bin/env bash
# Runs the browser test: headless Chromium (Debian's package) driven by playwright-core through
# the example app's chat and dashboard pages. Installs Chromium when it is missing, builds and
# starts the app on a free port with a throwaway SQLite database, runs `node test.mjs`, and stops
# the app however the run ends. Screenshots land in target/browser/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
startup_deadline_secs="${STARTUP_DEADLINE_SECS:-120}"

log() { printf '\n==> %s\n' "$*"; }

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "/usr/bin/chromium is missing: run as root or install Debian's chromium first" >&2
    exit 1
  fi
  log "installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "node and npm are missing: run as root or install them first" >&2
    exit 1
  fi
  log "installing nodejs and npm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

log "npm ci (tests/browser)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

log "cargo build -p example-app"
(cd "$root" && cargo build -p example-app)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
app="$target_dir/debug/example-app"
out="$target_dir/browser"
mkdir -p "$out"

work="$(mktemp -d)"
app_pid=""
show_log() {
  echo "---- example app log (last 200 lines) ----" >&2
  tail -n 200 "$work/app.log" >&2 || true
}
cleanup() {
  if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then
    kill -TERM "$app_pid" 2>/dev/null || true
    # The app drains gracefully; give it a bounded time, then stop it for good.
    for _ in $(seq 1 100); do
      kill -0 "$app_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting the example app"
mkfifo "$work/stdout"
(
  cd "$work"
  exec env PORT=0 HOST=127.0.0.1 DATABASE_URL="sqlite://$work/browser.db?mode=rwc" \
    RUST_LOG="${RUST_LOG:-warn}" "$app" >"$work/stdout" 2>"$work/app.log"
) &
app_pid=$!
# The fifo stays open on fd 3 for the app's whole life, so it never blocks writing stdout.
exec 3<"$work/stdout"
line=""
if ! IFS= read -r -t "$startup_deadline_secs" line <&3; then
  echo "the app printed no URL within ${startup_deadline_secs}s" >&2
  show_log
  exit 1
fi
cat <&3 >/dev/null &
url="${line##* listening on }"
case "$url" in
  http://*) ;;
  *)
    echo "unexpected first line from the app: $line" >&2
    show_log
    exit 1
    ;;
esac
echo "app at $url"

log "node test.mjs"
status=0
(cd "$here" && FAWKES_URL="$url" SCREENSHOT_DIR="$out" node test.mjs) || status=$?
if [ "$status" != 0 ]; then
  show_log
fi
exit "$status"
