/*
 * The server's token record, striped (tokens.h).
 */
#include "server/tokens.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "proto/v2.h"

int kite__tokens_init(kite__tokens *t, uint32_t stripes, size_t max_per_stripe) {
  memset(t, 0, sizeof(*t));
  if (stripes == 0 || max_per_stripe == 0)
    return KITE_EINVAL;
  t->s = calloc(stripes, sizeof(*t->s));
  if (!t->s)
    return KITE_ENOMEM;
  randombytes_buf(t->hkey, sizeof(t->hkey));
  for (uint32_t i = 0; i < stripes; i++) {
    int rc = kite__tokrec_init(&t->s[i].rec, max_per_stripe);
    if (rc < 0) {
      kite__tokens_free(t);
      return rc;
    }
    pthread_mutex_init(&t->s[i].lock, NULL);
    t->n = i + 1;
  }
  return 0;
}

void kite__tokens_free(kite__tokens *t) {
  for (uint32_t i = 0; i < t->n; i++) {
    kite__tokrec_free(&t->s[i].rec);
    pthread_mutex_destroy(&t->s[i].lock);
  }
  free(t->s);
  sodium_memzero(t->hkey, sizeof(t->hkey));
  memset(t, 0, sizeof(*t));
}

static kite__tokens_stripe *stripe(kite__tokens *t,
                                   const uint8_t tag[KITE__V2TOK_TAG]) {
  uint8_t h[8];
  crypto_shorthash(h, tag, KITE__V2TOK_TAG, t->hkey);
  uint64_t v;
  memcpy(&v, h, sizeof(v));
  return &t->s[v % t->n];
}

int kite__tokens_check(kite__tokens *t, const uint8_t tag[KITE__V2TOK_TAG],
                       const kite__v2addr *addr, uint64_t now_s) {
  kite__tokens_stripe *s = stripe(t, tag);
  pthread_mutex_lock(&s->lock);
  int rc = kite__tokrec_find(&s->rec, tag, addr, now_s);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

int kite__tokens_bind(kite__tokens *t, const uint8_t tag[KITE__V2TOK_TAG],
                      const kite__v2addr *addr, uint64_t expire_ts,
                      uint64_t now_s) {
  kite__tokens_stripe *s = stripe(t, tag);
  pthread_mutex_lock(&s->lock);
  int rc = kite__tokrec_find(&s->rec, tag, addr, now_s);
  if (rc == 0)
    rc = kite__tokrec_add(&s->rec, tag, addr, expire_ts, now_s);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

size_t kite__tokens_expire(kite__tokens *t, uint32_t i, uint64_t now_s) {
  if (i >= t->n)
    return 0;
  pthread_mutex_lock(&t->s[i].lock);
  size_t n = kite__tokrec_expire(&t->s[i].rec, now_s);
  pthread_mutex_unlock(&t->s[i].lock);
  return n;
}

void kite__tokens_stats_get(kite__tokens *t, kite__tokens_stats *out) {
  memset(out, 0, sizeof(*out));
  for (uint32_t i = 0; i < t->n; i++) {
    pthread_mutex_lock(&t->s[i].lock);
    const kite__tokrec *r = &t->s[i].rec;
    out->held += r->count;
    out->refused_full += r->refused_full;
    out->bound_other += r->bound_other;
    out->used_here += r->used_here;
    out->expired += r->expired;
    pthread_mutex_unlock(&t->s[i].lock);
  }
}
