#!/usr/bin/env bash
# kite-bench --ws against a real kite-echo: a few sessions for a few
# seconds over WebSocket on its TCP port, every echo back and checked; frames
# larger than wslay's 4 KiB input buffer, so that both sides' payloads come
# in pieces; idle sessions kept open by their pings past the server's idle
# timeout; and a port with no TCP listener, which must fail the run.
# Usage: kite_bench_ws.sh KITE_ECHO KITE_BENCH
set -u
echo_bin=$1 bench_bin=$2
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null; wait "$p" 2> /dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$dir/echo.out" ] && cat "$dir/echo.out" >&2; exit 1; }

# start NAME kite-echo-args...: sets $pid and $port (the listening line, 60 s
# at most: a sanitizer build starts slowly on a loaded machine).
start() {
  local name=$1
  shift
  "$echo_bin" "$@" > "$dir/$name.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 600); do
    port=$(sed -n 's/.*listening on [^,]*port \([0-9]*\).*/\1/p' "$dir/$name.out" | head -1)
    [ -n "$port" ] && return
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  fail "kite-echo ($name) did not start"
}

# field LINE KEY: a number from kite-bench's JSON line.
field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<< "$1"; }

# bench NAME EXPECTED_EXIT kite-bench-args...: runs it, bounded; sets $line.
bench() {
  local name=$1 want=$2 rc
  shift 2
  timeout 120 "$bench_bin" --quiet --json "$@" > "$dir/$name.json" 2> "$dir/$name.err"
  rc=$?
  line=$(tail -1 "$dir/$name.json")
  [ "$rc" -eq "$want" ] ||
    { cat "$dir/$name.err" >&2; fail "$name: kite-bench exited $rc, want $want: $line"; }
  [ "$(field "$line" mode)" = kite-ws ] || fail "$name: mode is not kite-ws: $line"
}

# clean NAME SESSIONS: every session up, every echo back intact and in order.
clean() {
  local k
  [ "$(field "$line" sessions)" = "$2" ] || fail "$1: not $2 sessions up: $line"
  for k in failed lost out_of_order corrupt; do
    [ "$(field "$line" $k)" = 0 ] || fail "$1: $k is not 0: $line"
  done
}

start echo --udp 127.0.0.1:0 --tcp 127.0.0.1:0 --threads 1 --idle-timeout-ms 1500

bench small 0 --ws "127.0.0.1:$port" --sessions 8 --rate 20 --size 64 \
  --duration 2 --warmup 0.5 --drain 10 --server-pid "$pid"
clean small 8
sent=$(field "$line" sent)
[ "$sent" -ge 100 ] || fail "small: only $sent frames sent in 2.5 s"
[ "$(field "$line" received)" = "$sent" ] || fail "small: not every echo came back: $line"
[ -n "$(field "$line" server_us_per_msg)" ] || fail "small: no server CPU figure: $line"

bench large 0 --ws "127.0.0.1:$port" --ws-path /bench --sessions 3 --rate 10 \
  --size 20000 --duration 1 --warmup 0.2 --drain 10
clean large 3
[ "$(field "$line" received)" -gt 0 ] || fail "large: nothing echoed: $line"

# 3 s idle against a 1.5 s idle timeout: only pings keep them open.
bench idle 0 --ws "127.0.0.1:$port" --sessions 4 --rate 0 --duration 3 --warmup 0.2
clean idle 4

# A port with no TCP listener: every session fails, exit 1.
start udp_only --udp 127.0.0.1:0 --threads 1
bench refused 1 --ws "127.0.0.1:$port" --sessions 2 --rate 20 --duration 0.5 --warmup 0
[ "$(field "$line" failed)" = 2 ] || fail "refused: not 2 failed sessions: $line"

grep -q -- "--ws HOST:PORT" <<<"$("$bench_bin" --help)" || fail "--help does not name --ws"
echo "kite-bench --ws: all checks passed"
