#!/usr/bin/env bash
# libkite.so exports exactly kite's public API: every function a public
# header declares (each marked KITE_API), and no other name; internal
# kite__* functions and anything else stay hidden (-fvisibility=hidden).
# Usage: check_symbols.sh LIBKITE_SO INCLUDE_DIR
set -euo pipefail
lib=$1 inc=$2

exported=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
# Declarations start at column 0 in the headers: "int kite_x(", "void *kite_y(".
# cluster.h is libkite_cluster's (docs/CLUSTER.md), not libkite's.
headers=$(ls "$inc"/*.h | grep -v '/cluster\.h$')
declared=$(grep -hE '^[A-Za-z].*\bkite_[a-z0-9_]+\(' $headers | grep -v '^typedef' |
           sed -E 's/^[^(]*\b(kite_[a-z0-9_]+)\(.*/\1/' | sort -u)

fail=0
[ -n "$exported" ] || { echo "no dynamic symbols in $lib"; exit 1; }
[ -n "$declared" ] || { echo "no declarations found in $inc"; exit 1; }
for s in $exported; do
  if [[ ! $s =~ ^kite_[a-z0-9_]+$ || $s == kite__* ]]; then
    echo "exported but not kite's public API: $s"
    fail=1
  elif ! grep -qx "$s" <<<"$declared"; then
    echo "exported but declared in no public header: $s"
    fail=1
  fi
done
for s in $declared; do
  grep -qx "$s" <<<"$exported" || { echo "declared but not exported (no KITE_API?): $s"; fail=1; }
done
echo "$(wc -l <<<"$exported") symbols exported, $(wc -l <<<"$declared") declared"
exit $fail
