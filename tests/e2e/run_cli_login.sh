#!/usr/bin/env bash
# kite-cli logging in over protocol version 2 against kited on its
# defaults (a key of its own, versions 1 and 2, the login route), in a
# real terminal (tmux): alice logs in (POST /login) and plays v2 over KCP,
# carol the same over TCP; bob (KCP) and dave (TCP) connect plainly with
# version 1. All four in one room, chat between v2 and v1 players both
# ways; kited counts two tokens and two protocol-2 logins. Then a second
# kited with --token-key FILE: a token (kite-token) that names bob does
# not let its holder log in as mallory. Private tmux server (-L), kited on
# free ports, every process stopped by PID on exit; every wait bounded.
# Usage: run_cli_login.sh KITED KITE_CLI KITE_TOKEN
set -euo pipefail
kited=$1 cli=$2 token=$3
work=$(mktemp -d)
sock="kite-login-$$"
tm() { tmux -L "$sock" -f /dev/null "$@"; }
pids=()
cleanup() {
  tm kill-server 2>/dev/null || true
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "cli_login: FAIL: $*"
  for p in alice bob carol dave mallory; do
    echo "--- $p's screen"
    tm capture-pane -p -t "$p" 2>/dev/null || true
  done
  for f in "$work"/kited*.out; do echo "--- $f"; cat "$f"; done
  exit 1
}

# start_kited OUT ARGS...: sets kited_pid, port and login (URL, or empty).
start_kited() {
  local out=$1
  shift
  "$kited" --udp 127.0.0.1:0 --threads 2 --workers 2 "$@" > "$out" 2>&1 &
  kited_pid=$!
  pids+=("$kited_pid")
  port= login=
  for _ in $(seq 200); do # kited's start lines come in one flush
    port=$(sed -n 's/^kited listening on udp [^ ]* port \([0-9]*\).*/\1/p' "$out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || fail "kited did not start"
  login=$(sed -n 's|^login: POST \(http://[^ ]*/login\) .*|\1|p' "$out")
}

# wait_for PANE TEXT: until the pane shows TEXT (a fixed string), 10 s at most.
wait_for() {
  for _ in $(seq 200); do
    grep -qF -- "$2" <<<"$(tm capture-pane -p -t "$1")" && return 0
    sleep 0.05
  done
  fail "$1 never showed \"$2\""
}
type_in() { tm send-keys -t "$1" -l -- "$2"; tm send-keys -t "$1" Enter; }
play() { # play NAME ARGS...: kite-cli in a pane of its own
  local name=$1
  shift
  tm new-session -d -s "$name" -x 120 -y 40 \
    "$cli --name $name $* --join arena; echo \"[exit \$?]\"; sleep 60"
}

start_kited "$work/kited.out"
main_pid=$kited_pid
[ -n "$login" ] || fail "kited on its defaults has no login route"
grep -q 'protocol versions 1 and 2' "$work/kited.out" || fail "kited does not serve 1 and 2"
if grep -qiE '[0-9a-f]{64}' "$work/kited.out"; then fail "kited printed a key"; fi

play alice --login "$login"
wait_for alice "* you are in arena"
play bob --server "127.0.0.1:$port"
wait_for bob "* you are in arena"
play carol --login "$login" --tcp
wait_for carol "* you are in arena"
play dave --server "127.0.0.1:$port" --tcp
wait_for dave "* you are in arena"
wait_for alice "* dave is here"

wait_for alice "* connected (protocol 2)"
wait_for carol "* connected (protocol 2)"
for p in bob dave; do
  grep -qF "(protocol 2)" <<<"$(tm capture-pane -p -t "$p")" && fail "$p is not on protocol 1"
done
grep -qF "over KCP" <<<"$(tm capture-pane -p -t alice)" || fail "alice not over KCP"
grep -qF "over TCP" <<<"$(tm capture-pane -p -t carol)" || fail "carol not over TCP"

type_in alice "hello from v2 over kcp"
wait_for bob "<alice> hello from v2 over kcp"
wait_for dave "<alice> hello from v2 over kcp"
type_in bob "hello from v1 over kcp"
wait_for alice "<bob> hello from v1 over kcp"
wait_for carol "<bob> hello from v1 over kcp"
type_in carol "hello from v2 over tcp"
wait_for dave "<carol> hello from v2 over tcp"
wait_for bob "<carol> hello from v2 over tcp"
type_in dave "hello from v1 over tcp"
wait_for carol "<dave> hello from v1 over tcp"
wait_for alice "<dave> hello from v1 over tcp"

for p in alice bob carol dave; do
  type_in "$p" "/quit"
  wait_for "$p" "[exit 0]"
done
kill -TERM "$main_pid"
for _ in $(seq 200); do
  grep -q '^kited stopped' "$work/kited.out" && break
  sleep 0.05
done
grep -q '^kited login: tokens 2, refused 0' "$work/kited.out" || fail "kited did not count 2 tokens"
grep -q '^kited stopped: players 4 (2 logged in over protocol 2)' "$work/kited.out" ||
  fail "kited did not see 2 protocol-2 logins among 4 players"

# A backend's key shared with kited: its tokens open there, and the name
# a token carries is the only one its holder logs in as.
"$token" --new-key > "$work/game.key"
start_kited "$work/kited2.out" --token-key "$work/game.key" --no-login --no-tcp
grep -q '^login:' "$work/kited2.out" && fail "--no-login still serves a login route"
grep -q 'token key: from --token-key' "$work/kited2.out" || fail "kited2 does not say its key is given"
"$token" --key-file "$work/game.key" --protocol-id 0 --addr "127.0.0.1:$port" \
  --user-data bob > "$work/bob.tok"
tm new-session -d -s mallory -x 120 -y 40 \
  "$cli --name mallory --token $work/bob.tok; echo \"[exit \$?]\"; sleep 60"
wait_for mallory "* connected (protocol 2)"
wait_for mallory "! your login token names you otherwise"
type_in mallory "/quit"
wait_for mallory "[exit 0]"
echo "cli_login: ok: v2 by login over KCP and TCP beside v1, one room, chat both ways; a token's name binds"
