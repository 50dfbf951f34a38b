/*
 * Connect tokens for protocol version 2 (PROTOCOL-v2.md section 2): what
 * a game's backend hands a player after login, so the player can open an
 * authenticated, encrypted session with the servers the token names. The
 * backend and its servers share a 32-byte private key and a protocol id
 * (a number the game chooses); the player never sees the key.
 *
 *   uint8_t key[KITE_TOKEN_KEY_BYTES];       // shared with the servers
 *   kite_token_key_parse(key, getenv("GAME_TOKEN_KEY"));
 *   const char *servers[] = {"203.0.113.7:7001"};
 *   kite_token_params p = {.protocol_id = 0x47414d45, .client_id = player_id,
 *                          .ttl_s = 60, .addrs = servers, .naddrs = 1,
 *                          .user_data = name, .user_data_len = strlen(name)};
 *   uint8_t token[KITE_TOKEN_BYTES];
 *   if (kite_token_mint(token, key, &p) == 0)
 *     ... send |token| to the player over the login's HTTPS answer ...
 *
 * Needs no server: a backend links kite for this alone. Every function
 * here works on its arguments only: any thread, no allocation, nothing
 * kept (the key is read, never copied).
 */
#ifndef KITE_TOKEN_H
#define KITE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "kite/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KITE_TOKEN_BYTES 800         /* a token, as the player receives it */
#define KITE_TOKEN_KEY_BYTES 32      /* the private key */
#define KITE_TOKEN_ADDRS_MAX 8       /* servers one token names */
#define KITE_TOKEN_USER_DATA_MAX 256 /* login payload, given to on_connect */
#define KITE_TOKEN_TTL_MAX 300       /* seconds a token may live */

typedef struct kite_token_params {
  uint64_t protocol_id;     /* the game's; servers refuse any other */
  uint64_t client_id;       /* the backend's id for the player (opaque to kite) */
  uint32_t ttl_s;           /* the token expires this long after now: 1..300 */
  uint32_t timeout_s;       /* the session's idle timeout; 0: the server's own */
  const char *const *addrs; /* "HOST:PORT" of each server it is valid at, in
                               the order the player tries them ("1.2.3.4:7001",
                               "[2001:db8::1]:7001"; a name is resolved now,
                               its first address taken) */
  size_t naddrs;            /* 1..KITE_TOKEN_ADDRS_MAX */
  const void *user_data;    /* may be NULL when user_data_len is 0 */
  size_t user_data_len;     /* 0..KITE_TOKEN_USER_DATA_MAX. The length
                               is not carried: the server sees the
                               payload zero-padded to 256 bytes
                               (kite_session_info.user_data), so one
                               that may end in zero bytes carries its
                               own length */
  uint64_t now_s;           /* creation time, Unix seconds; 0: the clock's */
} kite_token_params;

/* Mints a token into |out| (KITE_TOKEN_BYTES), sealed under |key|, with
 * fresh random session keys inside. Returns 0, or KITE_EINVAL (nothing
 * written: ttl_s out of 1..300, naddrs out of 1..8, an address that does
 * not parse or resolve, has port 0 or is a wildcard (0.0.0.0, ::),
 * user_data_len over 256, a NULL argument), or
 * KITE_ESYS (libsodium could not initialise). Any thread. */
KITE_API
int kite_token_mint(uint8_t out[KITE_TOKEN_BYTES],
                    const uint8_t key[KITE_TOKEN_KEY_BYTES],
                    const kite_token_params *p);

/* A new random private key (libsodium's generator), for a game's setup.
 * Returns 0 or KITE_ESYS. Any thread. */
KITE_API
int kite_token_key_new(uint8_t key[KITE_TOKEN_KEY_BYTES]);

/* Reads a key written as 64 hexadecimal characters (surrounding white
 * space allowed, nothing else), the form kited, kite-echo and kite-token
 * take it in. Returns 0, or KITE_EINVAL (|key| then zeroed). Any thread. */
KITE_API
int kite_token_key_parse(uint8_t key[KITE_TOKEN_KEY_BYTES], const char *hex);

#ifdef __cplusplus
}
#endif
#endif
