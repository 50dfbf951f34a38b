/*
 * The client side of a WebSocket opening handshake (RFC 6455 section 4.1)
 * for kite-bench --ws (load_ws.c): a random Sec-WebSocket-Key, the GET that
 * asks for the upgrade, and the check of the server's answer, whose
 * Sec-WebSocket-Accept is computed here with nettle's SHA-1 and base64, on
 * its own rather than with the server's code, so that a server that gets
 * it wrong fails the run. Random bytes (keys and frame masks) come from the
 * kernel (getrandom), a block at a time.
 *
 * Not thread-safe: the pool and everything here belong to the load's one
 * thread.
 */
#ifndef KITE_BENCH_WS_HS_H
#define KITE_BENCH_WS_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Random bytes from getrandom(), refilled a block at a time. */
typedef struct ws_random {
  uint8_t buf[4096];
  size_t off; /* bytes of buf used; sizeof(buf): empty */
} ws_random;

void ws_random_init(ws_random *r);
/* Fills |out| with |len| (at most 4096) random bytes: 0, or -1 when the
 * kernel gave none. */
int ws_random_fill(ws_random *r, uint8_t *out, size_t len);

/* The Sec-WebSocket-Accept for |key| (RFC 6455 section 4.2.2: base64 of
 * the SHA-1 of the key and the GUID), 28 characters and a NUL. */
void ws_hs_accept(const char *key, char accept[29]);

/* A Sec-WebSocket-Key (base64 of 16 random bytes, 24 characters and a NUL)
 * into |key|, and the Sec-WebSocket-Accept a server must answer it with
 * (28 characters and a NUL) into |accept|. 0, or -1 (no random bytes). */
int ws_hs_key(ws_random *r, char key[25], char accept[29]);

/* The upgrade request for |path| on |host| with |key|, into |out| (|cap|
 * bytes). Returns its length, or -1 when it does not fit. */
int ws_hs_request(char *out, size_t cap, const char *host, const char *path,
                  const char *key);

/* Where the response head in the |len| bytes at |p| ends (the offset after
 * its blank line), or 0 while it has not ended. */
size_t ws_hs_head_end(const uint8_t *p, size_t len);

/* Checks a whole response head (|len| bytes, ending in its blank line):
 * status 101, Upgrade: websocket, and Sec-WebSocket-Accept equal to
 * |accept|. NULL when it is right, else a static reason. */
const char *ws_hs_check(const uint8_t *p, size_t len, const char *accept);

#endif
