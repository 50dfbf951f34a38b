#!/usr/bin/env bash
# Builds kite (installing its Debian packages first) and runs its server on
# defaults: kite-echo on udp 127.0.0.1:7001, one shard per CPU, until
# SIGINT/SIGTERM (a graceful stop). Arguments go to kite-echo, e.g.
#   scripts/run.sh --udp 0.0.0.0:7001 --threads 4
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" --target kite-echo >/dev/null
exec build/release/examples/kite-echo "$@"
