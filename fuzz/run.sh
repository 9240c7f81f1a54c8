#!/usr/bin/env bash
# Runs tidings' fuzz targets (cargo-fuzz, libFuzzer) for a set time each,
# two at a time, and prints per target the executions, the seconds and the
# crashes found. Not run in CI: it takes (targets / 2) x seconds.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     default: 600 s, every target
#
# Needs `cargo install cargo-fuzz --locked`. cargo-fuzz passes nightly-only
# flags, so the stable toolchain is told to accept them (RUSTC_BOOTSTRAP).
# FUZZ_SANITIZER=none runs without AddressSanitizer (faster, finds less).
# Logs go to fuzz/logs/, the growing corpus to fuzz/corpus/<target>/ (the
# committed seeds are in fuzz/seeds/<target>/), what crashed to
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-600}
shift || true
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}
jobs=${FUZZ_JOBS:-2}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

bin=target/$(rustc -vV | sed -n 's/^host: //p')/release
mkdir -p logs
echo "building the fuzz targets (log: fuzz/logs/build.log)" >&2
cargo fuzz build --sanitizer "$sanitizer" >logs/build.log 2>&1 || {
    tail -30 logs/build.log >&2
    exit 1
}

run_one() {
    local target=$1
    mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target"
    local before
    before=$(find "artifacts/$target" -type f | wc -l)
    local start=$SECONDS
    # The binary built above, not `cargo fuzz run`, which would build
    # again whenever src/ changed meanwhile. libFuzzer stops at the first
    # crash; its input is kept in artifacts/.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0} "$bin/$target" \
        -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" \
        -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
        "corpus/$target" "seeds/$target" >"logs/$target.log" 2>&1 || true
    local took=$((SECONDS - start))
    local after
    after=$(find "artifacts/$target" -type f | wc -l)
    local execs
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" |
        tail -1 | grep -o '[0-9]*$' || true)
    printf '%s\t%s\t%s\t%s\n' "$target" "${execs:-?}" "$took" "$((after - before))" \
        >"logs/$target.summary"
    # Every run, kept across runs: date, target, executions, seconds, crashes.
    printf '%s\t%s\n' "$(date -u +%FT%TZ)" "$(cat "logs/$target.summary")" >>logs/history.tsv
}

running=0
for target in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    echo "fuzzing $target for ${seconds}s (log: fuzz/logs/$target.log)" >&2
    run_one "$target" &
    running=$((running + 1))
done
wait

printf '%-14s %14s %8s %8s\n' target executions seconds crashes
for target in "${targets[@]}"; do
    IFS=$'\t' read -r name execs took crashes <"logs/$target.summary"
    printf '%-14s %14s %8s %8s\n' "$name" "$execs" "$took" "$crashes"
    if [ "$crashes" != 0 ]; then
        grep -m1 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' "logs/$target.log" | sed 's/^/    /' || true
        ls -t "artifacts/$target" | head -1 | sed "s|^|    artifact: fuzz/artifacts/$target/|"
    fi
done
