#!/usr/bin/env bash
# kcp-go against kite-echo over UDP on loopback: the handshake on a raw
# socket, then a stock kcp-go session on the accepted conv.
# usage: run_kcpgo_e2e.sh KITE_ECHO CLIENT_GO WORKDIR
set -euo pipefail
echo_bin=$1 src=$2 work=$3
mkdir -p "$work"
# GOPATH mode, offline, tools/kitewire importable; fails if go or kcp-go is missing
timeout 120 bash "$(dirname "$0")/../../scripts/gobuild.sh" "$work/kcpgo_echo_client" "$src" "$work" ||
  { echo "kcpgo_e2e: FAIL: building $src"; exit 1; }

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
timeout 60 "$echo_bin" --udp 127.0.0.1:0 --threads 2 > "$work/echo.out" 2> "$work/echo.err" &
pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on udp [^ ]* port \([0-9]*\).*/\1/p' "$work/echo.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "${port:-}" ] || { echo "kcpgo_e2e: FAIL: kite-echo did not start"; cat "$work/echo.err"; exit 1; }

for run in 1 2 3; do
  timeout 30 "$work/kcpgo_echo_client" -server "127.0.0.1:$port" -frames 150
done
kill -TERM "$pid"
wait "$pid" && rc=0 || rc=$?
pid=
[ "$rc" -eq 0 ] || { echo "kcpgo_e2e: FAIL: kite-echo exited $rc"; cat "$work/echo.err"; exit 1; }
grep -q "stopped (SIGTERM): sessions opened 3," "$work/echo.out" ||
  { echo "kcpgo_e2e: FAIL: expected 3 sessions"; cat "$work/echo.out"; exit 1; }
cat "$work/echo.out"
echo "kcpgo_e2e: OK"
