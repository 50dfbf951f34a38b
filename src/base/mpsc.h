/*
 * A bounded multi-producer, single-consumer queue of pointers: how other
 * threads hand work to a shard. Producers never block and never allocate:
 * when the queue is full, push fails and the caller reports KITE_EFULL.
 * Lock-free (per-slot sequence numbers, after Dmitry Vyukov's bounded
 * queue); the consumer is the owning shard alone.
 */
#ifndef KITE_BASE_MPSC_H
#define KITE_BASE_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct kite__mpsc_slot {
  atomic_size_t seq;
  void *item;
} kite__mpsc_slot;

typedef struct kite__mpsc {
  kite__mpsc_slot *slots;
  size_t mask;
  _Alignas(64) atomic_size_t head; /* next slot to claim (producers) */
  _Alignas(64) size_t tail;        /* next slot to read (consumer) */
} kite__mpsc;

/* |capacity| is rounded up to a power of two. Returns 0 or KITE_ENOMEM. */
int kite__mpsc_init(kite__mpsc *q, size_t capacity);
void kite__mpsc_free(kite__mpsc *q);

/* Any thread. false when full (nothing queued). */
bool kite__mpsc_push(kite__mpsc *q, void *item);

/* The consumer only. NULL when empty. */
void *kite__mpsc_pop(kite__mpsc *q);

#endif
