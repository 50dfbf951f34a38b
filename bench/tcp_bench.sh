#!/usr/bin/env bash
# The TCP benchmark of docs/BENCHMARKS.md: one kite-echo (one shard, UDP and
# TCP on one port) under the same load over KCP and over TCP, beside the
# plain UDP echo floor, runs interleaved and repeated. Servers on CPU 0,
# kite-bench on CPU 1. Prints one JSON line per run (kite-bench --json)
# prefixed with the load's name.
#
#   bench/tcp_bench.sh [BUILD_DIR] [REPEATS]
set -euo pipefail
build=${1:-build/release}
repeats=${2:-3}
. "$(dirname "$0")/lib.sh"
need "$echo_bin" "$floor_bin" "$bench_bin"

load=(--sessions 1000 --rate 20 --size 64 --duration 10 --warmup 2)
for r in $(seq "$repeats"); do
  start floor "$floor_bin" --udp 127.0.0.1:0 --threads 1
  run "floor_1000x20" --floor --udp "127.0.0.1:$port" "${load[@]}" --server-pid "$pid"
  stop "$pid"
  start kite "$echo_bin" --udp 127.0.0.1:0 --tcp 127.0.0.1:0 --threads 1
  run "kcp_1000x20" --udp "127.0.0.1:$port" "${load[@]}" --server-pid "$pid"
  stop "$pid"
  start kite "$echo_bin" --udp 127.0.0.1:0 --tcp 127.0.0.1:0 --threads 1
  run "tcp_1000x20" --tcp "127.0.0.1:$port" "${load[@]}" --server-pid "$pid"
  stop "$pid"
done
