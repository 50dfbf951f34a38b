#!/usr/bin/env bash
# A kite cluster on one machine (docs/CLUSTER.md): its own redis-server (no
# config file, no persistence), three kited nodes and kite-lobby, until
# Ctrl-C, which stops each of them by its PID. Run through
#   scripts/run.sh --cluster
# which builds first. Ports (loopback): Redis $KITE_REDIS_PORT (6399),
# nodes 7101 7102 7103 (UDP and TCP), the lobby 8080. Logs: build/cluster/.
# Players: scripts/cluster-play.sh NAME ROOM (logs in through the lobby,
# then runs kite-cli on the node it was given).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release
redis_port=${KITE_REDIS_PORT:-6399}
logs=build/cluster
mkdir -p "$logs"
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  >"$logs/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
# The game's private key, shared by the lobby (which mints the tokens) and
# the nodes (which open them): made anew for each run, readable by us alone.
key="$logs/game.key"
(umask 077 && "$bin/tools/token/kite-token" --new-key >"$key")
for n in 1 2 3; do
  "$bin/examples/kited/kited" --udp "127.0.0.1:710$n" --redis "127.0.0.1:$redis_port" \
    --node-id "n$n" --token-key "$key" --protocol-id 0x4B495445 \
    >"$logs/kited-n$n.log" 2>&1 &
  pids+=($!)
done
"$bin/tools/lobby/kite-lobby" --redis "127.0.0.1:$redis_port" \
  --listen 127.0.0.1:8080 --key-file "$key" --protocol-id 0x4B495445 \
  >"$logs/lobby.log" 2>&1 &
pids+=($!)
sleep 1
cat <<MSG
kite cluster up: redis 127.0.0.1:$redis_port, nodes n1 n2 n3 on udp/tcp
127.0.0.1:7101-7103, lobby http://127.0.0.1:8080 (logs in $logs/).
Players, each in its own terminal (a line starting with '!' is heard on
every node, others in the room):
  scripts/cluster-play.sh alice arena
  scripts/cluster-play.sh bob dungeon
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "a process of the cluster ended: stopping the rest" >&2
