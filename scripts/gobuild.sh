#!/usr/bin/env bash
# Builds a Go program of kite's tree offline, in GOPATH mode, against
# Debian's Go packages (golang-github-xtaci-kcp-dev and its dependencies
# under /usr/share/gocode), with kite's own Go package tools/kitewire
# importable as "kite/kitewire". No network, no user config (HOME may be
# unset), the build cache in WORK. Used by CMake (bench/kcpgo_client) and
# by tests/e2e/run_kcpgo_e2e.sh.
#
# usage: scripts/gobuild.sh OUT SRC WORK   (SRC: a .go file or a directory)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 OUT SRC WORK" >&2; exit 2; }
mkdir -p "$3"
out=$(realpath -m "$1") src=$(realpath "$2") work=$(realpath "$3")
root=$(cd "$(dirname "$0")/.." && pwd)
command -v go > /dev/null ||
  { echo "gobuild: go is not installed (scripts/deps.sh: golang-go)" >&2; exit 1; }
[ -f /usr/share/gocode/src/github.com/xtaci/kcp-go/kcp.go ] ||
  { echo "gobuild: kcp-go missing (scripts/deps.sh: golang-github-xtaci-kcp-dev)" >&2; exit 1; }
mkdir -p "$work/gopath/src/kite"
ln -sfn "$root/tools/kitewire" "$work/gopath/src/kite/kitewire"
# a directory is built from inside (GOPATH mode refuses an absolute path)
if [ -d "$src" ]; then cd "$src"; src=.; fi
exec env GO111MODULE=off GOPATH="$work/gopath:/usr/share/gocode" GOCACHE="$work/gocache" \
  GOENV=off GOFLAGS= GOPROXY=off CGO_ENABLED=0 HOME="${HOME:-$work}" \
  go build -o "$out" "$src"
