# Shared by the benchmark scripts: a work directory, servers started on
# CPU 0 and stopped on exit, kite-bench runs on CPU 1. Sourced after
# $bench_bin is set.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start() { # name, command...: starts a server on CPU 0, sets $pid and $port
  local name=$1
  shift
  taskset -c 0 "$@" > "$work/$name.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on [^,]*port \([0-9]*\).*/\1/p' "$work/$name.out" | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "$name did not start" >&2; cat "$work/$name.out" >&2; exit 1; }
}

stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }

run() { # label, kite-bench args...
  local label=$1
  shift
  printf '%s ' "$label"
  taskset -c 1 "$bench_bin" --quiet --json "$@" | tail -1
}

