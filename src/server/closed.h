/*
 * Sessions just closed by the server, per shard: what to answer a peer
 * that did not hear its CLOSE.
 *
 * CLOSE has no acknowledgement (PROTOCOL.md: three copies), and three
 * copies sent back to back die together when the peer's receive buffer is
 * full or its link drops a burst; the peer then learns of the close only
 * from its own idle timeout, with the wrong reason. So the shard keeps
 * each version 1 KCP session it closed for closed_linger_ms: a datagram
 * for that conv, from the address the session had, gets one CLOSE again
 * (the same reason and token), at most one per KITE__CLOSED_RESEND_MS.
 * What it answers is never larger than what it read (a CLOSE is 21 bytes,
 * a KCP segment 24 at least) and goes only where the session's peer was,
 * so it amplifies nothing and tells a stranger nothing it sent.
 *
 * Version 2 sessions are not kept (their CLOSE would need the session's
 * keys): a v2 client that missed it ends by its dead-link timer.
 *
 * Owner: the shard thread, alone. Bounded: closed_linger_max entries in a
 * ring (allocated at init, nothing per close); when it wraps, the oldest
 * entry still lingering is forgotten, counted.
 */
#ifndef KITE_SERVER_CLOSED_H
#define KITE_SERVER_CLOSED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/map.h"
#include "net/addr.h"

#define KITE__CLOSED_RESEND_MS 100

typedef struct kite__closed_entry {
  uint32_t conv;
  uint32_t until_ms;  /* lingers until then */
  uint32_t next_ms;   /* the next CLOSE may go then */
  uint8_t token[8];
  uint8_t reason;
  bool used;
  kite__addr peer;
  kite__local local;
} kite__closed_entry;

typedef struct kite__closed {
  kite__closed_entry *ring; /* NULL: off (closed_linger_ms or _max 0) */
  uint32_t cap, next;       /* entries; the one the next add overwrites */
  uint32_t linger_ms;
  kite__map by_conv;        /* kite__conv_key(conv) -> ring index */
} kite__closed;

/* |cap| entries kept |linger_ms| each; either 0: off. 0 or KITE_ENOMEM. */
int kite__closed_init(kite__closed *c, uint32_t cap, uint32_t linger_ms);
void kite__closed_free(kite__closed *c);

/* Keeps what session |conv| (just closed with |reason|) needs for its
 * CLOSE to be sent again. Returns true when it forgot an entry that was
 * still lingering to make room (the caller counts it). */
bool kite__closed_add(kite__closed *c, uint32_t conv, const kite__addr *peer,
                      const kite__local *local, const uint8_t token[8],
                      uint8_t reason, uint32_t now_ms);

/* A datagram of |len| bytes for |conv|, which has no session, came from
 * |from|: the entry to answer with a CLOSE now (its next_ms moved on), or
 * NULL (none, another address, expired, too soon, or |len| under a
 * CLOSE's size). */
const kite__closed_entry *kite__closed_heard(kite__closed *c, uint32_t conv,
                                             const kite__addr *from,
                                             size_t len, uint32_t now_ms);

#endif
