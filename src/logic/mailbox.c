#include "logic/mailbox.h"

#include <stdlib.h>
#include <string.h>

void kite__mailbox_init(kite__mailbox *mb) {
  mb->ring = NULL;
  mb->depth = 0;
  atomic_init(&mb->head, 0);
  atomic_init(&mb->tail, 0);
  atomic_init(&mb->bytes, 0);
  atomic_init(&mb->flags, 0);
  atomic_init(&mb->affinity, 0);
  atomic_init(&mb->bound, NULL);
  mb->reason = 0;
}

void kite__mailbox_clear(kite__mailbox *mb) {
  kite__msg *m;
  while ((m = kite__mailbox_peek(mb)))
    kite__mailbox_done(mb, m);
  free(mb->ring);
  mb->ring = NULL;
  mb->depth = 0;
}

bool kite__mailbox_push(kite__mailbox *mb, uint16_t msg_id, const void *body,
                        uint32_t len, uint32_t depth, uint32_t max_bytes) {
  return kite__mailbox_push_flags(mb, msg_id, 0, body, len, depth, max_bytes);
}

bool kite__mailbox_push_flags(kite__mailbox *mb, uint16_t msg_id,
                              uint8_t flags, const void *body, uint32_t len,
                              uint32_t depth, uint32_t max_bytes) {
  uint32_t head = atomic_load_explicit(&mb->head, memory_order_relaxed);
  uint32_t tail = atomic_load(&mb->tail);
  if (mb->ring)
    depth = mb->depth; /* the ring's, for as long as it lives */
  if (head - tail >= depth)
    return false;
  /* One message always fits an empty mailbox, whatever its size (it was
   * checked against max_frame), so a large frame can never wedge it. */
  uint32_t bytes = atomic_load_explicit(&mb->bytes, memory_order_relaxed);
  if (head != tail && bytes + len > max_bytes)
    return false;
  if (!mb->ring) {
    if (!(mb->ring = calloc(depth, sizeof(*mb->ring))))
      return false;
    mb->depth = depth; /* published to the consumer by the head below */
  }
  kite__msg *m = malloc(sizeof(*m) + len);
  if (!m)
    return false;
  m->len = len;
  m->msg_id = msg_id;
  m->flags = flags;
  if (len)
    memcpy(m->data, body, len);
  atomic_fetch_add_explicit(&mb->bytes, len, memory_order_relaxed);
  mb->ring[head & (mb->depth - 1)] = m;
  atomic_store(&mb->head, head + 1);
  return true;
}

kite__msg *kite__mailbox_peek(kite__mailbox *mb) {
  uint32_t tail = atomic_load_explicit(&mb->tail, memory_order_relaxed);
  if (tail == atomic_load(&mb->head))
    return NULL;
  return mb->ring[tail & (mb->depth - 1)];
}

void kite__mailbox_done(kite__mailbox *mb, kite__msg *m) {
  atomic_fetch_sub_explicit(&mb->bytes, m->len, memory_order_relaxed);
  free(m);
  atomic_fetch_add(&mb->tail, 1);
}
