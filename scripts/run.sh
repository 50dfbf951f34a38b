#!/usr/bin/env bash
# Builds kite (installing its Debian packages first) and runs its main
# program. Until the runtime lands (kite-echo, then the demo game server
# kited), that is the KCP engine's benchmark. Arguments are passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" --target kcp_bench >/dev/null
exec build/release/bench/kcp_bench "$@"
