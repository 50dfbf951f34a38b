#!/usr/bin/env bash
# Before and after: the same load, from the same kite-bench, against the
# kite-echo of two builds and the UDP echo floor, interleaved and
# repeated, each server alone on CPU 0 and kite-bench on CPU 1. Prints one
# JSON line per run, labelled; the ratios against the floor of the same
# round are what to compare (docs/BENCHMARKS.md, "Before and after").
#
#   bench/ab.sh BEFORE_BUILD AFTER_BUILD [ROUNDS] [kite-bench load args...]
#   e.g. bench/ab.sh ../base/build/release build/release 3
# The load defaults to bench/compare's main sweep row: 1,000 sessions x
# 20 echoes/s x 64 B for 10 s after 2 s of warm-up; --tcp as the first
# load argument runs it over TCP instead. --instr as the first load
# argument counts user-space instructions per echo under callgrind
# instead (bench/compare's instr load: 100 x 10/s, a 3 s and a 9 s run, so
# start-up and connects cancel out): one line per build.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/ab.sh BEFORE_BUILD AFTER_BUILD [ROUNDS] [args...]" >&2; exit 2; }
before=$(realpath "$1") after=$(realpath "$2")
rounds=${3:-3}
shift $(( $# >= 3 ? 3 : 2 ))
transport=(--udp) tcp=() instr=0
if [ "${1:-}" = --tcp ]; then transport=(--tcp) tcp=(--tcp 127.0.0.1:0); shift; fi
if [ "${1:-}" = --instr ]; then instr=1; shift; fi
load=("$@")
[ ${#load[@]} -gt 0 ] || load=(--sessions 1000 --rate 20 --size 64 --duration 10 --warmup 2)
build=$after
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need "$before/examples/kite-echo" "$echo_bin" "$floor_bin" "$bench_bin"
if [ "$instr" = 1 ]; then
  for side in before after; do
    bin=$echo_bin
    [ "$side" = before ] && bin=$before/examples/kite-echo
    declare -A ir=() got=()
    for d in 3 9; do
      start "$side" valgrind --tool=callgrind --callgrind-out-file="$work/cg.$side.$d" \
        "$bin" --udp 127.0.0.1:0 --threads 1
      line=$(taskset -c 1 "$bench_bin" --quiet --json --udp "127.0.0.1:$port" \
               --sessions 100 --rate 10 --size 64 --warmup 1 --duration "$d" | tail -1)
      stop "$pid"
      ir[$d]=$(sed -n 's/^summary: //p' "$work/cg.$side.$d")
      got[$d]=$(echo "$line" | sed -n 's/.*"received":\([0-9]*\).*/\1/p')
    done
    echo "$side instructions per echo: $(( (ir[9] - ir[3]) / (got[9] - got[3]) ))" \
         "(${ir[3]} and ${ir[9]} instructions, ${got[3]} and ${got[9]} echoes)"
  done
  exit 0
fi
for r in $(seq "$rounds"); do
  for side in floor before after; do
    case $side in
      floor) start floor "$floor_bin" --udp 127.0.0.1:0 --threads 1; flag=(--floor --udp) ;;
      before) start before "$before/examples/kite-echo" --udp 127.0.0.1:0 --threads 1 "${tcp[@]}"; flag=("${transport[@]}") ;;
      after) start after "$echo_bin" --udp 127.0.0.1:0 --threads 1 "${tcp[@]}"; flag=("${transport[@]}") ;;
    esac
    [ "$side" = floor ] && [ ${#tcp[@]} -gt 0 ] && { stop "$pid"; continue; }
    run "round=$r $side" "${flag[@]}" "127.0.0.1:$port" "${load[@]}" --server-pid "$pid"
    stop "$pid"
  done
done
