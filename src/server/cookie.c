#include "server/cookie.h"

#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "kite/error.h"

#define MAC_BYTES 12 /* of SipHash-128's 16: 96 bits, as the contract says */
#define MSG_MAX (1 + 1 + 16 + 2 + 8 + 4)

/* crypto_kdf contexts are exactly 8 characters, no terminator needed. */
static const char kdf_context[crypto_kdf_CONTEXTBYTES] = {'k', 'i', 't', 'e',
                                                          'c', 'o', 'o', 'k'};

/* Builds the MAC input for |addr|; returns its length, or 0 for a family we
 * do not serve. The family byte keeps a 4-byte and a 16-byte address from
 * ever producing the same message. */
static size_t build_msg(uint8_t *m, uint8_t version,
                        const struct sockaddr *addr, const uint8_t nonce[8],
                        uint32_t ts) {
  uint8_t *p = m;
  *p++ = version;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
    *p++ = 4;
    memcpy(p, &a->sin_addr, 4);
    p += 4;
    memcpy(p, &a->sin_port, 2);
    p += 2;
  } else if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
    *p++ = 6;
    memcpy(p, &a->sin6_addr, 16);
    p += 16;
    memcpy(p, &a->sin6_port, 2);
    p += 2;
  } else {
    return 0;
  }
  memcpy(p, nonce, 8);
  p += 8;
  *p++ = (uint8_t)ts;
  *p++ = (uint8_t)(ts >> 8);
  *p++ = (uint8_t)(ts >> 16);
  *p++ = (uint8_t)(ts >> 24);
  return (size_t)(p - m);
}

static void derive(const kite__cookie_jar *j, uint32_t epoch,
                   uint8_t key[KITE__COOKIE_KEY_BYTES]) {
  /* Cannot fail: the subkey length is within the KDF's bounds. */
  crypto_kdf_derive_from_key(key, KITE__COOKIE_KEY_BYTES, epoch, kdf_context,
                             j->master);
}

/* Makes the cache hold the keys of |epoch| and |epoch| - 1. A step of one
 * epoch (the usual case) costs one derivation; any other change, including
 * a clock that went back, rederives both. */
static void refresh(kite__cookie_jar *j, uint32_t epoch) {
  if (j->have_keys && j->epoch == epoch)
    return;
  if (j->have_keys && epoch == j->epoch + 1) {
    memcpy(j->key_prev, j->key_cur, KITE__COOKIE_KEY_BYTES);
  } else if (epoch > 0) {
    derive(j, epoch - 1, j->key_prev);
  } else {
    memset(j->key_prev, 0, KITE__COOKIE_KEY_BYTES); /* no epoch -1 */
  }
  derive(j, epoch, j->key_cur);
  j->epoch = epoch;
  j->have_keys = true;
}

static void mac(const uint8_t key[KITE__COOKIE_KEY_BYTES], const uint8_t *m,
                size_t len, uint8_t out[crypto_shorthash_siphashx24_BYTES]) {
  crypto_shorthash_siphashx24(out, m, len, key);
}

int kite__cookie_master_new(uint8_t key[KITE__COOKIE_MASTER_BYTES]) {
  if (sodium_init() < 0) /* safe to repeat, from any thread */
    return KITE_ESYS;
  randombytes_buf(key, KITE__COOKIE_MASTER_BYTES);
  return 0;
}

int kite__cookie_jar_init(kite__cookie_jar *j,
                          const uint8_t master[KITE__COOKIE_MASTER_BYTES],
                          uint32_t lifetime_s) {
  if (lifetime_s == 0)
    return KITE_EINVAL;
  /* The KDF picks its BLAKE2b implementation in sodium_init(). */
  if (sodium_init() < 0)
    return KITE_ESYS;
  memset(j, 0, sizeof(*j));
  memcpy(j->master, master, KITE__COOKIE_MASTER_BYTES);
  j->lifetime_s = lifetime_s;
  return 0;
}

void kite__cookie_jar_clear(kite__cookie_jar *j) {
  sodium_memzero(j, sizeof(*j));
}

int kite__cookie_make(kite__cookie_jar *j, uint8_t version,
                      const struct sockaddr *addr, const uint8_t nonce[8],
                      uint32_t now_s, uint8_t out[KITE__COOKIE_BYTES]) {
  uint8_t m[MSG_MAX], h[crypto_shorthash_siphashx24_BYTES];
  size_t len = build_msg(m, version, addr, nonce, now_s);
  if (len == 0)
    return KITE_EINVAL;
  refresh(j, now_s / j->lifetime_s);
  mac(j->key_cur, m, len, h);
  out[0] = (uint8_t)now_s;
  out[1] = (uint8_t)(now_s >> 8);
  out[2] = (uint8_t)(now_s >> 16);
  out[3] = (uint8_t)(now_s >> 24);
  memcpy(out + 4, h, MAC_BYTES);
  return 0;
}

bool kite__cookie_check(kite__cookie_jar *j, uint8_t version,
                        const struct sockaddr *addr, const uint8_t nonce[8],
                        const uint8_t cookie[KITE__COOKIE_BYTES],
                        uint32_t now_s) {
  uint32_t ts = (uint32_t)cookie[0] | (uint32_t)cookie[1] << 8 |
                (uint32_t)cookie[2] << 16 | (uint32_t)cookie[3] << 24;
  /* Seconds in a u32 do not wrap for a century: plain 64-bit arithmetic. */
  int64_t age = (int64_t)now_s - (int64_t)ts;
  if (age < -KITE__COOKIE_FUTURE_S || age > (int64_t)j->lifetime_s)
    return false;

  uint8_t m[MSG_MAX], h[crypto_shorthash_siphashx24_BYTES];
  size_t len = build_msg(m, version, addr, nonce, ts);
  if (len == 0)
    return false;

  /* The age bound puts ts's epoch at now's, the one before, or (inside
   * the 1 s tolerance) the one after, which is derived on the spot rather
   * than cached: it is current soon enough. */
  uint32_t e = now_s / j->lifetime_s, ets = ts / j->lifetime_s;
  refresh(j, e);
  uint8_t next[KITE__COOKIE_KEY_BYTES];
  const uint8_t *key;
  if (ets == e) {
    key = j->key_cur;
  } else if (ets + 1 == e) {
    key = j->key_prev;
  } else {
    derive(j, ets, next);
    key = next;
  }
  mac(key, m, len, h);
  return sodium_memcmp(h, cookie + 4, MAC_BYTES) == 0;
}
