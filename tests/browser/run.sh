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
  exit "$status"
fi

# A service `fawkes new` generates, with a live page `fawkes gen live` adds: its root layout
# loads the same clients (the example app's node_modules) and connects.
log "a generated service's live page (fawkes new --no-db, fawkes gen live Counter)"
ensure_work
generated="$work/generated"
cargo run -q -p fawkes-cli -- new browser_check --no-db --path "$generated" --fawkes-path "$root" >/dev/null
(cd "$generated" && "$target_dir/debug/fawkes" gen live Counter >/dev/null)
cp "$root/Cargo.lock" "$generated/"
CARGO_TARGET_DIR="$target_dir" cargo build -q --manifest-path "$generated/Cargo.toml"
port="$(free_port)"
NODE_MODULES_DIR="$root/example-app/node_modules" PORT="$port" RUST_LOG=warn \
  "$target_dir/debug/browser_check" >"$generated/app.log" 2>&1 &
app_pids+=($!)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
(cd "$here" && FAWKES_URL="http://127.0.0.1:$port" SCREENSHOT_DIR="$out" node generated.mjs) || {
  status=$?
  cat "$generated/app.log"
}
exit "$status"
