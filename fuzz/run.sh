#!/usr/bin/env bash
# Runs cargo-fuzz targets on nightly, one process each, bounded in time and memory, and prints
# each run's executions, executions per second, corpus size and outcome.
#
#   fuzz/run.sh TARGET SECONDS     one target (see `cargo +nightly fuzz list`)
#   fuzz/run.sh all SECONDS        every target, one after the other
#
# Each target runs as one libFuzzer process in the foreground (its default: one job, no
# workers); `-jobs=1` would fork a worker that logs to fuzz-0.log instead.
#
# Environment: FUZZ_RSS_MB (default 2048), FUZZ_SANITIZER (default none: the crate forbids
# unsafe code; `address` checks the dependencies too, at about half the speed), FUZZ_LOG_DIR
# (default fuzz/logs, not committed). Extra libFuzzer flags go in FUZZ_ARGS.
#
# Not for CI, which needs no nightly: CI replays the corpora and runs the property tests on
# stable (tests/tests/fuzz_corpus.rs).
set -euo pipefail

usage="usage: fuzz/run.sh TARGET|all SECONDS"
target=${1:?$usage}
seconds=${2:?$usage}
cd "$(dirname "$0")"
rss_mb=${FUZZ_RSS_MB:-2048}
sanitizer=${FUZZ_SANITIZER:-none}
log_dir=${FUZZ_LOG_DIR:-logs}
mkdir -p "$log_dir"

if [ "$target" = all ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
else
    targets=("$target")
fi

# One build for every target, so the timed runs time fuzzing only.
cargo +nightly fuzz build -s "$sanitizer"

failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    seeds=()
    # Reproducers of fixed crashes are read as seeds, never written to.
    [ -d "regressions/$t" ] && seeds+=("regressions/$t")
    log="$log_dir/$t.log"
    echo "== $t: ${seconds}s, rss limit ${rss_mb} MB, sanitizer $sanitizer, log $log"
    status=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    cargo +nightly fuzz run -s "$sanitizer" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -print_final_stats=1 \
        ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    files=$(find "corpus/$t" -type f | wc -l)
    echo "   final: ${last:-none}"
    echo "   execs: ${execs:-?}  execs/s: ${rate:-?}  corpus: $files files"
    if [ "$status" -ne 0 ]; then
        failed=1
        echo "   FAILED (exit $status): see $log and fuzz/artifacts/$t/"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -5 | sed 's/^/   /' || true
    else
        echo "   no crash"
    fi
done
exit "$failed"
