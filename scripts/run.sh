#!/usr/bin/env bash
# Builds kite (installing its Debian packages first) and runs the demo game
# server on defaults: kited on udp and tcp 127.0.0.1:7001 (protocol
# versions 1 and 2), its login route on 127.0.0.1:7002, hash workers,
# until SIGINT/SIGTERM (a graceful stop). Arguments go to kited, e.g.
#   scripts/run.sh --udp 0.0.0.0:7001 --metrics 127.0.0.1:9464
# kited prints the arena's URL (http://127.0.0.1:7001/): open it in a
# browser to play. Or, in another terminal, log in on kited's demo login
# route (plain HTTP on loopback: production puts TLS in front) and play
# over protocol version 2:
#   build/release/tools/cli/kite-cli --login http://127.0.0.1:7002/login --name alice --join arena
# With --cluster: Redis, three nodes and kite-lobby instead
# (scripts/cluster.sh, docs/CLUSTER.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if [ "${1:-}" = "--cluster" ]; then
  cmake --build build/release -j"$(nproc)" --target kited kite-cli kite-lobby >/dev/null
  exec scripts/cluster.sh
fi
cmake --build build/release -j"$(nproc)" --target kited kite-cli >/dev/null
exec build/release/examples/kited/kited "$@"
