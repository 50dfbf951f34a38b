#!/usr/bin/env bash
# Version 1 beside version 2 on one port: kite-echo serving both (a token
# key, --versions 1,2) while, at the same time, kite-bench runs v2
# sessions over KCP and TCP (each minting its own token) and v1 sessions
# of kite's own client, and a stock kcp-go client (the handshake on a raw
# socket, then kcp-go: kcpgo_echo_client.go) echoes three times. Every
# load must lose nothing; kite-echo must have opened every session.
# usage: run_kcpgo_v2_e2e.sh KITE_ECHO KITE_BENCH CLIENT_GO WORKDIR
set -euo pipefail
echo_bin=$1 bench_bin=$2 src=$3 work=$4
mkdir -p "$work"
timeout 120 bash "$(dirname "$0")/../../scripts/gobuild.sh" "$work/kcpgo_echo_client" "$src" "$work" ||
  { echo "kcpgo_v2_e2e: FAIL: building $src"; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$work/game.key"
timeout 90 "$echo_bin" --udp 127.0.0.1:0 --tcp 127.0.0.1:0 --threads 2 \
  --token-key "$work/game.key" --protocol-id 0x4b495445 --versions 1,2 \
  > "$work/echo.out" 2> "$work/echo.err" &
echo_pid=$!
pids+=("$echo_pid")
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on udp [^ ]* port \([0-9]*\).*/\1/p' "$work/echo.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "${port:-}" ] || { echo "kcpgo_v2_e2e: FAIL: kite-echo did not start"; cat "$work/echo.err"; exit 1; }

load() { # NAME ARGS...: 20 sessions x 20/s for 6 s, in the background
  local name=$1; shift
  timeout 60 "$bench_bin" "$@" --sessions 20 --rate 20 --warmup 1 --duration 6 \
    > "$work/$name.out" 2>&1 &
  pids+=("$!")
  eval "${name}_pid=$!"
}
load v2kcp --udp "127.0.0.1:$port" --token-key "$work/game.key" --protocol-id 0x4b495445
load v2tcp --tcp "127.0.0.1:$port" --token-key "$work/game.key" --protocol-id 0x4b495445
load v1kcp --udp "127.0.0.1:$port"
sleep 1.5 # the loads are on: the kcp-go sessions run beside them
for run in 1 2 3; do
  timeout 30 "$work/kcpgo_echo_client" -server "127.0.0.1:$port" -frames 150 ||
    { echo "kcpgo_v2_e2e: FAIL: kcp-go run $run"; exit 1; }
done
for name in v2kcp v2tcp v1kcp; do
  pid_var=${name}_pid
  wait "${!pid_var}" && rc=0 || rc=$?
  [ "$rc" -eq 0 ] || { echo "kcpgo_v2_e2e: FAIL: kite-bench $name exited $rc"; cat "$work/$name.out"; exit 1; }
  grep -m1 -i "echoes" "$work/$name.out" || true
done
kill -TERM "$echo_pid"
wait "$echo_pid" && rc=0 || rc=$?
pids=()
[ "$rc" -eq 0 ] || { echo "kcpgo_v2_e2e: FAIL: kite-echo exited $rc"; cat "$work/echo.err"; exit 1; }
grep -q "stopped (SIGTERM): sessions opened 63," "$work/echo.out" ||
  { echo "kcpgo_v2_e2e: FAIL: expected 63 sessions (20 + 20 + 20 + 3)"; cat "$work/echo.out"; exit 1; }
cat "$work/echo.out"
echo "kcpgo_v2_e2e: OK"
