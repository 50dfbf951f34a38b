/*
 * Sequenced unreliable messages, the receiver's side (PROTOCOL-v2.md
 * section 6): per msg_id the newest seq delivered; a message is delivered
 * when it is the first of its msg_id or (int16_t)(seq - newest) > 0, else
 * dropped, counted.
 *
 * Tracks KITE__V2SEQ_SLOTS msg_ids (the contract's "at least 64"), most
 * recently used first (any message of a msg_id, delivered or not, uses
 * it); a new msg_id past that forgets the least recently used one (a
 * late message of that msg_id may then get through, as the contract
 * allows). 256 bytes, no allocation, one lookup is a scan of at
 * most 64 entries from the most recent. Not thread-safe: one per session,
 * owned by the session's thread.
 */
#ifndef KITE_PROTO_V2SEQ_H
#define KITE_PROTO_V2SEQ_H

#include <stdbool.h>
#include <stdint.h>

#define KITE__V2SEQ_SLOTS 64

typedef struct kite__v2seq {
  uint8_t n; /* slots in use */
  struct {
    uint16_t msg_id, newest;
  } slot[KITE__V2SEQ_SLOTS]; /* slot[0] the most recently used */
  uint64_t forgotten; /* msg_ids evicted, for a counter */
} kite__v2seq;

void kite__v2seq_init(kite__v2seq *s);

/* true when the sequenced message (|msg_id|, |seq|) is to be delivered
 * (and recorded as the newest), false when it is stale or a repeat. */
bool kite__v2seq_accept(kite__v2seq *s, uint16_t msg_id, uint16_t seq);

/* The sender's side, on a kite__v2seq of its own: the seq of the next
 * sequenced message of |msg_id| (0 for its first, then +1, 65535 wrapping
 * to 0). The same 64 slots, most recently used first; a msg_id forgotten
 * (counted in |forgotten|) starts again at 0, which its receiver drops
 * until it passes the newest it had, unless it forgot it too. */
uint16_t kite__v2seq_next(kite__v2seq *s, uint16_t msg_id);

#endif
