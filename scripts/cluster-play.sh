#!/usr/bin/env bash
# One player of the cluster started by scripts/run.sh --cluster: logs in
# through kite-lobby (which picks the node holding ROOM, or the least
# loaded one) and plays there with kite-cli.
# Usage: scripts/cluster-play.sh NAME ROOM [LOBBY-URL]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 NAME ROOM [http://127.0.0.1:8080]" >&2; exit 2; }
lobby=${3:-http://127.0.0.1:8080}
answer=$(curl -sS "$lobby/login?name=$1&room=$2")
addr=$(printf '%s' "$answer" | sed -n 's/.*"addr":"\([^"]*\)".*/\1/p')
node=$(printf '%s' "$answer" | sed -n 's/.*"node":"\([^"]*\)".*/\1/p')
if [ -z "$addr" ]; then
  echo "login refused: $answer" >&2
  exit 1
fi
echo "* the lobby placed $1 on node $node ($addr)"
# The answer's "token" is a version-2 connect token for $addr (1600 hex
# digits): kite-cli connects with it, encrypted and authenticated.
tok=$(mktemp)
trap 'rm -f "$tok"' EXIT
(umask 077 && printf '%s' "$answer" | sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' >"$tok")
build/release/tools/cli/kite-cli --name "$1" --token "$tok" --join "$2"
