#!/usr/bin/env bash
# kite-token from the command line: a key, a token in hex and raw, the
# refusals and their exit codes. Usage: kite_token.sh KITE_TOKEN_BINARY
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" --new-key > "$dir/key" || fail "--new-key exited $?"
key=$(cat "$dir/key")
[[ $key =~ ^[0-9a-f]{64}$ ]] || fail "--new-key printed '$key'"
[ "$("$bin" --new-key)" != "$key" ] || fail "two keys were the same"

hex=$("$bin" --key-file "$dir/key" --protocol-id 0x4741 --addr 127.0.0.1:7001 \
        --addr '[::1]:7001' --client-id 7 --ttl 30 --user-data alice --hex) ||
  fail "mint --hex exited $?"
[ ${#hex} -eq 1600 ] || fail "hex token of ${#hex} characters, want 1600"
[[ $hex == 4b544f4b* ]] || fail "hex token does not start with KTOK"
[[ $hex != *"$key"* ]] || fail "the key appears in the token"

GAME_KEY=$key "$bin" --key-env GAME_KEY --protocol-id 17 --addr 127.0.0.1:7001 \
  > "$dir/tok" || fail "mint raw exited $?"
[ "$(stat -c %s "$dir/tok")" -eq 800 ] || fail "raw token not 800 bytes"

"$bin" --key-file "$dir/key" --protocol-id 1 --addr 127.0.0.1:7001 --ttl 301 \
  > /dev/null 2>&1
[ $? -eq 1 ] || fail "--ttl 301 was not refused with exit 1"
"$bin" --key-file "$dir/key" --protocol-id 1 --addr 0.0.0.0:7001 > /dev/null 2>&1
[ $? -eq 1 ] || fail "a wildcard address was not refused with exit 1"
echo 1234 > "$dir/short"
"$bin" --key-file "$dir/short" --protocol-id 1 --addr 127.0.0.1:7001 > /dev/null 2>&1
[ $? -eq 1 ] || fail "a short key was not refused with exit 1"
"$bin" --protocol-id 1 --addr 127.0.0.1:7001 > /dev/null 2>&1
[ $? -eq 2 ] || fail "no key was not a usage error"
grep -q "^SYNOPSIS" <<<"$("$bin" --help)" || fail "--help has no SYNOPSIS"
echo "kite-token: all checks passed"
