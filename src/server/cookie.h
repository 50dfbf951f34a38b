/*
 * The stateless handshake cookie (PROTOCOL.md section 2, step 2): what lets
 * the server answer HELLO with CHALLENGE and keep nothing, then believe a
 * CONNECT only from a client that really received that CHALLENGE at its
 * address.
 *
 *   cookie[16] = ts u32 LE || first 12 bytes of SipHash-128(key_e, msg)
 *   msg        = version u8 (the handshake's: 1 or 2, so a cookie of one
 *                version fails the other's CONNECT), family u8 (4 or 6), address (4 or 16 bytes),
 *                port (2 bytes, network order as in the sockaddr),
 *                nonce[8], ts u32 LE
 *   key_e      = crypto_kdf_derive_from_key(16 bytes, e, "kitecook", master)
 *   e          = ts / lifetime_s  (the epoch)
 *
 * ts is the server's coarse clock in seconds (any clock that all jars of a
 * server share: the cookie is opaque to the client and checked only by the
 * server that made it). The secret rotates every lifetime_s seconds; since
 * the key derives from the epoch, the epoch of a cookie is read from its ts
 * and no key needs to be remembered beyond a cache. A cookie is valid when
 *   - its age now - ts is in [-1, lifetime_s]: 1 s in the future is
 *     tolerated because shard threads read the coarse clock at slightly
 *     different moments;
 *   - the 12 MAC bytes match under the key of ts's epoch, compared in
 *     constant time. With the period equal to the lifetime, that epoch is
 *     the current or the previous one (or, for that 1 s, the next), so
 *     "current and previous secret accepted" holds by construction.
 * Any change of version, address, family, port, nonce or ts invalidates it. An
 * IPv4-mapped IPv6 address is an IPv6 address here and does not match the
 * plain IPv4 one: a socket sees a given client always the same way.
 *
 * Threads: a jar belongs to one thread (it caches keys). Every shard holds
 * its own jar made from the same master key, so a cookie made by one shard
 * checks on any other with no shared mutable state. Nothing allocates.
 */
#ifndef KITE_SERVER_COOKIE_H
#define KITE_SERVER_COOKIE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define KITE__COOKIE_BYTES 16
#define KITE__COOKIE_MASTER_BYTES 32
#define KITE__COOKIE_KEY_BYTES 16
#define KITE__COOKIE_LIFETIME_S 10 /* the default: outlasts 8 x 250 ms */
#define KITE__COOKIE_FUTURE_S 1    /* ts this far ahead of now is accepted */

/* Fields are private; public only so that a shard can embed its jar. */
typedef struct kite__cookie_jar {
  uint8_t master[KITE__COOKIE_MASTER_BYTES];
  uint32_t lifetime_s; /* also the rotation period */
  uint32_t epoch;      /* of key_cur, when have_keys */
  uint8_t key_cur[KITE__COOKIE_KEY_BYTES];  /* epoch */
  uint8_t key_prev[KITE__COOKIE_KEY_BYTES]; /* epoch - 1 (unused at 0) */
  bool have_keys;
} kite__cookie_jar;

/* Fills |key| with a fresh random master key (libsodium's randombytes_buf,
 * initialising libsodium first). Returns 0, or KITE_ESYS when libsodium
 * cannot initialise (no entropy source). Thread-safe. The server makes one
 * at start and hands a copy to each shard's jar. */
int kite__cookie_master_new(uint8_t key[KITE__COOKIE_MASTER_BYTES]);

/* Prepares |j| with a copy of |master| and cookies that live |lifetime_s|
 * seconds (KITE__COOKIE_LIFETIME_S by default). Derives no key yet.
 * Returns 0, KITE_EINVAL when |lifetime_s| is 0, or KITE_ESYS when
 * libsodium cannot initialise. */
int kite__cookie_jar_init(kite__cookie_jar *j,
                          const uint8_t master[KITE__COOKIE_MASTER_BYTES],
                          uint32_t lifetime_s);

/* Wipes the secrets in |j| (sodium_memzero); |j| is unusable until _init. */
void kite__cookie_jar_clear(kite__cookie_jar *j);

/* Writes to |out| the cookie for a client at |addr| (a sockaddr_in or
 * sockaddr_in6) that sent a HELLO of |version| with |nonce|, stamped
 * |now_s|. Returns 0, or KITE_EINVAL (|out| untouched) for any other
 * address family. */
int kite__cookie_make(kite__cookie_jar *j, uint8_t version,
                      const struct sockaddr *addr, const uint8_t nonce[8],
                      uint32_t now_s, uint8_t out[KITE__COOKIE_BYTES]);

/* true when |cookie| is one this jar's master made for |version|, |addr|
 * and |nonce| and is not stale at |now_s| (see the top of this file). false for any
 * family but AF_INET and AF_INET6. Costs one SipHash; a key derivation
 * (one BLAKE2b) only when the epoch of |now_s| changed since the last call,
 * or for a cookie from the next epoch (the 1 s tolerance). */
bool kite__cookie_check(kite__cookie_jar *j, uint8_t version,
                        const struct sockaddr *addr, const uint8_t nonce[8],
                        const uint8_t cookie[KITE__COOKIE_BYTES],
                        uint32_t now_s);

#endif
