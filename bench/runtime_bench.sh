#!/usr/bin/env bash
# The runtime benchmark of docs/BENCHMARKS.md: kite-echo beside the plain
# UDP echo floor, each server pinned to CPU 0 with one shard, kite-bench
# pinned to CPU 1, runs interleaved and repeated. Prints one JSON line per
# run (kite-bench --json) prefixed with the load's name.
#
#   bench/runtime_bench.sh [BUILD_DIR] [REPEATS]
set -euo pipefail
build=${1:-build/release}
repeats=${2:-3}
. "$(dirname "$0")/lib.sh"
need "$echo_bin" "$floor_bin" "$bench_bin"

for r in $(seq "$repeats"); do
  start floor "$floor_bin" --udp 127.0.0.1:0 --threads 1
  run "floor_1000x20" --floor --udp "127.0.0.1:$port" --sessions 1000 --rate 20 \
      --size 64 --duration 10 --warmup 2 --server-pid "$pid"
  stop "$pid"
  start kite "$echo_bin" --udp 127.0.0.1:0 --threads 1
  run "kite_1000x20" --udp "127.0.0.1:$port" --sessions 1000 --rate 20 --size 64 \
      --duration 10 --warmup 2 --server-pid "$pid"
  stop "$pid"
done

# Idle sessions: 10,000 pinging once a second, then 100,000 holding.
start kite "$echo_bin" --udp 127.0.0.1:0 --threads 1 --max-sessions 110000
run "kite_10000_ping1s" --udp "127.0.0.1:$port" --sessions 10000 --rate 0 \
    --ping-ms 1000 --duration 10 --warmup 3 --per-socket 2500 --server-pid "$pid"
stop "$pid"
start kite "$echo_bin" --udp 127.0.0.1:0 --threads 1 --max-sessions 110000 \
      --idle-timeout-ms 120000
run "kite_100000_idle" --udp "127.0.0.1:$port" --sessions 100000 --rate 0 \
    --ping-ms 30000 --duration 10 --warmup 2 --per-socket 10000 --server-pid "$pid"
stop "$pid"
