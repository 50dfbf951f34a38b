#include "proto/v2rec.h"

#include "base/le.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "proto/v2pkt.h"

#define BUF_BYTES (KITE__V2REC_OVERHEAD + KITE__V2REC_MAX)

int kite__v2rec_seal(uint8_t *out, size_t cap, uint64_t rn,
                     const uint8_t key[KITE__V2_KEY], const uint8_t *pt,
                     size_t len) {
  if (len == 0 || len > KITE__V2REC_MAX)
    return KITE_EINVAL;
  if (rn >= KITE__V2_PN_LIMIT)
    return KITE__V2_ELIMIT;
  if (cap < KITE__V2REC_OVERHEAD + len)
    return KITE_EMSGSIZE;
  uint8_t nonce[KITE__V2_NONCE];
  kite__v2pkt_nonce(nonce, KITE__V2_NP_RECORD, rn);
  /* In place (pt == out + 2): the len is written before the seal reads
   * nothing but pt, so the order is safe. */
  kite__put_le16(out, (uint16_t)len);
  crypto_aead_chacha20poly1305_ietf_encrypt(out + KITE__V2REC_HDR, NULL, pt,
                                            len, out, KITE__V2REC_HDR, NULL,
                                            nonce, key);
  return (int)(KITE__V2REC_OVERHEAD + len);
}

int kite__v2rec_reader_init(kite__v2rec_reader *r,
                            const uint8_t key[KITE__V2_KEY]) {
  memset(r, 0, sizeof(*r));
  r->buf = malloc(BUF_BYTES);
  if (r->buf == NULL)
    return KITE_ENOMEM;
  memcpy(r->key, key, KITE__V2_KEY);
  r->need = KITE__V2REC_HDR;
  return 0;
}

void kite__v2rec_reader_free(kite__v2rec_reader *r) {
  if (r->buf != NULL) {
    sodium_memzero(r->buf, BUF_BYTES);
    free(r->buf);
  }
  sodium_memzero(r, sizeof(*r));
}

ptrdiff_t kite__v2rec_read(kite__v2rec_reader *r, const uint8_t *in,
                           size_t len, const uint8_t **pt, size_t *pt_len) {
  *pt = NULL;
  *pt_len = 0;
  if (r->err != 0)
    return r->err;
  size_t used = 0;
  for (;;) {
    size_t take = r->need - r->have;
    if (take > len - used)
      take = len - used;
    if (take > 0)
      memcpy(r->buf + r->have, in + used, take);
    r->have += take;
    used += take;
    if (r->have < r->need)
      return (ptrdiff_t)used; /* all consumed, the record goes on */
    if (r->need == KITE__V2REC_HDR) {
      size_t plen = kite__get_le16(r->buf);
      if (plen == 0 || plen > KITE__V2REC_MAX)
        return r->err = KITE__V2_EPROTO;
      r->need = KITE__V2REC_OVERHEAD + plen;
      continue;
    }
    if (r->next >= KITE__V2_PN_LIMIT)
      return r->err = KITE__V2_ELIMIT;
    uint8_t nonce[KITE__V2_NONCE];
    kite__v2pkt_nonce(nonce, KITE__V2_NP_RECORD, r->next);
    size_t plen = r->need - KITE__V2REC_OVERHEAD;
    /* Opened in place, after the len: the plaintext stays in buf. */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(
            r->buf + KITE__V2REC_HDR, NULL, NULL, r->buf + KITE__V2REC_HDR,
            plen + KITE__V2_TAG, r->buf, KITE__V2REC_HDR, nonce, r->key) != 0)
      return r->err = KITE__V2_EAUTH;
    r->next++;
    r->have = 0;
    r->need = KITE__V2REC_HDR;
    *pt = r->buf + KITE__V2REC_HDR;
    *pt_len = plen;
    return (ptrdiff_t)used;
  }
}

size_t kite__v2rec_buffered(const kite__v2rec_reader *r) {
  return r->have;
}

int kite__v2_frame_check(const kite__frame_hdr *h, uint16_t max_unreliable) {
  if ((h->flags & KITE__FRAME_F_UNRELIABLE) && h->len > max_unreliable)
    return KITE__V2_EPROTO;
  return 0;
}

uint8_t kite__v2_close_frame_reason(const uint8_t *body, size_t len) {
  return len >= 1 && body[0] <= KITE__CLOSE_MAX ? body[0] : 0;
}
