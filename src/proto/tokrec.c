#include "proto/tokrec.h"

#include "base/le.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"

static size_t home(const kite__tokrec *r, const uint8_t tag[KITE__V2TOK_TAG]) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, tag, KITE__V2TOK_TAG, r->hkey);
  return (size_t)(kite__get_le32(h) | (uint64_t)kite__get_le32(h + 4) << 32) &
         r->mask;
}

int kite__tokrec_init(kite__tokrec *r, size_t max) {
  memset(r, 0, sizeof(*r));
  if (max == 0 || max > SIZE_MAX / 4 / sizeof(kite__tokrec_slot))
    return KITE_EINVAL;
  if (sodium_init() < 0)
    return KITE_ESYS;
  size_t slots = 2;
  while (slots < 2 * max)
    slots *= 2;
  r->slot = calloc(slots, sizeof(*r->slot));
  if (r->slot == NULL)
    return KITE_ENOMEM;
  r->mask = slots - 1;
  r->max = max;
  randombytes_buf(r->hkey, sizeof(r->hkey));
  return 0;
}

void kite__tokrec_free(kite__tokrec *r) {
  free(r->slot);
  sodium_memzero(r, sizeof(*r));
}

/* Empties slot |i| and shifts the rest of its probe chain back, so that
 * every held tag stays reachable from its home without tombstones. */
static void remove_at(kite__tokrec *r, size_t i) {
  size_t j = i;
  for (;;) {
    r->slot[i].expire_ts = 0;
    for (;;) {
      j = (j + 1) & r->mask;
      if (r->slot[j].expire_ts == 0) {
        r->count--;
        return;
      }
      size_t k = home(r, r->slot[j].tag);
      /* Slot j may move to i unless its home k lies cyclically in (i, j]. */
      if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
        continue;
      break;
    }
    r->slot[i] = r->slot[j];
    i = j;
  }
}

/* The slot holding |tag|, or the empty slot that ends its chain. */
static size_t probe(const kite__tokrec *r, const uint8_t tag[KITE__V2TOK_TAG]) {
  size_t i = home(r, tag);
  while (r->slot[i].expire_ts != 0 &&
         memcmp(r->slot[i].tag, tag, KITE__V2TOK_TAG) != 0)
    i = (i + 1) & r->mask;
  return i;
}

int kite__tokrec_find(kite__tokrec *r, const uint8_t tag[KITE__V2TOK_TAG],
                      const kite__v2addr *addr, uint64_t now_s) {
  size_t i = probe(r, tag);
  if (r->slot[i].expire_ts == 0)
    return 0;
  if (r->slot[i].expire_ts <= now_s) {
    remove_at(r, i);
    r->expired++;
    return 0;
  }
  if (kite__v2addr_equal(&r->slot[i].addr, addr)) {
    r->used_here++;
    return KITE__V2_EUSED;
  }
  r->bound_other++;
  return KITE__V2_EBOUND;
}

int kite__tokrec_add(kite__tokrec *r, const uint8_t tag[KITE__V2TOK_TAG],
                     const kite__v2addr *addr, uint64_t expire_ts,
                     uint64_t now_s) {
  if (expire_ts <= now_s)
    return KITE_EINVAL;
  size_t i = probe(r, tag);
  if (r->slot[i].expire_ts != 0) { /* the caller skipped _find: rebind */
    r->slot[i].addr = *addr;
    r->slot[i].expire_ts = expire_ts;
    return 0;
  }
  if (r->count >= r->max) {
    kite__tokrec_expire(r, now_s);
    if (r->count >= r->max) {
      r->refused_full++;
      return KITE__V2_EFULL;
    }
    i = probe(r, tag); /* the chains moved */
  }
  memcpy(r->slot[i].tag, tag, KITE__V2TOK_TAG);
  r->slot[i].addr = *addr;
  r->slot[i].expire_ts = expire_ts;
  r->count++;
  return 0;
}

size_t kite__tokrec_expire(kite__tokrec *r, uint64_t now_s) {
  size_t dropped = 0;
  for (size_t i = 0; i <= r->mask; i++)
    while (r->slot[i].expire_ts != 0 && r->slot[i].expire_ts <= now_s) {
      remove_at(r, i);
      dropped++;
    }
  r->expired += dropped;
  return dropped;
}
