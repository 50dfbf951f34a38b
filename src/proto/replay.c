#include "proto/replay.h"

#include <string.h>

#include "proto/v2.h"

static inline uint64_t *word(kite__replay *w, uint64_t n) {
  return &w->bits[(n / 64) % KITE__REPLAY_WORDS];
}

static inline uint64_t bit(uint64_t n) {
  return UINT64_C(1) << (n % 64);
}

void kite__replay_init(kite__replay *w) {
  memset(w, 0, sizeof(*w));
}

int kite__replay_check(const kite__replay *w, uint64_t pn) {
  if (!w->have_top || pn > w->top)
    return 0;
  if (w->top - pn >= KITE__REPLAY_WIDTH)
    return KITE__V2_ESTALE;
  if (w->bits[(pn / 64) % KITE__REPLAY_WORDS] & bit(pn))
    return KITE__V2_EDUP;
  return 0;
}

int kite__replay_record(kite__replay *w, uint64_t pn) {
  int rc = kite__replay_check(w, pn);
  if (rc != 0)
    return rc;
  int raised = 0;
  if (!w->have_top || (pn > w->top && pn - w->top >= KITE__REPLAY_WIDTH)) {
    memset(w->bits, 0, sizeof(w->bits));
    raised = 1;
  } else if (pn > w->top) {
    /* Clear top+1 .. pn-1, whole words where aligned: at most 1023 bits,
     * so at most 16 words and 126 single bits. pn's own bit is set below. */
    uint64_t n = w->top + 1;
    while (n < pn) {
      if (n % 64 == 0 && pn - n >= 64) {
        *word(w, n) = 0;
        n += 64;
      } else {
        *word(w, n) &= ~bit(n);
        n++;
      }
    }
    raised = 1;
  }
  if (raised) {
    w->top = pn;
    w->have_top = true;
  }
  *word(w, pn) |= bit(pn);
  return raised;
}
