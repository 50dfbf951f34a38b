#!/usr/bin/env bash
# The loss benchmark of docs/BENCHMARKS.md: the runtime benchmark's load
# (1000 sessions x 20 echoes/s x 64 B) through kite-chaos at a given loss
# each way (default 5%), seeded. kite-echo (one shard) and kite-chaos are
# pinned to CPU 0, kite-bench to CPU 1. kite-bench fails the run if any
# echo is lost, corrupt or out of order.
#
#   bench/loss_bench.sh [BUILD_DIR] [LOSS] [SEED]
set -euo pipefail
build=${1:-build/release}
loss=${2:-0.05}
seed=${3:-1}
. "$(dirname "$0")/lib.sh"
need "$echo_bin" "$chaos_bin" "$bench_bin"

start kite "$echo_bin" --udp 127.0.0.1:0 --threads 1
server_pid=$pid server_port=$port
start chaos "$chaos_bin" --server "127.0.0.1:$server_port" --loss "$loss" --seed "$seed"
run "kite_loss_$loss" --udp "127.0.0.1:$port" --sessions 1000 --rate 20 --size 64 \
    --duration 20 --warmup 3 --server-pid "$server_pid"
stop "$pid"
stop "$server_pid"
