#!/usr/bin/env bash
# kite <-> kcp-go interop over real UDP on loopback (ctest interop_kcpgo).
#
# Builds kcpgo_peer.go against Debian's kcp-go (GOPATH mode, no network),
# starts kcp_udp_peer (kite's engine), reads the port it prints, and runs
# the Go peer against it. Both send N messages both ways through seeded
# loss and check every byte (see the two peers). Exits non-zero when either
# peer fails, times out, or when go or kcp-go is missing: a missing tool is
# a failure, never a skip.
#
# usage: run_kcpgo_interop.sh <kcp_udp_peer> <kcpgo_peer.go> <work_dir>
set -u

N=300          # messages each way
LOSS=10        # percent dropped by each side, on send and on receive
BUILD_S=25     # bounds: go build, port wait, each peer (they run together)
PORT_WAIT_S=5
PEER_S=25      # each peer gives up on its own after 20 s
KCPGO_SRC=/usr/share/gocode/src/github.com/xtaci/kcp-go

fail() {
  echo "interop_kcpgo: FAIL: $*" >&2
  exit 1
}

[ $# -eq 3 ] || fail "usage: $0 <kcp_udp_peer> <kcpgo_peer.go> <work_dir>"
c_peer=$1
go_src=$2
work=$3

# Every process we start is in |pids|; whatever the exit path, none
# outlives the script. Each also runs under timeout(1), which bounds it
# even if this script is SIGKILLed.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

command -v go >/dev/null 2>&1 ||
  fail "'go' not found in PATH: install golang-go (Go >= 1.19) to run this test"
[ -f "$KCPGO_SRC/kcp.go" ] ||
  fail "kcp-go source not found at $KCPGO_SRC: install golang-github-xtaci-kcp-dev"
[ -x "$c_peer" ] || fail "kite peer not built: $c_peer"
[ -f "$go_src" ] || fail "Go peer source not found: $go_src"
mkdir -p "$work" || fail "cannot create $work"

# GOPATH mode against the Debian tree, cache in the build directory, no
# user config read (HOME may be unset in CI), and no network ever.
go_bin=$work/kcpgo_peer
timeout -k 2 "$BUILD_S" env GO111MODULE=off GOPATH=/usr/share/gocode \
  GOCACHE="$work/gocache" GOENV=off GOFLAGS= GOPROXY=off CGO_ENABLED=0 \
  go build -o "$go_bin" "$go_src" ||
  fail "go build $go_src failed (status $?)"

c_out=$work/kcp_udp_peer.out
c_err=$work/kcp_udp_peer.err
go_log=$work/kcpgo_peer.log
rm -f "$c_out" "$c_err" "$go_log"

timeout -k 2 "$PEER_S" "$c_peer" -n "$N" -l "$LOSS" -s 1 -t 20 \
  >"$c_out" 2>"$c_err" &
c_pid=$!
pids+=("$c_pid")

show_logs() {
  sed 's/^/  [kite] /' "$c_out" "$c_err" >&2
  [ -f "$go_log" ] && sed 's/^/  [kcp-go] /' "$go_log" >&2
}

# The first line of stdout is the port; read succeeds only on a whole line.
port=
for _ in $(seq $((PORT_WAIT_S * 10))); do
  if IFS= read -r port <"$c_out" 2>/dev/null; then
    break
  fi
  port=
  kill -0 "$c_pid" 2>/dev/null || break
  sleep 0.1
done
case $port in
'' | *[!0-9]*)
  show_logs
  fail "kcp_udp_peer printed no port within ${PORT_WAIT_S} s (got '$port')"
  ;;
esac

timeout -k 2 "$PEER_S" "$go_bin" -port "$port" -n "$N" -loss "$LOSS" \
  -seed 2 -timeout 20s >"$go_log" 2>&1 &
go_pid=$!
pids+=("$go_pid")

# Wait for the first peer to end; if it failed, stop the other rather than
# wait out its timeout.
while kill -0 "$c_pid" 2>/dev/null && kill -0 "$go_pid" 2>/dev/null; do
  sleep 0.05
done
c_stopped=0 go_stopped=0
if ! kill -0 "$c_pid" 2>/dev/null; then
  wait "$c_pid"
  c_rc=$?
  [ "$c_rc" -eq 0 ] || { kill "$go_pid" 2>/dev/null && go_stopped=1; }
  wait "$go_pid"
  go_rc=$?
else
  wait "$go_pid"
  go_rc=$?
  [ "$go_rc" -eq 0 ] || { kill "$c_pid" 2>/dev/null && c_stopped=1; }
  wait "$c_pid"
  c_rc=$?
fi
pids=()

show_logs
status() { # exit status, stopped by us (0/1)
  if [ "$2" -eq 1 ] && [ "$1" -ne 0 ]; then
    echo "stopped after the other peer failed"
  else
    case $1 in
    0) echo "ok" ;;
    124) echo "timed out (timeout(1) killed it)" ;;
    *) echo "failed (status $1)" ;;
    esac
  fi
}
if [ "$c_rc" -ne 0 ] || [ "$go_rc" -ne 0 ]; then
  fail "kite peer: $(status "$c_rc" "$c_stopped"), kcp-go peer: $(status "$go_rc" "$go_stopped")"
fi
echo "interop_kcpgo: OK: $N messages each way through ${LOSS}% loss per side and direction"
