/*
 * The replay window of protected datagrams (PROTOCOL-v2.md section 4): one
 * per session and direction, 1024 packet numbers wide, a sliding bitmap as
 * WireGuard's. |top| is the highest pn recorded (none at first); the bitmap
 * holds one bit per number from top - 1023 to top, bit (pn mod 1024).
 *
 *   new        no top, or pn > top, or top - pn < 1024 and its bit clear
 *   stale      top - pn >= 1024
 *   duplicate  otherwise
 *
 * Receiving checks (step 3) before the tag, and records (step 5) after it,
 * checking again: of two copies verified in parallel, the later is a
 * duplicate there. Packet numbers at or past 2^48 never get here (step 1).
 *
 * 136 bytes, no allocation. Not thread-safe: a window belongs to the
 * thread that owns its session.
 */
#ifndef KITE_PROTO_REPLAY_H
#define KITE_PROTO_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define KITE__REPLAY_WIDTH 1024
#define KITE__REPLAY_WORDS (KITE__REPLAY_WIDTH / 64)

typedef struct kite__replay {
  uint64_t top;  /* meaningful only when have_top */
  bool have_top;
  uint64_t bits[KITE__REPLAY_WORDS];
} kite__replay;

/* An empty window: no top. */
void kite__replay_init(kite__replay *w);

/* Step 3: 0 when |pn| is new, KITE__V2_ESTALE or KITE__V2_EDUP. */
int kite__replay_check(const kite__replay *w, uint64_t pn);

/* Step 5: checks again and, when |pn| is new, records it: if it raises top
 * (none, or pn > top) the skipped numbers' bits are cleared (all of them
 * with no top or a jump of 1024 or more) and top = pn; then pn's bit is
 * set. Returns 1 when pn raised top (what moves a session's peer address,
 * section 7), 0 when it was new below top, or KITE__V2_ESTALE /
 * KITE__V2_EDUP with nothing recorded. */
int kite__replay_record(kite__replay *w, uint64_t pn);

#endif
