/*
 * The shard's unreliable command slots (upool.h): a Treiber stack of
 * indexes with a tag against ABA.
 */
#include "server/upool.h"

#include "kite/error.h"

#include <stdlib.h>
#include <string.h>

int kite__upool_init(kite__upool *p, uint32_t n, uint32_t body_max) {
  memset(p, 0, sizeof(*p));
  size_t stride = sizeof(kite__cmd) + body_max;
  stride = (stride + 15) & ~(size_t)15;
  p->mem = malloc(stride * n);
  p->next = malloc(sizeof(*p->next) * n);
  if (!p->mem || !p->next) {
    kite__upool_free(p);
    return KITE_ENOMEM;
  }
  p->stride = stride;
  p->n = n;
  p->body_max = body_max;
  for (uint32_t i = 0; i < n; i++)
    atomic_init(&p->next[i], i + 1 < n ? i + 2 : 0);
  atomic_init(&p->head, n ? 1 : 0);
  return 0;
}

void kite__upool_free(kite__upool *p) {
  free(p->mem);
  free((void *)p->next);
  memset(p, 0, sizeof(*p));
}

kite__cmd *kite__upool_take(kite__upool *p) {
  uint64_t head = atomic_load_explicit(&p->head, memory_order_acquire);
  for (;;) {
    uint32_t top = (uint32_t)head;
    if (!top)
      return NULL;
    uint32_t next =
        atomic_load_explicit(&p->next[top - 1], memory_order_relaxed);
    uint64_t want = ((head >> 32) + 1) << 32 | next;
    if (atomic_compare_exchange_weak_explicit(&p->head, &head, want,
                                              memory_order_acquire,
                                              memory_order_acquire)) {
      kite__cmd *cmd = (kite__cmd *)(p->mem + p->stride * (top - 1));
      cmd->type = KITE__CMD_UNRELIABLE;
      return cmd;
    }
  }
}

void kite__upool_give(kite__upool *p, kite__cmd *cmd) {
  uint32_t idx = (uint32_t)(((uint8_t *)cmd - p->mem) / p->stride);
  uint64_t head = atomic_load_explicit(&p->head, memory_order_relaxed);
  for (;;) {
    atomic_store_explicit(&p->next[idx], (uint32_t)head, memory_order_relaxed);
    uint64_t want = (head >> 32) << 32 | (idx + 1);
    if (atomic_compare_exchange_weak_explicit(&p->head, &head, want,
                                              memory_order_release,
                                              memory_order_relaxed))
      return;
  }
}
