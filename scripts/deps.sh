#!/usr/bin/env bash
# Install what kite needs to build and test, by Debian package name.
# Idempotent: does nothing when every package is already installed.
# Usage: scripts/deps.sh [PACKAGE...]  (given names: only those, e.g. the
# few that scripts/install.sh needs to build the library and programs)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  clang libclang-rt-14-dev          # libFuzzer and the sanitizer runtimes
  libcmocka-dev                     # unit tests
  libsodium-dev                     # keyed MAC and randomness (handshake)
  zlib1g-dev                        # CRC-32 of frame bodies
  golang-go golang-github-xtaci-kcp-dev   # kcp-go interop tests, bench/compare
  libenet-dev                       # bench/compare: the ENet echo and load
  gnuplot-nox valgrind              # bench/compare: its plots, instruction counts; tests/valgrind
  tmux                              # drives kite-cli in its end-to-end test
  libwslay-dev                      # WebSocket framing (src/net/ws.c)
  nettle-dev                        # SHA-1 and base64 of the WebSocket handshake
  nodejs                            # clients/js: node --test (Node 18 or later)
  chromium                          # the arena page's end-to-end test (headless)
  libhiredis-dev                    # libkite_cluster: the Redis client (docs/CLUSTER.md)
  redis-server                      # the cluster tests and run.sh --cluster start their own
  curl                              # scripts/cluster-play.sh asks the lobby; bench/overload_bench.sh
  time                              # bench/overload_bench.sh: the client's own CPU
)

[ $# -gt 0 ] && pkgs=("$@")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
