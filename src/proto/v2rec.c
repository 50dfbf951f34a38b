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
  memcpy(r->key, key, KITE__V2_KEY);
  r->need = KITE__V2REC_HDR;
  return 0;
}

void kite__v2rec_reader_free(kite__v2rec_reader *r) {
  if (r->buf != NULL) {
    sodium_memzero(r->buf, r->cap);
    free(r->buf);
  }
  sodium_memzero(r, sizeof(*r));
}

/* r->buf holds at least |need| bytes (18 + len): grown to a power of two
 * (at least 64, at most BUF_BYTES), so a connection reallocates at most a
 * few times in its life. 0 or KITE_ENOMEM (sticky). */
static int reserve(kite__v2rec_reader *r, size_t need) {
  if (r->cap >= need)
    return 0;
  size_t cap = 64;
  while (cap < need)
    cap *= 2;
  if (cap > BUF_BYTES)
    cap = BUF_BYTES;
  uint8_t *b = malloc(cap);
  if (b == NULL)
    return r->err = KITE_ENOMEM;
  if (r->buf != NULL) { /* held nothing worth keeping: between records */
    sodium_memzero(r->buf, r->cap);
    free(r->buf);
  }
  r->buf = b;
  r->cap = (uint32_t)cap;
  return 0;
}

/* Opens the record at |rec| (len, ciphertext, tag: |plen| plaintext
 * bytes) into |dst| (|rec| + 2, in place, or not overlapping). */
static int open_record(kite__v2rec_reader *r, const uint8_t *rec, size_t plen,
                       uint8_t *dst, const uint8_t **pt, size_t *pt_len) {
  if (r->next >= KITE__V2_PN_LIMIT)
    return r->err = KITE__V2_ELIMIT;
  uint8_t nonce[KITE__V2_NONCE];
  kite__v2pkt_nonce(nonce, KITE__V2_NP_RECORD, r->next);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          dst, NULL, NULL, rec + KITE__V2REC_HDR, plen + KITE__V2_TAG, rec,
          KITE__V2REC_HDR, nonce, r->key) != 0)
    return r->err = KITE__V2_EAUTH;
  r->next++;
  *pt = dst;
  *pt_len = plen;
  return 0;
}

ptrdiff_t kite__v2rec_read_to(kite__v2rec_reader *r, const uint8_t *in,
                              size_t len, uint8_t *out, const uint8_t **pt,
                              size_t *pt_len) {
  *pt = NULL;
  *pt_len = 0;
  if (r->err != 0)
    return r->err;
  if (r->have == 0 && len >= KITE__V2REC_HDR) {
    /* A record starts here: whole, it is opened from |in| as it lies. */
    size_t plen = kite__get_le16(in);
    if (plen == 0 || plen > KITE__V2REC_MAX)
      return r->err = KITE__V2_EPROTO;
    size_t need = KITE__V2REC_OVERHEAD + plen;
    if (len >= need) {
      if (out == NULL) {
        if (reserve(r, need) < 0)
          return r->err;
        out = r->buf + KITE__V2REC_HDR;
      }
      if (open_record(r, in, plen, out, pt, pt_len) < 0)
        return r->err;
      return (ptrdiff_t)need;
    }
  }
  /* It spans calls: its len through hdr, then the record through buf. */
  size_t used = 0;
  while (r->have < KITE__V2REC_HDR) {
    if (used == len)
      return (ptrdiff_t)used;
    r->hdr[r->have++] = in[used++];
  }
  if (r->need == KITE__V2REC_HDR) {
    size_t plen = kite__get_le16(r->hdr);
    if (plen == 0 || plen > KITE__V2REC_MAX)
      return r->err = KITE__V2_EPROTO;
    if (reserve(r, KITE__V2REC_OVERHEAD + plen) < 0)
      return r->err;
    r->need = (uint32_t)(KITE__V2REC_OVERHEAD + plen);
    memcpy(r->buf, r->hdr, KITE__V2REC_HDR);
  }
  size_t take = r->need - r->have;
  if (take > len - used)
    take = len - used;
  if (take > 0)
    memcpy(r->buf + r->have, in + used, take);
  r->have += (uint32_t)take;
  used += take;
  if (r->have < r->need)
    return (ptrdiff_t)used; /* all consumed, the record goes on */
  size_t plen = r->need - KITE__V2REC_OVERHEAD;
  r->have = 0;
  r->need = KITE__V2REC_HDR;
  /* Opened in place, after the len: the plaintext stays in buf. */
  if (open_record(r, r->buf, plen, r->buf + KITE__V2REC_HDR, pt, pt_len) < 0)
    return r->err;
  return (ptrdiff_t)used;
}

ptrdiff_t kite__v2rec_read(kite__v2rec_reader *r, const uint8_t *in,
                           size_t len, const uint8_t **pt, size_t *pt_len) {
  return kite__v2rec_read_to(r, in, len, NULL, pt, pt_len);
}

size_t kite__v2rec_reader_cap(const kite__v2rec_reader *r) {
  return r->cap;
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
