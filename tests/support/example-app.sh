# Shared by the Node and browser suites (sourced, not run): installs Node when it is missing,
# builds the example app, starts it on a free port with a throwaway SQLite database, and stops it
# however the run ends.
#
# After `start_example_app NAME [VAR=value ...]`: $url is the app's address, $target_dir the
# cargo target directory. `show_app_log` prints the app's log (for failures).

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
startup_deadline_secs="${STARTUP_DEADLINE_SECS:-120}"

log() { printf '\n==> %s\n' "$*"; }

# Installs Debian packages when run as root; otherwise explains what is missing.
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "$* missing: run as root or install them first" >&2
    exit 1
  fi
  log "installing $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 18 ]; then
    echo "node $(node --version) is too old: 18 or later is needed (fetch, node --test)" >&2
    exit 1
  fi
}

app_pid=""
work=""

show_app_log() {
  echo "---- example app log (last 200 lines) ----" >&2
  tail -n 200 "$work/app.log" >&2 || true
}

stop_example_app() {
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
  [ -z "$work" ] || rm -rf "$work"
}

start_example_app() {
  local name="$1"
  shift
  log "cargo build -p example-app"
  (cd "$root" && cargo build -p example-app)
  target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
  local app="$target_dir/debug/example-app"

  work="$(mktemp -d)"
  trap stop_example_app EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  log "starting the example app"
  mkfifo "$work/stdout"
  (
    cd "$work"
    exec env PORT=0 HOST=127.0.0.1 DATABASE_URL="sqlite://$work/$name.db?mode=rwc" \
      RUST_LOG="${RUST_LOG:-warn}" "$@" "$app" >"$work/stdout" 2>"$work/app.log"
  ) &
  app_pid=$!
  # The fifo stays open on fd 3 for the app's whole life, so it never blocks writing stdout.
  exec 3<"$work/stdout"
  local line=""
  if ! IFS= read -r -t "$startup_deadline_secs" line <&3; then
    echo "the app printed no URL within ${startup_deadline_secs}s" >&2
    show_app_log
    exit 1
  fi
  cat <&3 >/dev/null &
  url="${line##* listening on }"
  case "$url" in
    http://*) ;;
    *)
      echo "unexpected first line from the app: $line" >&2
      show_app_log
      exit 1
      ;;
  esac
  echo "app at $url"
}
