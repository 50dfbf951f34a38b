#!/usr/bin/env bash
# Builds kite and installs it under PREFIX: libkite.so and libkite.a, the
# headers (include/kite/), kite.pc, the CMake package (lib/cmake/kite/) and
# the programs (kited, kite-echo, kite-cli, kite-bench, kite-chaos, kite-lobby).
# Installs the few Debian packages the build needs first (scripts/deps.sh).
# Usage: scripts/install.sh PREFIX [cmake options...]
#   scripts/install.sh "$HOME/.local"
#   scripts/install.sh /usr/local -DKITE_PROGRAMS=OFF   (the library alone)
# Then: cc game.c $(pkg-config --cflags --libs kite)   (docs/INSTALL.md)
set -euo pipefail
if [ $# -lt 1 ] || [[ $1 == -* ]]; then
  sed -n '2,9s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
prefix=$(realpath -m "$1")
shift
cd "$(dirname "$0")/.."

./scripts/deps.sh build-essential cmake pkg-config libsodium-dev zlib1g-dev nettle-dev libwslay-dev libhiredis-dev

dir=build/install
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DKITE_TESTS=OFF -DKITE_BENCH=OFF "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null

sudo=""
mkdir -p "$prefix" 2>/dev/null || true
if [ ! -w "$prefix" ] && [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo cmake --install "$dir"

libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$dir/CMakeCache.txt")
[[ $libdir == /* ]] || libdir=$prefix/$libdir
searched() { # does the loader look in $1 by itself?
  [[ $1 == /usr/lib || $1 == /lib ]] || grep -qsx "$1" /etc/ld.so.conf /etc/ld.so.conf.d/*.conf
}
# A directory the loader searches (/usr/local/lib) needs its cache refreshed.
if searched "$libdir" && command -v ldconfig >/dev/null; then
  $sudo ldconfig
fi
cat <<MSG
kite $(sed -n 's/^Version: //p' "$libdir/pkgconfig/kite.pc") installed under $prefix. To build a game:
  export PKG_CONFIG_PATH=$libdir/pkgconfig\${PKG_CONFIG_PATH:+:\$PKG_CONFIG_PATH}
  cc game.c \$(pkg-config --cflags --libs kite)
MSG
if ! searched "$libdir"; then
  echo "and to run it (the loader does not search $libdir):"
  echo "  LD_LIBRARY_PATH=$libdir ./a.out    or link with -Wl,-rpath,$libdir"
fi
