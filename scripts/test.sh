#!/usr/bin/env bash
# Runs every kite test, installing what they need first (scripts/deps.sh):
#   1. release build: unit, simulation, interop and end-to-end tests, and
#      tests/valgrind (memcheck; left out of the sanitizer builds);
#   2. ASan + UBSan build (pools malloc each object so ASan sees every use):
#      the same tests;
#   3. TSan build: the tests labelled threaded (shards, queues, servers);
#   4. clang libFuzzer build: each fuzz target for KITE_FUZZ_SECONDS (30).
# Usage: scripts/test.sh [ctest args...], e.g. scripts/test.sh -R kcp
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

jobs=$(nproc)
fuzz_seconds=${KITE_FUZZ_SECONDS:-30}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run() { # name, ctest label ("" for all), cmake args...
  local dir=build/$1 label=$2
  shift 2
  echo "== $dir"
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" ${label:+-L "$label"} \
    "${ctest_args[@]}"
}

ctest_args=("$@")
run release "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run asan "" -DCMAKE_BUILD_TYPE=Debug -DKITE_SANITIZE=ON
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1} \
  run tsan threaded -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKITE_TSAN=ON -DKITE_BENCH=OFF
run fuzz "" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKITE_FUZZ=ON \
         -DCMAKE_C_COMPILER=clang -DKITE_FUZZ_SECONDS="$fuzz_seconds"
echo "== all test builds passed"
