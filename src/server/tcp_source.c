/*
 * Per-source connection counts for TCP (tcp_source.h).
 */
#include "server/tcp_source.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

kite__src_limit *kite__src_limit_new(uint32_t max_addr, uint32_t max_prefix) {
  kite__src_limit *l = calloc(1, sizeof(*l));
  if (!l)
    return NULL;
  randombytes_buf(l->key, sizeof(l->key));
  l->max_addr = max_addr;
  l->max_prefix = max_prefix;
  for (uint32_t i = 0; i < KITE__SRC_BUCKETS; i++) {
    atomic_init(&l->addr[i], 0);
    atomic_init(&l->prefix[i], 0);
  }
  return l;
}

void kite__src_limit_free(kite__src_limit *l) { free(l); }

size_t kite__src_key(const kite__addr *a, bool prefix, uint8_t out[17]) {
  const uint8_t *ip;
  size_t n;
  if (a->sa.sa_family == AF_INET) {
    ip = (const uint8_t *)&a->v4.sin_addr;
    n = 4;
  } else if (IN6_IS_ADDR_V4MAPPED(&a->v6.sin6_addr)) {
    ip = (const uint8_t *)&a->v6.sin6_addr + 12;
    n = 4;
  } else {
    ip = (const uint8_t *)&a->v6.sin6_addr;
    n = 16;
  }
  out[0] = (uint8_t)n; /* an IPv4 key never equals an IPv6 one */
  if (prefix)
    n = n == 4 ? 3 : 8; /* /24, /64 */
  memcpy(out + 1, ip, n);
  return 1 + n;
}

static uint32_t bucket(const kite__src_limit *l, const kite__addr *a,
                       bool prefix) {
  uint8_t key[17];
  size_t n = kite__src_key(a, prefix, key);
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, key, n, l->key);
  uint32_t v;
  memcpy(&v, h, sizeof(v));
  return v % KITE__SRC_BUCKETS;
}

/* One count up unless it reaches |max|: true when counted. */
static bool take(_Atomic uint32_t *c, uint32_t max) {
  uint32_t was = atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
  if (was < max)
    return true;
  atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
  return false;
}

int kite__src_acquire(kite__src_limit *l, const kite__addr *a,
                      kite__src_hold *hold) {
  hold->addr = hold->prefix = KITE__SRC_NONE;
  if (!l)
    return KITE__SRC_OK;
  if (l->max_addr) {
    uint32_t i = bucket(l, a, false);
    if (!take(&l->addr[i], l->max_addr))
      return KITE__SRC_ADDR;
    hold->addr = i;
  }
  if (l->max_prefix) {
    uint32_t i = bucket(l, a, true);
    if (!take(&l->prefix[i], l->max_prefix)) {
      kite__src_release(l, hold);
      return KITE__SRC_PREFIX;
    }
    hold->prefix = i;
  }
  return KITE__SRC_OK;
}

void kite__src_release(kite__src_limit *l, kite__src_hold *hold) {
  if (!l)
    return;
  if (hold->addr != KITE__SRC_NONE)
    atomic_fetch_sub_explicit(&l->addr[hold->addr], 1, memory_order_relaxed);
  if (hold->prefix != KITE__SRC_NONE)
    atomic_fetch_sub_explicit(&l->prefix[hold->prefix], 1, memory_order_relaxed);
  hold->addr = hold->prefix = KITE__SRC_NONE;
}
