#include "sim_link.h"

#include <stdlib.h>
#include <string.h>

typedef struct pkt {
  uint32_t at;  /* delivery time */
  uint64_t seq; /* tie-break: FIFO among equal times */
  size_t len;
  uint8_t *data;
} pkt;

struct sim_link {
  sim_link_config cfg;
  uint64_t rng;
  uint64_t seq;
  pkt *heap; /* min-heap on (at, seq) */
  size_t n, cap;
  sim_link_stats stats;
};

uint64_t sim_rand(sim_link *l) { /* xorshift64* */
  uint64_t x = l->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  l->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static double unit(sim_link *l) {
  return (double)(sim_rand(l) >> 11) / (double)(1ULL << 53);
}

static bool before(const pkt *a, const pkt *b) {
  int32_t d = (int32_t)(a->at - b->at);
  return d < 0 || (d == 0 && a->seq < b->seq);
}

sim_link *sim_link_create(const sim_link_config *cfg) {
  sim_link *l = calloc(1, sizeof(*l));
  if (!l)
    return NULL;
  l->cfg = *cfg;
  l->rng = cfg->seed * 0x9E3779B97F4A7C15ULL + 1;
  return l;
}

void sim_link_destroy(sim_link *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++)
    free(l->heap[i].data);
  free(l->heap);
  free(l);
}

static void push(sim_link *l, const uint8_t *buf, size_t len, uint32_t at) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->heap = realloc(l->heap, l->cap * sizeof(pkt));
    if (!l->heap)
      abort();
  }
  pkt p = {at, l->seq++, len, malloc(len ? len : 1)};
  if (!p.data)
    abort();
  memcpy(p.data, buf, len);
  size_t i = l->n++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&p, &l->heap[parent]))
      break;
    l->heap[i] = l->heap[parent];
    i = parent;
  }
  l->heap[i] = p;
}

static uint32_t delay(sim_link *l) {
  uint32_t d = l->cfg.delay_ms;
  if (l->cfg.jitter_ms)
    d += (uint32_t)(sim_rand(l) % (l->cfg.jitter_ms + 1));
  return d;
}

static bool blacked_out(const sim_link *l, uint32_t now) {
  const sim_link_config *c = &l->cfg;
  if (!c->blackout_every_ms || !c->blackout_ms)
    return false;
  return (now - c->blackout_origin) % c->blackout_every_ms < c->blackout_ms;
}

void sim_link_send(sim_link *l, const uint8_t *buf, size_t len, uint32_t now) {
  l->stats.sent++;
  if (blacked_out(l, now)) {
    l->stats.blacked_out++;
    return;
  }
  if (unit(l) < l->cfg.loss) {
    l->stats.dropped++;
    return;
  }
  push(l, buf, len, now + delay(l));
  if (unit(l) < l->cfg.dup) {
    l->stats.duplicated++;
    push(l, buf, len, now + delay(l));
  }
}

bool sim_link_next(const sim_link *l, uint32_t *when) {
  if (l->n == 0)
    return false;
  *when = l->heap[0].at;
  return true;
}

int sim_link_recv(sim_link *l, uint32_t now, uint8_t *buf, size_t cap) {
  if (l->n == 0 || (int32_t)(now - l->heap[0].at) < 0)
    return -1;
  pkt top = l->heap[0];
  pkt last = l->heap[--l->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= l->n)
      break;
    if (c + 1 < l->n && before(&l->heap[c + 1], &l->heap[c]))
      c++;
    if (!before(&l->heap[c], &last))
      break;
    l->heap[i] = l->heap[c];
    i = c;
  }
  if (l->n)
    l->heap[i] = last;
  size_t n = top.len < cap ? top.len : cap;
  memcpy(buf, top.data, n);
  free(top.data);
  l->stats.delivered++;
  return (int)n;
}

const sim_link_stats *sim_link_get_stats(const sim_link *l) {
  return &l->stats;
}

void sim_link_set_blackouts(sim_link *l, uint32_t every_ms, uint32_t len_ms,
                            uint32_t origin) {
  l->cfg.blackout_every_ms = every_ms;
  l->cfg.blackout_ms = len_ms;
  l->cfg.blackout_origin = origin;
}
