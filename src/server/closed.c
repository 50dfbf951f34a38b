/*
 * Sessions just closed, per shard (closed.h).
 */
#include "server/closed.h"

#include "base/time.h"
#include "kite/error.h"
#include "proto/control.h"
#include "server/conv.h"

#include <stdlib.h>
#include <string.h>

int kite__closed_init(kite__closed *c, uint32_t cap, uint32_t linger_ms) {
  memset(c, 0, sizeof(*c));
  if (cap == 0 || linger_ms == 0)
    return 0;
  c->ring = calloc(cap, sizeof(*c->ring));
  if (!c->ring)
    return KITE_ENOMEM;
  if (kite__map_init(&c->by_conv, cap) < 0) {
    free(c->ring);
    c->ring = NULL;
    return KITE_ENOMEM;
  }
  c->cap = cap;
  c->linger_ms = linger_ms;
  return 0;
}

void kite__closed_free(kite__closed *c) {
  if (c->ring)
    kite__map_free(&c->by_conv);
  free(c->ring);
  memset(c, 0, sizeof(*c));
}

bool kite__closed_add(kite__closed *c, uint32_t conv, const kite__addr *peer,
                      const kite__local *local, const uint8_t token[8],
                      uint8_t reason, uint32_t now_ms) {
  if (!c->ring)
    return false;
  bool forgot = false;
  uint32_t i;
  if (kite__map_get(&c->by_conv, kite__conv_key(conv), &i)) {
    /* The conv closed again (a newer session drew it): the newer wins. */
  } else {
    i = c->next;
    c->next = (c->next + 1) % c->cap;
    kite__closed_entry *old = &c->ring[i];
    if (old->used) {
      kite__map_del(&c->by_conv, kite__conv_key(old->conv));
      forgot = kite__ms_diff(old->until_ms, now_ms) > 0;
    }
    if (kite__map_put(&c->by_conv, kite__conv_key(conv), i) < 0) {
      old->used = false; /* no room to find it by: keep nothing */
      return forgot;
    }
  }
  kite__closed_entry *e = &c->ring[i];
  e->conv = conv;
  e->until_ms = now_ms + c->linger_ms;
  e->next_ms = now_ms + KITE__CLOSED_RESEND_MS; /* three copies just went */
  memcpy(e->token, token, sizeof(e->token));
  e->reason = reason;
  e->peer = *peer;
  e->local = *local;
  e->used = true;
  return forgot;
}

const kite__closed_entry *kite__closed_heard(kite__closed *c, uint32_t conv,
                                             const kite__addr *from,
                                             size_t len, uint32_t now_ms) {
  uint32_t i;
  if (!c->ring || len < kite__ctrl_size(KITE__CTRL_CLOSE) ||
      !kite__map_get(&c->by_conv, kite__conv_key(conv), &i))
    return NULL;
  kite__closed_entry *e = &c->ring[i];
  if (!e->used || e->conv != conv || kite__ms_diff(now_ms, e->until_ms) >= 0)
    return NULL;
  if (!kite__addr_equal(&e->peer, from) || kite__ms_diff(now_ms, e->next_ms) < 0)
    return NULL;
  e->next_ms = now_ms + KITE__CLOSED_RESEND_MS;
  return e;
}
