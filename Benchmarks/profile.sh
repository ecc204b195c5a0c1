#!/bin/sh
# Issue 16: a perf profile of the server (`sigillo serve`, child of the bench) during the sign-only phase of ECDSA
# P-256 at 1 hash per request, 64 clients; the breakdown by shared object and the top symbols.
#
#   sh Benchmarks/profile.sh [SIGILLO_BENCH] [OUTPUT_PREFIX] [E2E_OPTIONS...]
#   (defaults: .build/release/sigillo-bench, var/perf-1hash, --modes sign-only; writes PREFIX.data, .dso.txt, .sym.txt,
#   .md, .log. A bench without --modes (before issue 16) runs the flow phase first: give it --seconds 20 alone.)
set -eu
bench=${1:-.build/release/sigillo-bench}
out=${2:-var/perf-1hash}
[ $# -ge 2 ] && shift 2 || shift $#
[ $# -eq 0 ] && set -- --modes sign-only
mkdir -p "$(dirname "$out")"
log="$out.log"
: > "$log"
"$bench" e2e --keys ecdsa-p256 --hashes 1 --seconds 20 --raw-seconds 1 "$@" --output "$out.md" > "$out.json" 2> "$log" &
bench_pid=$!
until grep -q 'server pid' "$log"; do sleep 0.5; kill -0 $bench_pid; done
pid=$(sed -n 's/.*server pid(s) \([0-9]*\).*/\1/p' "$log" | head -1)
until grep -q 'p256 sign-only' "$log"; do sleep 0.5; kill -0 $bench_pid; done
# The raw loop before the phase (1 s) and the clients' first requests, then 10 s of the 20 s phase.
sleep 3
perf record -F 499 -g -p "$pid" -o "$out.data" -- sleep 10 2>> "$log"
wait $bench_pid
perf report -i "$out.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25 > "$out.dso.txt"
perf report -i "$out.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 > "$out.sym.txt"
cat "$out.md" "$out.dso.txt"
