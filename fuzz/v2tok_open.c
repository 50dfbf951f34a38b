/*
 * libFuzzer target: connect tokens (proto/v2tok.h), both readers.
 *
 * A random input never opens under a key it was not sealed with, so the
 * server's checks behind the seal are reached by sealing the input here:
 *   - the input's first 800 bytes (zero-padded) as a public part, through
 *     kite__v2tok_read(): 0 only for a well-formed part, whose fields then
 *     satisfy the client's rules;
 *   - its first 496 bytes as a private part, sealed under a fixed key,
 *     through kite__v2tok_open() and kite__v2tok_verify(): never EAUTH,
 *     0 only for a well-formed part (fields checked against the bytes),
 *     verify's steps in the contract's order with the clock, expire_ts and
 *     address taken from the input;
 *   - the raw input as a sealed part: never opens.
 * Every refusal leaves the output struct all zero.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "proto/v2.h"
#include "proto/v2tok.h"

static const uint8_t key[32] = {0x6B, 0x69, 0x74, 0x65, 0x32};
static const uint8_t nonce[24] = {0x40, 0x41, 0x42};

static void check_zero(const kite__v2tok *t) {
  static const kite__v2tok zero;
  if (memcmp(t, &zero, sizeof(*t)) != 0)
    abort();
}

static void check_rules(const kite__v2tok *t) {
  if (t->addr_count < 1 || t->addr_count > 8)
    abort();
  for (int i = 0; i < t->addr_count; i++)
    if (t->addrs[i].type != 1 && t->addrs[i].type != 2)
      abort();
}

static void public_part(const uint8_t *data, size_t size) {
  uint8_t pub[KITE__V2TOK_PUBLIC] = {0};
  memcpy(pub, data, size < sizeof(pub) ? size : sizeof(pub));
  kite__v2tok t;
  int rc = kite__v2tok_read(pub, sizeof(pub), &t);
  if (rc != 0) {
    if (rc != KITE__V2_EMAGIC && rc != KITE__V2_EVERSION &&
        rc != KITE__V2_EFORM)
      abort();
    check_zero(&t);
    return;
  }
  check_rules(&t);
  if (t.create_ts >= t.expire_ts || memcmp(pub, "KTOK\2\0\0\0", 8) != 0 ||
      memcmp(t.sealed, pub + 288, 512) != 0)
    abort();
  if (kite__v2tok_read(pub, size, &t) != (size == 800 ? 0 : KITE__V2_ESIZE))
    abort();
}

static void private_part(const uint8_t *data, size_t size) {
  uint8_t priv[KITE__V2TOK_PRIVATE] = {0}, sealed[KITE__V2TOK_SEALED];
  memcpy(priv, data, size < sizeof(priv) ? size : sizeof(priv));
  uint8_t tail[8 + 8 + 1 + 20] = {0}; /* now, expire_ts, flags, address */
  if (size > sizeof(priv))
    memcpy(tail, data + sizeof(priv),
           size - sizeof(priv) < sizeof(tail) ? size - sizeof(priv)
                                              : sizeof(tail));
  uint64_t now = kite__get_le64(tail);
  uint64_t expire = kite__get_le64(tail + 8);
  uint64_t pid = 0x1122334455667788u;
  uint8_t aad[KITE__V2TOK_AAD];
  kite__v2tok_aad(aad, pid, expire);
  crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, NULL, priv, sizeof(priv),
                                             aad, sizeof(aad), NULL, nonce,
                                             key);
  kite__v2tok t;
  int rc = kite__v2tok_open(key, pid, expire, nonce, sealed, &t);
  if (rc == 0) {
    check_rules(&t);
    if (t.client_id != kite__get_le64(priv) ||
        t.timeout_s != kite__get_le32(priv + 8) || t.addr_count != priv[12] ||
        memcmp(t.c2s_key, priv + 176, 32) != 0 ||
        memcmp(t.user_data, priv + 240, 256) != 0)
      abort();
  } else if (rc == KITE__V2_EFORM) {
    check_zero(&t);
  } else {
    abort();
  }
  bool well_formed = rc == 0;

  /* The server's steps, in order, at an address from the input or the
   * token's first one. */
  kite__v2addr local;
  memset(&local, 0, sizeof(local));
  local.type = tail[16] & 1 ? 1 : 2;
  local.port = kite__get_le16(tail + 17);
  memcpy(local.addr, tail + 19, tail[16] & 1 ? 4 : 16);
  if ((tail[16] & 2) && well_formed)
    local = t.addrs[0];
  kite__v2tok_server s = {.protocol_id = pid, .key = key};
  kite__v2tok v;
  int vr = kite__v2tok_verify(&s, now, &local, expire, nonce, sealed, &v);
  if (kite__v2tok_check_time(expire, now) != 0) {
    if (vr != KITE__V2_EEXPIRED)
      abort();
  } else if (!well_formed) {
    if (vr != KITE__V2_EFORM)
      abort();
  } else if (vr != (kite__v2tok_lists(&t, &local) ? 0 : KITE__V2_ENOTHERE)) {
    abort();
  }
  if (vr != 0)
    check_zero(&v);
  if (kite__v2tok_reject_reason(vr) == 0 && vr != 0)
    abort();
  kite__v2tok_wipe(&t);
  kite__v2tok_wipe(&v);

  /* The raw bytes as a sealed part: a forgery. */
  if (size >= KITE__V2TOK_SEALED &&
      kite__v2tok_open(key, pid, expire, nonce, data, &t) != KITE__V2_EAUTH)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (kite__v2_init() != 0)
    abort();
  public_part(data, size);
  private_part(data, size);
  return 0;
}
