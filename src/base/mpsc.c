#include "base/mpsc.h"

#include "kite/error.h"

#include <stdint.h>
#include <stdlib.h>

int kite__mpsc_init(kite__mpsc *q, size_t capacity) {
  size_t n = 2;
  while (n < capacity)
    n <<= 1;
  q->slots = malloc(n * sizeof(*q->slots));
  if (!q->slots)
    return KITE_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    atomic_init(&q->slots[i].seq, i);
    q->slots[i].item = NULL;
  }
  q->mask = n - 1;
  atomic_init(&q->head, 0);
  q->tail = 0;
  return 0;
}

void kite__mpsc_free(kite__mpsc *q) {
  free(q->slots);
  q->slots = NULL;
}

bool kite__mpsc_push(kite__mpsc *q, void *item) {
  size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
  for (;;) {
    kite__mpsc_slot *s = &q->slots[pos & q->mask];
    size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
    intptr_t dif = (intptr_t)seq - (intptr_t)pos;
    if (dif == 0) {
      /* The slot is free for lap |pos|: claim it. */
      if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                memory_order_relaxed,
                                                memory_order_relaxed)) {
        s->item = item;
        atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
        return true;
      }
    } else if (dif < 0) {
      return false; /* the consumer has not freed this slot yet: full */
    } else {
      pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    }
  }
}

void *kite__mpsc_pop(kite__mpsc *q) {
  kite__mpsc_slot *s = &q->slots[q->tail & q->mask];
  size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
  if ((intptr_t)seq - (intptr_t)(q->tail + 1) < 0)
    return NULL; /* not yet published */
  void *item = s->item;
  atomic_store_explicit(&s->seq, q->tail + q->mask + 1, memory_order_release);
  q->tail++;
  return item;
}
