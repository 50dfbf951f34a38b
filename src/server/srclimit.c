#include "server/srclimit.h"

#include "kite/error.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

int kite__srclimit_init(kite__srclimit *l, const kite__srclimit_limits *lim,
                        uint32_t max_sessions, const uint8_t key[16]) {
  memset(l, 0, sizeof(*l));
  l->lim = *lim;
  memcpy(l->key, key, sizeof(l->key));
  l->free_head = NONE;
  if (!lim->per_addr && !lim->per_prefix && !lim->halfopen_per_addr &&
      !lim->halfopen_per_prefix)
    return 0; /* nothing to count */
  /* Each session is in at most two records: its address's, its prefix's. */
  uint32_t n = 2 * max_sessions;
  l->counts = calloc(n, sizeof(*l->counts));
  if (!l->counts || kite__map_init(&l->map, n) < 0) {
    free(l->counts);
    l->counts = NULL;
    return KITE_ENOMEM;
  }
  for (uint32_t i = n; i-- > 0;) {
    l->counts[i].next_free = l->free_head;
    l->free_head = i;
  }
  return 0;
}

void kite__srclimit_free(kite__srclimit *l) {
  if (l->counts)
    kite__map_free(&l->map);
  free(l->counts);
  l->counts = NULL;
}

static uint64_t hash(const kite__srclimit *l, uint8_t tag, const uint8_t *bytes,
                     size_t n) {
  uint8_t in[1 + 16];
  in[0] = tag;
  memcpy(in + 1, bytes, n);
  uint8_t out[8];
  crypto_shorthash(out, in, 1 + n, l->key);
  uint64_t h;
  memcpy(&h, out, sizeof(h));
  return h | 1; /* never 0: 0 means not counted */
}

kite__src_keys kite__srclimit_keys(const kite__srclimit *l, const struct sockaddr *a) {
  kite__src_keys k = {0, 0};
  if (!l->counts)
    return k;
  const uint8_t *ip;
  size_t len, prefix;
  uint8_t tag;
  if (a->sa_family == AF_INET6) {
    const uint8_t *b = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (memcmp(b, mapped, sizeof(mapped)) == 0) {
      ip = b + 12; /* a dual-stack socket's IPv4 peer counts as IPv4 */
      len = 4, prefix = 3, tag = 4;
    } else {
      ip = b;
      len = 16, prefix = 8, tag = 6;
    }
  } else {
    ip = (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
    len = 4, prefix = 3, tag = 4;
  }
  if (l->lim.per_addr || l->lim.halfopen_per_addr)
    k.addr = hash(l, tag, ip, len);
  if (l->lim.per_prefix || l->lim.halfopen_per_prefix)
    k.prefix = hash(l, (uint8_t)(tag | 0x80), ip, prefix);
  return k;
}

static kite__src_count *find(const kite__srclimit *l, uint64_t key) {
  uint32_t i;
  return key && kite__map_get(&l->map, key, &i) ? &l->counts[i] : NULL;
}

static bool over(const kite__src_count *c, uint32_t max, uint32_t max_halfopen,
                 int *why) {
  if (!c)
    return false;
  if (max && c->open + c->halfopen >= max)
    *why = KITE__SRC_OVER_SESSIONS;
  else if (max_halfopen && c->halfopen >= max_halfopen)
    *why = KITE__SRC_OVER_HALFOPEN;
  return *why != 0;
}

static void drop(kite__srclimit *l, uint64_t key, bool was_open);

static kite__src_count *get_or_make(kite__srclimit *l, uint64_t key) {
  kite__src_count *c = find(l, key);
  if (c || !key)
    return c;
  /* Sized for two records a session: a free one is always there; only
   * the map's growth can fail (out of memory). */
  uint32_t i = l->free_head;
  if (i == NONE || kite__map_put(&l->map, key, i) < 0)
    return NULL;
  l->free_head = l->counts[i].next_free;
  c = &l->counts[i];
  c->open = c->halfopen = 0;
  return c;
}

int kite__srclimit_add(kite__srclimit *l, const kite__src_keys *k) {
  if (!l->counts)
    return 0;
  int why = 0;
  if (over(find(l, k->addr), l->lim.per_addr, l->lim.halfopen_per_addr, &why) ||
      over(find(l, k->prefix), l->lim.per_prefix, l->lim.halfopen_per_prefix, &why))
    return why;
  kite__src_count *a = get_or_make(l, k->addr);
  kite__src_count *p = get_or_make(l, k->prefix);
  if ((k->addr && !a) || (k->prefix && !p)) {
    /* Out of memory to count it: refused, since it could not be limited;
     * a record made just now, with nothing in it, goes again. */
    if (a && !a->open && !a->halfopen)
      drop(l, k->addr, false);
    return KITE__SRC_OVER_SESSIONS;
  }
  if (a)
    a->halfopen++;
  if (p)
    p->halfopen++;
  return 0;
}

void kite__srclimit_opened(kite__srclimit *l, const kite__src_keys *k) {
  if (!l->counts)
    return;
  kite__src_count *c;
  if ((c = find(l, k->addr)) && c->halfopen) {
    c->halfopen--;
    c->open++;
  }
  if ((c = find(l, k->prefix)) && c->halfopen) {
    c->halfopen--;
    c->open++;
  }
}

static void drop(kite__srclimit *l, uint64_t key, bool was_open) {
  uint32_t i;
  if (!key || !kite__map_get(&l->map, key, &i))
    return;
  kite__src_count *c = &l->counts[i];
  if (was_open && c->open)
    c->open--;
  else if (!was_open && c->halfopen)
    c->halfopen--;
  if (c->open == 0 && c->halfopen == 0) {
    kite__map_del(&l->map, key);
    c->next_free = l->free_head;
    l->free_head = i;
  }
}

void kite__srclimit_remove(kite__srclimit *l, const kite__src_keys *k,
                           bool was_open) {
  if (!l->counts)
    return;
  drop(l, k->addr, was_open);
  drop(l, k->prefix, was_open);
}
