/*
 * Protected datagrams (PROTOCOL-v2.md section 4) and key limits (section 9).
 *
 *   0 conv u32   4 pn u64   12 ciphertext of the items (at least 3)   tag[16]
 *
 * sealed as seal(key, 00 00 00 00 ‖ pn as u64, aad = the first 12 bytes,
 * items), key the UDP traffic key of the sender's direction. At least 31
 * bytes, at most the accepted mtu.
 *
 * Receiving, in the contract's order (every refusal counted, never
 * answered): kite__v2pkt_peek() (size, pn < 2^48) and the caller's session
 * lookup, mtu and address checks; kite__replay_check(); kite__v2pkt_open();
 * kite__replay_record(); then the items (v2item.h).
 *
 * Pure: no state but what the caller passes; no allocation; any thread.
 */
#ifndef KITE_PROTO_V2PKT_H
#define KITE_PROTO_V2PKT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/v2.h"

#define KITE__V2PKT_HDR 12
#define KITE__V2PKT_OVERHEAD (KITE__V2PKT_HDR + KITE__V2_TAG) /* 28 */
#define KITE__V2PKT_ITEMS_MIN 3
#define KITE__V2PKT_MIN (KITE__V2PKT_OVERHEAD + KITE__V2PKT_ITEMS_MIN) /* 31 */

/* Step 1's checks that need no session: 0 with the clear conv and pn, or
 * KITE__V2_ESIZE (under 31 bytes) or KITE__V2_ELIMIT (pn at or past 2^48;
 * *conv and *pn are still set). The mtu is the caller's to check, once the
 * conv has named the session. */
int kite__v2pkt_peek(const uint8_t *p, size_t len, uint32_t *conv,
                     uint64_t *pn);

/* The 12-byte nonce of datagram |pn|: 00 00 00 00 then pn LE. */
void kite__v2pkt_nonce(uint8_t out[KITE__V2_NONCE], uint32_t prefix,
                       uint64_t n);

/* Seals the |len| bytes of items at |items| into a datagram at |out|:
 * header, ciphertext, tag: 28 + |len| bytes. |items| may be out + 12 (the
 * caller wrote the items in place), else must not overlap |out|. Returns
 * the datagram's size, or KITE_EINVAL (|len| under 3), KITE__V2_ELIMIT
 * (|pn| at or past 2^48: never sealed), KITE_EMSGSIZE (|cap| too small).
 * Nothing is written on an error. */
int kite__v2pkt_seal(uint8_t *out, size_t cap, uint32_t conv, uint64_t pn,
                     const uint8_t key[KITE__V2_KEY], const uint8_t *items,
                     size_t len);

/* Opens the datagram of |len| bytes at |p| (peeked: at least 31 bytes)
 * into |items| (room for len - 28 bytes; it may be p + 12, opened in
 * place). Returns the items' length, or KITE__V2_ESIZE (under 31),
 * KITE__V2_EAUTH (the tag does not verify: |items| holds nothing of use). */
int kite__v2pkt_open(uint8_t *items, const uint8_t *p, size_t len,
                     const uint8_t key[KITE__V2_KEY]);

/*
 * Key limits (section 9): a sender's numbers, per session and direction,
 * from 0, +1 each, never reused, below 2^48. Numbers 2^48 - 3 to 2^48 - 1
 * each carry a CLOSE reason 7 and the sender then ends the session; on TCP
 * the record 2^48 - 3 holds the CLOSE frame and is the last.
 */
typedef struct kite__v2pn {
  uint64_t next; /* the number the next datagram or record takes */
} kite__v2pn;

enum kite__v2pn_state {
  KITE__V2PN_OK = 0,      /* an ordinary number */
  KITE__V2PN_CLOSING = 1, /* carry CLOSE 7 (TCP: the CLOSE frame, last) */
};

/* Takes the next number into *n. Returns KITE__V2PN_OK,
 * KITE__V2PN_CLOSING (n is 2^48 - 3 or later: it must carry the close),
 * or KITE__V2_ELIMIT when no number is left (nothing taken). */
int kite__v2pn_take(kite__v2pn *s, uint64_t *n);

#endif
