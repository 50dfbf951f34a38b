/*
 * kite-cli --login URL: asks a login route (kited's POST /login,
 * docs/DEMO.md) for a connect token in exchange for a name.
 */
#ifndef KITE_CLI_LOGIN_H
#define KITE_CLI_LOGIN_H

#include "kite/token.h"

#include <stddef.h>
#include <stdint.h>

/* The most a login answer may be: a head and the 800-byte token. */
#define CLI_LOGIN_ANSWER_MAX 4096
#define CLI_LOGIN_TIMEOUT_MS 5000 /* connect, send and answer, together */

/* POSTs name=|name| (form-encoded) to |url| ("http://HOST:PORT/PATH";
 * HOST may be [v6]; no PATH: /login) and reads the token of a 200 into
 * |token|. Plain HTTP only: the demo's route (production logins are
 * HTTPS, the game's own). Returns 0, or -1 with why in |err| (|errcap|
 * bytes): a bad URL, no connection, a timeout, or a refusal (its status
 * and text). Blocks up to CLI_LOGIN_TIMEOUT_MS. */
int cli_login(const char *url, const char *name,
              uint8_t token[KITE_TOKEN_BYTES], char *err, size_t errcap);

#endif
