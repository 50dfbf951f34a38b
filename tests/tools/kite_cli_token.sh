#!/usr/bin/env bash
# kite-cli --token: the token file kite-token writes, raw and as hex, is
# taken (the client starts connecting to the token's server); anything
# else is a usage error. No server: the end of input ends each run at once.
# Usage: kite_cli_token.sh KITE_TOKEN_BINARY KITE_CLI_BINARY
set -u
tok=$1 cli=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$tok" --new-key > "$dir/key" || fail "--new-key exited $?"
"$tok" --key-file "$dir/key" --protocol-id 7 --addr 127.0.0.1:9 > "$dir/raw" ||
  fail "mint raw exited $?"
"$tok" --key-file "$dir/key" --protocol-id 7 --addr 127.0.0.1:9 --hex > "$dir/hex" ||
  fail "mint hex exited $?"

for f in raw hex; do
  out=$(timeout 20 "$cli" --name alice --token "$dir/$f" < /dev/null 2>&1)
  rc=$?
  [ $rc -eq 1 ] || fail "$f token: exit $rc, want 1 (never connected): $out"
  [[ $out == *"connecting to the token's servers (protocol 2)"* ]] ||
    fail "$f token: no connecting line: $out"
done

head -c 799 "$dir/raw" > "$dir/short"
printf 'not a token\n' > "$dir/text"
for f in short text missing; do
  timeout 20 "$cli" --name alice --token "$dir/$f" < /dev/null > /dev/null 2>&1
  rc=$?
  [ $rc -eq 2 ] || fail "$f token file: exit $rc, want 2"
done
echo "kite-cli --token: all checks passed"
