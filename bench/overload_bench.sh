#!/usr/bin/env bash
# Overload (issue 16, its last goal): 100,000 sessions x 1 echo/s x 32 B
# (kite-bench) against kite-echo with 2 shards, on its own and then beside
# a CPU-bound hog (one spinner per core, started here, killed by PID). The
# server and kite-bench share the machine's 2 cores with the hog; nothing
# is pinned. One line per run: the load average, sessions connected,
# refused at the handshake (REJECT full, as kite-bench saw them) and
# failed otherwise, the server's reject_overload / reject_full /
# rx_overflows (metrics endpoint, read at the end of the run), echoes
# lost, p50 / p99, server CPU and RSS, kite-bench's own CPU (user+sys
# seconds over the whole run) (docs/BENCHMARKS.md, "Overload").
# kite-bench plays 100,000 clients that would be on other machines: it
# runs at nice OVERLOAD_CLIENT_NICE (-10, which needs root; 0 for a fair
# share), so that the hog starves the server rather than the client (a
# starved client stops acknowledging, and the server's retransmissions
# are then the client's doing). OVERLOAD_DUR and OVERLOAD_WARM (10, 3 s)
# set kite-bench's window; OVERLOAD_KEEP=PREFIX keeps each run's metrics.
#
#   bench/overload_bench.sh [BUILD_DIR] [ROUNDS] [v1|v2|both] [kite-echo args...]
set -euo pipefail
build=${1:-build/release}
rounds=${2:-2}
versions=${3:-v1}
shift $(( $# >= 3 ? 3 : $# ))
echo_args=("$@")
. "$(dirname "$0")/lib.sh"
need "$echo_bin" "$bench_bin" /usr/bin/time
command -v curl > /dev/null || { echo "overload_bench: needs curl" >&2; exit 1; }
n=100000 dur=${OVERLOAD_DUR:-10} warm=${OVERLOAD_WARM:-3} cnice=${OVERLOAD_CLIENT_NICE:--10}

hogs=()
hog_on() { # one spinner per core, each its own process
  for c in 0 1; do
    taskset -c "$c" sh -c 'while :; do :; done' &
    hogs+=("$!")
    pids+=("$!")
  done
}
hog_off() {
  for h in "${hogs[@]}"; do kill "$h" 2>/dev/null || true; wait "$h" 2>/dev/null || true; done
  hogs=()
}

metric() { # FAMILY [LABEL]: one value from the metrics text in $work/metrics
  local pat="^$1"
  [ $# -ge 2 ] && pat="^$1{[a-z]*=\"$2\"}"
  awk -v p="$pat" '$0 ~ p { v = $NF } END { printf "%d", v + 0 }' "$work/metrics"
}

one() { # LABEL VERSION
  local label=$1 v=$2 key=() sargs=()
  if [ "$v" = v2 ]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/key"
    key=(--token-key "$work/key" --protocol-id 7)
    sargs=(--token-key "$work/key" --protocol-id 7 --versions 2)
  fi
  : > "$work/echo.out"
  "$echo_bin" --udp 127.0.0.1:0 --threads 2 --max-sessions 110000 --metrics 127.0.0.1:0 \
    --idle-timeout-ms 120000 "${sargs[@]}" "${echo_args[@]}" > "$work/echo.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  port= mport=
  for _ in $(seq 600); do
    port=$(sed -n 's/.*listening on [^,]*port \([0-9]*\).*/\1/p' "$work/echo.out" | head -1)
    mport=$(sed -n 's/.*metrics on tcp port \([0-9]*\).*/\1/p' "$work/echo.out" | head -1)
    [ -n "$port" ] && [ -n "$mport" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "kite-echo did not start" >&2; cat "$work/echo.out" >&2; exit 1; }
  [ "$label" = hog ] && hog_on
  local load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  local line
  line=$(/usr/bin/time -o "$work/time" -f "%U %S" nice -n "$cnice" "$bench_bin" --json "${key[@]}" --udp "127.0.0.1:$port" --sessions "$n" --rate 1 \
           --size 32 --per-socket 10000 --duration "$dur" --warmup "$warm" \
           --server-pid "$pid" 2> "$work/bench.err" | tail -1) || true
  curl -s "http://127.0.0.1:$mport/metrics" > "$work/metrics" || : > "$work/metrics"
  [ -n "${OVERLOAD_KEEP:-}" ] && cp "$work/metrics" "$OVERLOAD_KEEP.$label.$v.metrics"
  hog_off
  stop "$pid"
  local refused failed
  refused=$(grep -c 'rejected: server full' "$work/bench.err" || true)
  failed=$(grep -c 'ended:' "$work/bench.err" || true)
  j() { echo "$line" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
  echo "$label $v client_nice=$cnice load=[$load] connected=$(j sessions) refused=$refused" \
       "failed_otherwise=$((failed - refused)) reject_overload=$(metric kite_handshakes_rejected_total overload)" \
       "reject_full=$(metric kite_handshakes_rejected_total full) rx_overflows=$(metric kite_rx_overflows_total)" \
       "connect_s=$(j connect_s) sent=$(j sent) lost=$(j lost) p50=$(j rtt_p50_ms)ms p99=$(j rtt_p99_ms)ms" \
       "max=$(j rtt_max_ms)ms cpu=$(j server_cpu_pct)% rss=$(( $(j server_rss_kb) / 1024 ))MB" \
       "hwm=$(( $(j server_hwm_kb) / 1024 ))MB client_cpu_s=$(tail -1 "$work/time" | awk '{print $1 + $2}')"
  grep -v 'rejected: server full' "$work/bench.err" | sed 's/session [0-9]* //' | sort | uniq -c | sort -rn | head -3 | sed 's/^/  /' || true
}

for r in $(seq "$rounds"); do
  for v in $([ "$versions" = both ] && echo "v1 v2" || echo "$versions"); do
    one alone "$v"
    one hog "$v"
  done
done
