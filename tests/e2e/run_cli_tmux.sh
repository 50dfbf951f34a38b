#!/usr/bin/env bash
# kite-cli driven in a real terminal (tmux) against kited: two players,
# one over KCP and one over TCP, join one room in one command each, chat, list rooms, move and look,
# and quit; each sees what the other did. A private tmux server (-L) and
# kited on a free port, both stopped on exit; every wait is bounded.
# Usage: run_cli_tmux.sh KITED KITE_CLI
set -euo pipefail
kited=$1 cli=$2
work=$(mktemp -d)
sock="kite-test-$$"
tm() { tmux -L "$sock" -f /dev/null "$@"; }
kited_pid=
cleanup() {
  tm kill-server 2>/dev/null || true
  if [ -n "$kited_pid" ]; then
    kill -TERM "$kited_pid" 2>/dev/null || true
    wait "$kited_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "cli_tmux: FAIL: $*"
  for p in alice bob; do
    echo "--- $p's screen"
    tm capture-pane -p -t "$p" 2>/dev/null || true
  done
  echo "--- kited"
  cat "$work/kited.out"
  exit 1
}

"$kited" --udp 127.0.0.1:0 --threads 2 --workers 2 > "$work/kited.out" 2>&1 &
kited_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^kited listening on udp [^ ]* port \([0-9]*\).*/\1/p' "$work/kited.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || fail "kited did not start"

# wait_for PANE TEXT: until the pane shows TEXT (a fixed string), 10 s at most.
wait_for() {
  for _ in $(seq 200); do
    grep -qF -- "$2" <<<"$(tm capture-pane -p -t "$1")" && return 0
    sleep 0.05
  done
  fail "$1 never showed \"$2\""
}
type_in() { tm send-keys -t "$1" -l -- "$2"; tm send-keys -t "$1" Enter; }

# One after the other, so alice is player 1 (at x=360) and bob player 2.
# alice plays over KCP, bob over TCP on the same port: one room, both ways.
for p in alice bob; do
  transport=
  [ "$p" = bob ] && transport=--tcp
  tm new-session -d -s "$p" -x 100 -y 40 \
    "$cli --server 127.0.0.1:$port $transport --name $p --join arena; echo \"[exit \$?]\"; sleep 60"
  wait_for "$p" "* you are in arena"
done
wait_for alice "* bob is here"

type_in alice "hello bob"
wait_for bob "<alice> hello bob"
wait_for alice "<alice> hello bob" # a room's chat reaches its sender too
type_in bob "hi alice"
wait_for alice "<bob> hi alice"

type_in alice "/rooms"
wait_for alice "*   arena 2"

# Movement: the room's tick moves alice right at 10 units a tick.
type_in alice "/move 1 0"
sleep 0.5
type_in alice "/stop"
type_in bob "/who"
wait_for bob "*   bob at (380, 500), snapshot"
grep -q '^\*   alice at (\(3[7-9][0-9]\|[4-9][0-9][0-9]\|1000\), 500), snapshot [0-9]* ms old$' <<<"$(tm capture-pane -p -t bob)" ||
  fail "bob does not see alice moved right of x=360"

type_in alice "/frobnicate"
wait_for alice "* /rooms  /join ROOM"

type_in alice "/quit"
wait_for alice "* disconnected (normal)"
wait_for alice "[exit 0]"
wait_for bob "* alice left"

type_in bob "/leave"
wait_for bob "* you left arena"
type_in bob "this goes nowhere"
wait_for bob "! join a room to chat"
type_in bob "/quit"
wait_for bob "[exit 0]"
echo "cli_tmux: ok: join, chat both ways, rooms, move and who, leave, quit"
