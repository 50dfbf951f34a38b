#!/usr/bin/env bash
# Wake-ups before and after: the UDP echo floor, then the kite-echo of two
# builds, each driven by kite-bench and by the stock kcp-go client
# (bench/kcpgo_client), on the main load (1,000 sessions x 20/s x 64 B) and
# the idle one (10,000 x 1/s x 20 B), interleaved and repeated. Each server
# runs alone on CPU 0 (the stock client takes both CPUs above 2,000
# sessions, as in bench/compare); while it is measured, perf stat counts
# its epoll_wait, recvmmsg, sendmmsg and clock_nanosleep calls and its
# context switches (when perf can). One line per run: server CPU per
# echo (compare it with the floor of the same round), round trips, the
# stock client's retransmissions, and system calls per second
# (docs/BENCHMARKS.md, "Fewer wake-ups").
#
#   bench/wake_bench.sh BEFORE_BUILD AFTER_BUILD [ROUNDS] [kite-echo args for after...]
#   e.g. bench/wake_bench.sh ../base/build/release build/release 3
#        bench/wake_bench.sh build/release build/release 3 --wake-coalesce-us 0
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/wake_bench.sh BEFORE_BUILD AFTER_BUILD [ROUNDS] [args...]" >&2; exit 2; }
before=$(realpath "$1") after=$(realpath "$2")
rounds=${3:-3}
shift $(( $# >= 3 ? 3 : 2 ))
after_args=("$@")
build=$after
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
stock_bin=$build/bench/kcpgo_client
need "$before/examples/kite-echo" "$echo_bin" "$floor_bin" "$bench_bin" "$stock_bin"
events=syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_clock_nanosleep,context-switches
perf_ok=0
perf stat -x, -e "$events" -- true > /dev/null 2>&1 && perf_ok=1
dur=8 warm=2

# one LABEL CLIENT N RATE SIZE: one run against the server in $pid/$port.
one() {
  local label=$1 client=$2 n=$3 rate=$4 size=$5 line counts="" pp=""
  if [ "$perf_ok" = 1 ]; then
    (sleep $((warm + 1)); perf stat -x, -e "$events" -p "$pid" -- sleep $((dur - 2)) \
       2> "$work/perf" > /dev/null) &
    pp=$!
  fi
  local load=(--sessions "$n" --rate "$rate" --size "$size" --duration "$dur" --warmup "$warm")
  case $client in
    kite-bench) line=$(taskset -c 1 "$bench_bin" --quiet --json "${flag[@]}" "127.0.0.1:$port" \
                         --per-socket 2500 "${load[@]}" --server-pid "$pid" | tail -1) || true ;;
    kcp-go) line=$(taskset -c "$([ "$n" -le 2000 ] && echo 1 || echo 0,1)" "$stock_bin" --quiet \
                     --json "${load[@]}" --server-pid "$pid" "127.0.0.1:$port" | tail -1) || true ;;
  esac
  if [ -n "$pp" ]; then
    wait "$pp" || true
    counts=$(awk -F, -v d=$((dur - 2)) '{sub("syscalls:sys_enter_", "", $3);
               printf " %s %.0f/s", $3, $1 / d}' "$work/perf")
  fi
  echo "$label $client n=$n $(echo "$line" | sed -n \
    's/.*"rtt_p50_ms":\([0-9.]*\).*"rtt_p99_ms":\([0-9.]*\).*"server_us_per_msg":\([0-9.]*\).*/us_per_echo=\3 p50=\1 p99=\2/p')$(echo "$line" | \
    sed -n 's/.*"client_retransmits":\([0-9]*\).*/ client_retransmits=\1/p');$counts"
}

for r in $(seq "$rounds"); do
  for load in "1000 20 64" "10000 1 20"; do
    read -r n rate size <<< "$load"
    start floor "$floor_bin" --udp 127.0.0.1:0 --threads 1
    flag=(--floor --udp)
    one "round=$r floor" kite-bench "$n" "$rate" "$size"
    stop "$pid"
    flag=(--udp)
    for side in before after; do
      for client in kite-bench kcp-go; do
        if [ "$side" = before ]; then
          start before "$before/examples/kite-echo" --udp 127.0.0.1:0 --threads 1 --max-sessions 20000
        else
          start after "$echo_bin" --udp 127.0.0.1:0 --threads 1 --max-sessions 20000 "${after_args[@]}"
        fi
        one "round=$r $side" "$client" "$n" "$rate" "$size"
        stop "$pid"
      done
    done
  done
done
