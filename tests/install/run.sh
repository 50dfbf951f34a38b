#!/usr/bin/env bash
# Installs kite from a build tree into a fresh prefix, then builds game.c
# against that prefix as a user would, three ways, and runs each build:
#   1. pkg-config:           cc game.c $(pkg-config --cflags --libs kite)
#      (checked with ldd to load the installed libkite.so, not the build's)
#   2. pkg-config --static:  cc game.c $(pkg-config --static --cflags --libs kite)
#      with libkite.a linked statically and the rest shared: Debian's
#      libwslay-dev has no libwslay.a, so a fully static program cannot be
#      made (checked with ldd: no libkite.so loaded)
#   3. find_package(kite):   tests/install/CMakeLists.txt, kite::kite (ldd
#      checked as 1.) and kite::kite_static (no libkite.so loaded)
# and, with no install, 4. add_subdirectory(kite): the same CMakeLists.txt
# given KITE_SOURCE_DIR, which must build kite's library and none of its
# programs, tests or benchmarks.
# Each game runs a server and a client through a round trip on a free
# loopback port and exits 0 (game.c bounds it to 20 s).
# Usage: run.sh BUILD_DIR WORK_DIR SOURCE_DIR   (WORK_DIR is emptied first)
set -euo pipefail
build=$1 work=$2 src=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
prefix=$work/prefix
cc=${CC:-cc}
unset LD_LIBRARY_PATH

step() { echo "== $*"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
pc=$(find "$prefix" -name kite.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || { echo "no kite.pc installed"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=$(dirname "$pc")
for f in include/kite/kite.h include/kite/version.h include/kite/export.h; do
  [ -f "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
for p in kited kite-echo kite-cli kite-bench kite-chaos kite-token; do
  [ -x "$prefix/bin/$p" ] || { echo "not installed: bin/$p"; exit 1; }
  # Read whole before grep: grep -q would close the pipe at the first
  # match and, under pipefail, a long help's SIGPIPE would fail the check.
  help=$("$prefix/bin/$p" --help)
  grep -q '^SYNOPSIS' <<<"$help" ||
    { echo "bin/$p --help has no SYNOPSIS"; exit 1; }
done

# kited serves the arena page installed beside it (share/kite/web) with no
# option: GET / on its TCP port answers 200.
for f in index.html arena.js kite.js; do
  [ -f "$prefix/share/kite/web/$f" ] || { echo "not installed: share/kite/web/$f"; exit 1; }
done
"$prefix/bin/kited" --udp 127.0.0.1:0 --threads 1 --workers 1 >"$work/kited.out" 2>&1 &
kited_pid=$!
url=
for _ in $(seq 200); do
  url=$(sed -n 's|^arena in a browser: http://127.0.0.1:\([0-9]*\)/ (files from \(.*\))$|\1 \2|p' "$work/kited.out")
  [ -n "$url" ] && break
  sleep 0.05
done
read -r port webdir <<<"$url"
status=
if [ -n "$port" ]; then
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&3
  read -r -t 10 _ status _ <&3 || true
  exec 3<&-
fi
kill -TERM "$kited_pid"
wait "$kited_pid" || true
if [ "$webdir" != "$(cd "$prefix/share/kite/web" && pwd -P)" ] || [ "$status" != 200 ]; then
  echo "installed kited does not serve share/kite/web (dir '$webdir', GET / $status):"
  cat "$work/kited.out"
  exit 1
fi
echo "installed kited serves $webdir"

# The program must load libkite.so from the prefix.
loads_installed_lib() {
  local line
  line=$(ldd "$1" | grep 'libkite\.so') || { echo "$1 does not load libkite.so"; return 1; }
  echo "$line"
  case $line in
    *"=> $libdir/libkite.so."*) ;;
    *) echo "$1 loads a libkite.so outside $libdir"; return 1 ;;
  esac
}
no_shared_lib() {
  if ldd "$1" 2>/dev/null | grep -q 'libkite\.so'; then
    echo "$1 loads libkite.so, but was linked with libkite.a"
    return 1
  fi
}

step "pkg-config: shared library"
# shellcheck disable=SC2046 # pkg-config's output is words
$cc -o "$work/game_pc" "$here/game.c" $(pkg-config --cflags --libs kite) \
  -Wl,-rpath,"$libdir"
loads_installed_lib "$work/game_pc"
"$work/game_pc"

step "pkg-config --static: static library"
# libkite.a, then what kite.pc names for it, shared where Debian has no .a
# (wslay)
# shellcheck disable=SC2046
$cc -o "$work/game_pc_static" "$here/game.c" \
  -Wl,-Bstatic -lkite -Wl,-Bdynamic \
  $(pkg-config --static --cflags --libs kite) 2>"$work/static_link.log" ||
  { cat "$work/static_link.log"; exit 1; }
no_shared_lib "$work/game_pc_static"
"$work/game_pc_static"

step "find_package(kite): kite::kite and kite::kite_static"
cmake -S "$here" -B "$work/game_cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/game_cmake.log" ||
  { cat "$work/game_cmake.log"; exit 1; }
cmake --build "$work/game_cmake" >>"$work/game_cmake.log" ||
  { cat "$work/game_cmake.log"; exit 1; }
loads_installed_lib "$work/game_cmake/game"
"$work/game_cmake/game"
no_shared_lib "$work/game_cmake/game_static"
"$work/game_cmake/game_static"

step "add_subdirectory(kite): the library alone"
cmake -S "$here" -B "$work/game_sub" -DKITE_SOURCE_DIR="$src" \
  -DCMAKE_BUILD_TYPE=Release >"$work/game_sub.log" ||
  { cat "$work/game_sub.log"; exit 1; }
cmake --build "$work/game_sub" -j2 >>"$work/game_sub.log" ||
  { cat "$work/game_sub.log"; exit 1; }
extra=$(cd "$work/game_sub/kite" && find . -type f -perm -u+x -name 'kite*' ! -name 'libkite*')
[ -z "$extra" ] || { echo "the subproject built more than the library: $extra"; exit 1; }
[ ! -e "$work/game_sub/kite/tests" ] || { echo "the subproject configured kite's tests"; exit 1; }
"$work/game_sub/game"
"$work/game_sub/game_static"

echo "== kite built and ran the game four ways"
