/*
 * A shard's slots for unreliable messages on their way from other threads
 * (kite_session_send_unreliable() to a v2 UDP session): a fixed array of
 * commands, each with room for the largest body a datagram holds,
 * allocated once when the shard starts, and a lock-free stack of the free
 * ones, so a message costs no allocation. Empty: the sender gets
 * KITE_EFULL, counted (unreliable_queue_full).
 *
 * Ownership: the array belongs to the shard (freed with it). Any thread
 * takes a slot; the shard thread, having run the command, gives it back.
 * The stack's head is a (tag, index) pair in one 64-bit word, the tag
 * bumped by every take, so a slot taken and given back between another
 * taker's load and its compare-exchange fails that exchange (no ABA).
 */
#ifndef KITE_SERVER_UPOOL_H
#define KITE_SERVER_UPOOL_H

#include "server/cmd.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kite__upool {
  uint8_t *mem;          /* n slots of |stride| bytes */
  size_t stride;         /* sizeof(kite__cmd) + body_max, aligned */
  uint32_t n;
  uint32_t body_max;     /* bytes a slot's body holds */
  _Atomic uint64_t head; /* tag << 32 | index + 1 of the first free (0: none) */
  _Atomic uint32_t *next; /* per slot: index + 1 of the next free */
} kite__upool;

/* |n| slots of |body_max| bytes. 0 or KITE_ENOMEM. */
int kite__upool_init(kite__upool *p, uint32_t n, uint32_t body_max);
void kite__upool_free(kite__upool *p);
/* A free slot (type KITE__CMD_UNRELIABLE, the rest to fill), or NULL. */
kite__cmd *kite__upool_take(kite__upool *p);
/* Gives back a slot kite__upool_take() returned. */
void kite__upool_give(kite__upool *p, kite__cmd *cmd);
/* Whether |cmd| is one of the pool's slots. */
static inline bool kite__upool_owns(const kite__upool *p,
                                    const kite__cmd *cmd) {
  const uint8_t *c = (const uint8_t *)cmd;
  return p->mem && c >= p->mem && c < p->mem + p->stride * p->n;
}

#endif
