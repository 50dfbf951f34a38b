/*
 * Sequenced unreliable messages (PROTOCOL-v2.md section 6). The
 * receiver's side: per msg_id the newest seq delivered; a message is delivered
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

/* The sender's side (section 6: "the sender's count per session,
 * direction and msg_id, from 0, +1 each"; only the receiver may forget):
 * per msg_id the seq of its next sequenced message, never forgotten.
 * A sorted array of (msg_id, next), 4 bytes a msg_id, found by binary
 * search; it grows (doubling, from KITE__V2SEQ_OUT_MIN) only when a msg_id
 * is first sent sequenced, never per message, so it is bounded by the
 * application's own msg_ids: at most 65536 entries, 256 KiB. All zero is
 * an empty table (kite__v2seq_out_init makes one). Not thread-safe: one per
 * session, owned by the session's thread (the shard's, or the client's). */
#define KITE__V2SEQ_OUT_MIN 8

typedef struct kite__v2seq_out {
  struct {
    uint16_t msg_id, next;
  } *e;          /* sorted by msg_id; NULL until a first msg_id */
  uint32_t n;    /* msg_ids in use */
  uint32_t cap;  /* room in |e| */
} kite__v2seq_out;

void kite__v2seq_out_init(kite__v2seq_out *o);
void kite__v2seq_out_free(kite__v2seq_out *o); /* then as from init */

/* Puts in |*seq| the seq of the next sequenced message of |msg_id| (0 for
 * its first, then +1, 65535 wrapping to 0) and counts it: 0, or
 * KITE_ENOMEM when a first use of |msg_id| finds no memory to grow (then
 * nothing changed). */
int kite__v2seq_next(kite__v2seq_out *o, uint16_t msg_id, uint16_t *seq);

#endif
