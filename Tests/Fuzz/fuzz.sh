#!/bin/sh
# Runs the libFuzzer targets of `sigillo-fuzz` (built by `make fuzz-build` into .build/fuzz) and prints one line
# per target; on a failure, what broke, where, the input kept and how to replay it. Exit status 1 if any failed.
#
#   Tests/Fuzz/fuzz.sh seconds N TARGET...   each target for N seconds on its growing corpus (.build/fuzz/corpus)
#   Tests/Fuzz/fuzz.sh runs N TARGET...      each target for N inputs from a fixed seed on a fresh corpus (make test)
#
# Seeds: Tests/Fuzz/corpus/TARGET (read only); dictionaries: Tests/Fuzz/dict/TARGET.dict. Whole logs and crashing
# inputs: .build/fuzz/logs, .build/fuzz/artifacts. FUZZ_FLAGS adds libFuzzer flags (e.g. FUZZ_FLAGS=-max_len=65536).
set -u
mode=$1; amount=$2; shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
binary=$root/.build/fuzz/debug/sigillo-fuzz
fuzz=$root/.build/fuzz
mkdir -p "$fuzz/logs" "$fuzz/artifacts"
# The Swift runtime's backtracer would catch the crash before libFuzzer records the input.
export SWIFT_BACKTRACE=enable=no
failed=0
for target in "$@"; do
    case $mode in
        seconds) corpus=$fuzz/corpus/$target; limit="-max_total_time=$amount" ;;
        # The short run in `make test` leaves leak checking to `make fuzz`: LeakSanitizer needs ptrace, which a
        # stricter CI container may deny, and a test step must not fail for the machine's sake.
        runs) corpus=$fuzz/test-corpus/$target; rm -rf "$corpus"; limit="-runs=$amount -seed=1 -detect_leaks=0" ;;
        *) echo "usage: $0 seconds|runs N TARGET..." >&2; exit 2 ;;
    esac
    mkdir -p "$corpus"
    dict=$root/Tests/Fuzz/dict/$target.dict
    [ -f "$dict" ] && dict="-dict=$dict" || dict=""
    log=$fuzz/logs/$target.log
    rm -f "$fuzz/artifacts/$target-"*
    started=$(date +%s.%N)
    # shellcheck disable=SC2086  # the flags are words
    "$binary" "$target" $limit $dict -timeout=20 -print_final_stats=1 ${FUZZ_FLAGS:-} \
        -artifact_prefix="$fuzz/artifacts/$target-" "$corpus" "$root/Tests/Fuzz/corpus/$target" < /dev/null > "$log" 2>&1
    status=$?
    elapsed=$(echo "$started $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    added=$(sed -n 's/^stat::new_units_added: *//p' "$log")
    coverage=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    if [ "$status" = 0 ] && [ -n "$runs" ]; then
        # libFuzzer's rate counts whole seconds of fuzzing (0 under one second: then inputs / time, set-up included).
        [ "${speed:-0}" = 0 ] && speed=$(echo "$runs $elapsed" | awk '{ printf "%d", ($2 > 0 ? $1 / $2 : 0) }')
        printf 'fuzz %-14s %8s inputs in %5s s (%s/s), coverage %s, %s new inputs, no failure\n' \
            "$target" "$runs" "$elapsed" "$speed" "${coverage:-?}" "$added"
        continue
    fi
    failed=1
    artifact=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
    echo "fuzz $target FAILED (exit $status; whole log: ${log#"$root"/})"
    grep -E "fuzz check failed|Fatal error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY:|^(Direct|Indirect) leak" "$log" \
        | grep -v "Cannot export" | head -6 | cut -c1-300 | sed 's/^/    /'
    # The stack, where it runs through the target and the code under test (not the driver).
    grep -E "^ +#[0-9]+ 0x[0-9a-f]+ in .*(/Sources/|/Tests/)" "$log" | grep -v -E "SigilloFuzz/(SigilloFuzz|FuzzTarget).swift" | head -8 \
        | sed -E 's/^ +(#[0-9]+) 0x[0-9a-f]+ in [^ ]+ (.*)$/    \1 \2/' | sed "s|$root/||" | cut -c1-200
    if [ -n "$artifact" ]; then
        echo "    input: ${artifact#"$root"/} (base64: $(base64 -w0 < "$artifact" | cut -c1-120))"
        echo "    replay: .build/fuzz/debug/sigillo-fuzz $target ${artifact#"$root"/}   (no sanitizers: swift build --product sigillo-fuzz; .build/debug/sigillo-fuzz $target FILE)"
    else
        tail -5 "$log" | cut -c1-300 | sed 's/^/    /'
    fi
done
exit $failed
