#!/usr/bin/env bash
# The single-node half of the reliability suite: the example app (release build) on loopback,
# pushed past each of its limits by the `reliability` tool (tests/src/bin/reliability.rs), with
# its memory read from /proc. Each scenario prints `RELIABILITY <name> key=value ...` lines and
# the script fails when a goal is missed. docs/reliability.md explains the figures.
#
#   tests/reliability/limits.sh [scenario ...]   (default: all; SOAK_SECS=600 for a long soak)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../support/example-app.sh
. "$here/../support/example-app.sh"

ensure_node
command -v wrk >/dev/null 2>&1 || apt_install wrk
# Twenty thousand connections from two load processes, and thousands in the app.
ulimit -n "$(ulimit -Hn)"

export EXAMPLE_APP_PROFILE=release
# As in production: with backtraces on, the first panic (the soak crashes channels on purpose)
# loads the binary's debug info, about 100 MiB that stays, and every panic is slower.
export RUST_BACKTRACE=0
log "cargo build --release -p tests --bin reliability"
(cd "$root" && cargo build --release -p tests --bin reliability)
tool="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')/release/reliability"

soak_secs="${SOAK_SECS:-60}"
failed=()

# /proc figures of the last app started, in MiB: current resident memory and its peak.
rss_mib() { awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/${app_pids[-1]}/status"; }
peak_mib() { awk '/^VmHWM/ { printf "%d", $2 / 1024 }' "/proc/${app_pids[-1]}/status"; }
# A value of the app's Prometheus metrics (0 when absent).
metric() {
  curl -fsS "$url/metrics" | awk -v name="$1" '$1 == name { v = $2 } END { printf "%d", v + 0 }'
}
figure() { echo "RELIABILITY $*"; }
# Runs one tool command, noting a missed goal without stopping the other scenarios.
run_tool() {
  local name="$1"
  shift
  if ! "$@"; then
    failed+=("$name")
  fi
}
stop_last_app() {
  stop_pid "${app_pids[-1]}"
  unset 'app_pids[-1]'
}

scenario_flood() {
  log "flood: 2 x 10000 idle connections against MAX_CONNECTIONS=5000, probes meanwhile"
  start_example_app flood MAX_CONNECTIONS=5000
  local before
  before="$(rss_mib)"
  "$tool" probe "$url" --secs 12 --every-ms 100 >"$work/probe.out" &
  local probe=$!
  sleep 1
  "$tool" flood "$url" --conns 10000 --first-ip 2 --hold-secs 5 &
  local a=$!
  "$tool" flood "$url" --conns 10000 --first-ip 60 --hold-secs 5 &
  local b=$!
  wait "$a" || failed+=(flood)
  wait "$b" || failed+=(flood)
  wait "$probe" || failed+=(flood-probe)
  cat "$work/probe.out"
  # Once the flood is gone the memory it took should go back, not stay at its peak.
  local settled=()
  for _ in 1 2 3 4; do
    sleep 3
    settled+=("$(rss_mib)")
  done
  figure "flood_memory rss_before_mib=$before rss_peak_mib=$(peak_mib)" \
    "rss_after_3_6_9_12s_mib=$(IFS=,; echo "${settled[*]}")"
  stop_last_app
}

scenario_busy() {
  log "busy: 2500 long polls against MAX_CONNECTIONS=2000, probes meanwhile"
  start_example_app busy MAX_CONNECTIONS=2000
  "$tool" probe "$url" --secs 8 --every-ms 100 >"$work/probe.out" &
  local probe=$!
  run_tool busy "$tool" busy "$url" --conns 2500 --expect-served 2000 --hold-secs 4
  wait "$probe" || failed+=(busy-probe)
  cat "$work/probe.out"
  stop_last_app
}

scenario_stall() {
  log "stall: 500 stalled request bodies, BODY_READ_TIMEOUT_MS=2000"
  # The bodies stall, whoever sends them: no per-client write limit in the way.
  start_example_app stall BODY_READ_TIMEOUT_MS=2000 CLIENT_LIMITS=off
  run_tool stall "$tool" stall "$url" --conns 500 --timeout-ms 2000
  stop_last_app
}

scenario_longpoll() {
  log "longpoll: 12000 session opens against the default cap of 10000"
  # Thousands of clients played from one address: no per-client limit.
  start_example_app longpoll CLIENT_LIMITS=off
  local before
  before="$(rss_mib)"
  run_tool longpoll "$tool" longpoll "$url" --sessions 12000 --cap 10000
  local after
  after="$(rss_mib)"
  figure "longpoll_memory rss_before_mib=$before rss_with_10000_sessions_mib=$after" \
    "kib_per_session=$(((after - before) * 1024 / 10000))"
  stop_last_app
}

scenario_storm() {
  log "presence storm: 5000 reading clients join room:lobby within 10 s"
  # Thousands of clients played from one address: no per-client limit.
  start_example_app storm CLIENT_LIMITS=off
  local before
  before="$(rss_mib)"
  run_tool storm "$tool" storm "$url" --clients 5000 --over-secs 10 --deadline-secs 120
  local peak
  peak="$(peak_mib)"
  sleep 3
  figure "presence_storm_memory rss_before_mib=$before rss_peak_mib=$peak rss_3s_after_mib=$(rss_mib)"
  # The bound this storm is held to; docs/reliability.md has the figures it was set from.
  [ "$peak" -le "${STORM_RSS_BOUND_MIB:-300}" ] || failed+=(storm-memory)
  stop_last_app
}

scenario_soak() {
  log "soak: ${soak_secs}s of channel rounds (joins, posts, crashes, leaves) and HTTP load"
  # Thousands of clients played from one address: no per-client limit.
  start_example_app soak CLIENT_LIMITS=off
  local idle_before
  idle_before="$(rss_mib)"
  local samples="$work/rss.samples"
  : >"$samples"
  (
    for _ in $(seq 1 "$soak_secs"); do
      rss_mib >>"$samples"
      echo >>"$samples"
      sleep 1
    done
  ) &
  local sampler=$!
  # A database route, and a cheap one at a high rate: a leak of a few bytes a request shows
  # within a minute.
  wrk -t1 -c8 -d"${soak_secs}s" "$url/api/rooms" >"$work/wrk-api.out" 2>&1 &
  local api=$!
  wrk -t1 -c8 -d"${soak_secs}s" "$url/healthz" >"$work/wrk-health.out" 2>&1 &
  local health=$!
  run_tool soak "$tool" soak "$url" --secs "$soak_secs" --workers 50
  wait "$api" "$health" || true
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local out
  for out in "$work/wrk-api.out" "$work/wrk-health.out"; do
    grep -E "Requests/sec|Non-2xx|Socket errors" "$out" || true
    if grep -q "Non-2xx\|Socket errors" "$out"; then
      failed+=(soak-http)
    fi
  done
  # Under load, memory after warm-up (the first fifth) stays within half again where it
  # settled (plus 16 MiB for the allocator's granularity).
  local warm=$((soak_secs / 5)) warm_rss max_rss
  warm_rss="$(sed -n "$((warm + 1))p" "$samples")"
  max_rss="$(tail -n +"$((warm + 1))" "$samples" | sort -n | tail -1)"
  local bound=$((warm_rss + warm_rss / 2 + 16))
  figure "soak_memory secs=$soak_secs rss_idle_before_mib=$idle_before rss_after_warmup_mib=$warm_rss" \
    "rss_max_after_warmup_mib=$max_rss bound_mib=$bound"
  [ "$max_rss" -le "$bound" ] || failed+=(soak-memory)
  # Everyone has left: the gauges go back to zero.
  local sockets=-1 channels=-1
  for _ in $(seq 1 50); do
    sockets="$(metric fawkes_sockets)"
    channels="$(metric fawkes_channels)"
    [ "$sockets" = 0 ] && [ "$channels" = 0 ] && break
    sleep 0.2
  done
  # Once idle again, what the soak left behind is a leak: at most 16 MiB over where it began.
  sleep 3
  local idle_after
  idle_after="$(rss_mib)"
  figure "soak_gauges sockets_after=$sockets channels_after=$channels rss_idle_after_mib=$idle_after"
  [ "$sockets" = 0 ] && [ "$channels" = 0 ] || failed+=(soak-gauges)
  [ "$idle_after" -le $((idle_before + 16)) ] || failed+=(soak-leak)
  stop_last_app
}

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(flood busy stall longpoll storm soak)
for scenario in "${scenarios[@]}"; do
  "scenario_$scenario"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "reliability goals missed: ${failed[*]}" >&2
  show_app_log
  exit 1
fi
echo "reliability (limits): every goal held"
