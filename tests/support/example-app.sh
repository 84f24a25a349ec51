# Shared by the Node and browser suites (sourced, not run): installs Node when it is missing,
# builds the example app, starts it on a free port with a throwaway SQLite database, and stops it
# however the run ends.
#
# After `start_example_app NAME [VAR=value ...]`: $url is the app's address, $target_dir the
# cargo target directory; it may be called several times (several nodes), each instance with its
# own database and log. `show_app_log` prints every instance's log (for failures).
# Calling it again with the NAME of a stopped instance restarts it: same database, its log
# appended to (pass `PORT=<port>` to keep its address; later assignments win).
# `stop_app NAME` stops one instance gracefully (SIGTERM), `kill_app NAME` with SIGKILL.
# `start_redis [PORT]` starts a throwaway redis-server on a free (or the given) loopback port:
# $redis_url; `kill_redis` stops it with SIGKILL. `free_port` prints a free loopback port.

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

app_pids=()
declare -gA app_pid_of=()
redis_pid=""
work=""

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Whether `pid`, a child of this shell, still runs (bash reaps exited children by itself).
pid_alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

# Sends SIGTERM to the instance NAME and waits up to DEADLINE seconds (default 30) for it to
# exit; past that it is killed and the call fails. Prints nothing; $stopped_ms is how long the
# exit took.
stop_app() {
  local name="$1" deadline="${2:-30}" pid="${app_pid_of[$1]:-}" start
  start="$(date +%s%3N)"
  if ! pid_alive "$pid"; then
    echo "stop_app: $name is not running" >&2
    return 1
  fi
  kill -TERM "$pid"
  local tenths=$((deadline * 10))
  while pid_alive "$pid" && [ "$tenths" -gt 0 ]; do
    sleep 0.1
    tenths=$((tenths - 1))
  done
  stopped_ms=$(($(date +%s%3N) - start))
  if pid_alive "$pid"; then
    echo "stop_app: $name did not exit within ${deadline}s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
  fi
  wait "$pid" 2>/dev/null || true
}

# Kills the instance NAME with SIGKILL, as a crash would, and reaps it.
kill_app() {
  local pid="${app_pid_of[$1]:-}"
  if pid_alive "$pid"; then
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
  fi
}

show_app_log() {
  local log
  for log in "$work"/*.log; do
    [ -e "$log" ] || continue
    echo "---- $(basename "$log") (last 200 lines) ----" >&2
    tail -n 200 "$log" >&2 || true
  done
}

stop_pid() {
  local pid="$1"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # The app drains gracefully; give it a bounded time, then stop it for good.
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}

stop_example_app() {
  local pid
  for pid in "${app_pids[@]}"; do
    stop_pid "$pid"
  done
  stop_pid "$redis_pid"
  [ -z "$work" ] || rm -rf "$work"
}

ensure_work() {
  if [ -z "$work" ]; then
    work="$(mktemp -d)"
    trap stop_example_app EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
  fi
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  ensure_work
  local port="${1:-}"
  [ -n "$port" ] || port="$(free_port)"
  log "starting redis-server on 127.0.0.1:$port"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no >>"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 100); do
    if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
      redis_url="redis://127.0.0.1:$port/"
      return
    fi
    sleep 0.1
  done
  echo "redis-server did not answer PING within 10 s" >&2
  show_app_log
  exit 1
}

kill_redis() {
  if pid_alive "$redis_pid"; then
    kill -KILL "$redis_pid"
    wait "$redis_pid" 2>/dev/null || true
  fi
}

# Builds the example app once per run; restarts reuse the binary. EXAMPLE_APP_PROFILE=release
# for figures that should be a deployment's (memory, load).
build_example_app() {
  [ -z "${app_bin:-}" ] || return 0
  # The live pages load the official clients from the app's node_modules (pinned by its
  # package-lock.json); the app reads them at startup.
  ensure_node
  log "npm ci --prefix example-app"
  (cd "$root/example-app" && npm ci --no-audit --no-fund --loglevel=error)
  local profile="${EXAMPLE_APP_PROFILE:-debug}"
  local flag=()
  [ "$profile" = debug ] || flag=(--profile "$profile")
  log "cargo build -p example-app --features test-channels ${flag[*]}"
  (cd "$root" && cargo build -p example-app --features test-channels "${flag[@]}")
  target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
  app_bin="$target_dir/$profile/example-app"
}

start_example_app() {
  local name="$1"
  shift
  build_example_app
  local app="$app_bin"

  ensure_work

  log "starting the example app ($name)"
  local fifo="$work/$name.stdout"
  # A restart of NAME makes its fifo anew.
  rm -f "$fifo"
  mkfifo "$fifo"
  (
    cd "$work"
    exec env PORT=0 HOST=127.0.0.1 DATABASE_URL="sqlite://$work/$name.db?mode=rwc" \
      RUST_LOG="${RUST_LOG:-warn}" "$@" "$app" >"$fifo" 2>>"$work/$name.log"
  ) &
  app_pids+=($!)
  app_pid_of[$name]=$!
  # The fifo stays open for the app's whole life, so it never blocks writing stdout.
  local fd
  exec {fd}<"$fifo"
  local line=""
  if ! IFS= read -r -t "$startup_deadline_secs" line <&"$fd"; then
    echo "the app printed no URL within ${startup_deadline_secs}s" >&2
    show_app_log
    exit 1
  fi
  cat <&"$fd" >/dev/null &
  # cat holds it from here; the shell's copy would otherwise leak into later children.
  exec {fd}<&-
  url="${line##* listening on }"
  case "$url" in
    http://* | https://*) ;;
    *)
      echo "unexpected first line from the app: $line" >&2
      show_app_log
      exit 1
      ;;
  esac
  echo "app at $url"
}
