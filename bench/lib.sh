# Shared by the benchmark scripts: the binaries of the build in $build,
# a work directory, servers started on CPU 0 and stopped on exit,
# kite-bench runs on CPU 1. Sourced after $build is set.
echo_bin=$build/examples/kite-echo
floor_bin=$build/bench/udp_echo_floor
chaos_bin=$build/tools/chaos/kite-chaos
bench_bin=$build/tools/bench/kite-bench

need() { # binaries the script runs
  for b in "$@"; do
    [ -x "$b" ] || { echo "missing $b: build first" >&2; exit 1; }
  done
}

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start() { # name, command...: starts a server on CPU 0, sets $pid and $port
  local name=$1
  shift
  # Emptied here, not only by the child's redirection, which may come after
  # the reads below: they would see the last server of that name's port,
  # or (pipefail) no file at all.
  : > "$work/$name.out"
  taskset -c 0 "$@" > "$work/$name.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 600); do # 30 s: a server under valgrind starts slowly
    port=$(sed -n 's/.*listening on [^,]*port \([0-9]*\).*/\1/p' "$work/$name.out" | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "$name did not start" >&2; cat "$work/$name.out" >&2; exit 1; }
}

stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

run() { # label, kite-bench args...
  local label=$1
  shift
  printf '%s ' "$label"
  taskset -c 1 "$bench_bin" --quiet --json "$@" | tail -1
}

