#include "proto/v2pkt.h"

#include "base/le.h"

#include <sodium.h>
#include <string.h>

#include "kite/error.h"

int kite__v2pkt_peek(const uint8_t *p, size_t len, uint32_t *conv,
                     uint64_t *pn) {
  *conv = 0;
  *pn = 0;
  if (len < KITE__V2PKT_MIN)
    return KITE__V2_ESIZE;
  *conv = kite__get_le32(p);
  *pn = kite__get_le64(p + 4);
  return *pn >= KITE__V2_PN_LIMIT ? KITE__V2_ELIMIT : 0;
}

void kite__v2pkt_nonce(uint8_t out[KITE__V2_NONCE], uint32_t prefix,
                       uint64_t n) {
  kite__put_le32(out, prefix);
  kite__put_le64(out + 4, n);
}

int kite__v2pkt_seal(uint8_t *out, size_t cap, uint32_t conv, uint64_t pn,
                     const uint8_t key[KITE__V2_KEY], const uint8_t *items,
                     size_t len) {
  if (len < KITE__V2PKT_ITEMS_MIN)
    return KITE_EINVAL;
  if (pn >= KITE__V2_PN_LIMIT)
    return KITE__V2_ELIMIT;
  if (cap < KITE__V2PKT_OVERHEAD || len > cap - KITE__V2PKT_OVERHEAD ||
      len > (size_t)INT32_MAX - KITE__V2PKT_OVERHEAD)
    return KITE_EMSGSIZE;
  uint8_t nonce[KITE__V2_NONCE];
  kite__v2pkt_nonce(nonce, KITE__V2_NP_DATAGRAM, pn);
  kite__put_le32(out, conv);
  kite__put_le64(out + 4, pn);
  crypto_aead_chacha20poly1305_ietf_encrypt(out + KITE__V2PKT_HDR, NULL, items,
                                            len, out, KITE__V2PKT_HDR, NULL,
                                            nonce, key);
  return (int)(len + KITE__V2PKT_OVERHEAD);
}

int kite__v2pkt_open(uint8_t *items, const uint8_t *p, size_t len,
                     const uint8_t key[KITE__V2_KEY]) {
  if (len < KITE__V2PKT_MIN || len > (size_t)INT32_MAX)
    return KITE__V2_ESIZE;
  uint8_t nonce[KITE__V2_NONCE];
  kite__v2pkt_nonce(nonce, KITE__V2_NP_DATAGRAM, kite__get_le64(p + 4));
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          items, NULL, NULL, p + KITE__V2PKT_HDR, len - KITE__V2PKT_HDR, p,
          KITE__V2PKT_HDR, nonce, key) != 0)
    return KITE__V2_EAUTH;
  return (int)(len - KITE__V2PKT_OVERHEAD);
}

int kite__v2pn_take(kite__v2pn *s, uint64_t *n) {
  if (s->next >= KITE__V2_PN_LIMIT)
    return KITE__V2_ELIMIT;
  *n = s->next++;
  return *n >= KITE__V2_PN_CLOSING ? KITE__V2PN_CLOSING : KITE__V2PN_OK;
}
