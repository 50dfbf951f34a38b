#!/usr/bin/env bash
# The worker-mode benchmark of docs/BENCHMARKS.md: the runtime benchmark's
# load (1000 sessions, 20 echoes a second each, 64 bytes) against kite-echo
# in each worker mode, beside the plain UDP echo floor, all in one run.
# The server (one shard, and its workers) is pinned to CPU 0, kite-bench
# to CPU 1. bind and dynamic give each session a thread: 1000 workers.
#
#   bench/worker_modes_bench.sh [BUILD_DIR] [REPEATS]
set -euo pipefail
build=${1:-build/release}
repeats=${2:-2}
. "$(dirname "$0")/lib.sh"
need "$echo_bin" "$floor_bin" "$bench_bin"

load=(--sessions 1000 --rate 20 --size 64 --duration 10 --warmup 2)
for r in $(seq "$repeats"); do
  start floor "$floor_bin" --udp 127.0.0.1:0 --threads 1
  run "floor" --floor --udp "127.0.0.1:$port" "${load[@]}" --server-pid "$pid"
  stop "$pid"
  for mode in inline hash:1 hash:2 bind:1000 dynamic:1000; do
    workers=${mode#*:}
    [ "$workers" = "$mode" ] && workers=0
    start kite "$echo_bin" --udp 127.0.0.1:0 --threads 1 \
          --worker-mode "${mode%%:*}" --workers "$workers"
    run "kite_${mode/:/_}" --udp "127.0.0.1:$port" "${load[@]}" --server-pid "$pid"
    stop "$pid"
  done
done
