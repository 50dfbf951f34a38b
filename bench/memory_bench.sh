#!/usr/bin/env bash
# Memory given back after a burst (docs/BENCHMARKS.md, docs/RUNTIME.md):
# kite-echo's resident memory (VmRSS) at baseline, at the peak of a burst
# of SESSIONS sessions echoing RATE frames a second for DURATION seconds,
# a second after they all closed, and once the shards' trim passes have
# run (trim_interval_ms, 10 s by default: AFTER seconds after the close).
# The server has 2 shards; nothing is pinned (kite-bench shares the CPUs):
# the figures are memory, not CPU.
# Prints one line per reading and the kite-bench JSON line.
#
#   bench/memory_bench.sh [BUILD_DIR] [SESSIONS] [RATE] [DURATION] [AFTER] \
#                         [KITE-ECHO FLAGS...]   (e.g. --worker-mode hash)
set -euo pipefail
build=${1:-build/release}
sessions=${2:-10000}
rate=${3:-5}
duration=${4:-10}
after=${5:-25}
shift $(($# < 5 ? $# : 5))
. "$(dirname "$0")/lib.sh"
need "$echo_bin" "$bench_bin"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

: > "$work/kite.out"
"$echo_bin" --udp 127.0.0.1:0 --threads 2 --metrics 127.0.0.1:0 "$@" \
  > "$work/kite.out" 2>&1 &
pid=$!
pids+=("$pid")
port=
for _ in $(seq 600); do
  port=$(sed -n 's/.*listening on [^,]*port \([0-9]*\).*/\1/p' "$work/kite.out" | head -1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "kite-echo did not start" >&2; cat "$work/kite.out" >&2; exit 1; }
sleep 1
echo "baseline_kb $(rss "$pid")"

"$bench_bin" --udp "127.0.0.1:$port" --sessions "$sessions" --rate "$rate" \
  --size 64 --duration "$duration" --warmup 2 --per-socket 1000 \
  --server-pid "$pid" --quiet --json > "$work/bench.json" &
bench=$!
peak=0
while kill -0 "$bench" 2>/dev/null; do
  r=$(rss "$pid")
  [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.2
done
wait "$bench" || { echo "kite-bench failed:" >&2; cat "$work/bench.json" >&2; exit 1; }
echo "peak_kb $peak"
sleep 1
echo "after_close_kb $(rss "$pid")"
sleep "$after"
echo "after_trim_kb $(rss "$pid")"
echo "bench $(tail -1 "$work/bench.json")"
# What the trim passes gave back, from the metrics endpoint.
mport=$(sed -n 's/.*metrics on tcp port \([0-9]*\).*/\1/p' "$work/kite.out" | head -1)
exec 3<>"/dev/tcp/127.0.0.1/$mport"
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
grep -E '^kite_(pool_bytes|pool_trimmed_bytes_total|map_shrinks_total|malloc_trims_total) ' <&3 || true
exec 3<&-
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
