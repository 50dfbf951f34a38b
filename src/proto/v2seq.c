#include "proto/v2seq.h"

#include <stdlib.h>
#include <string.h>

#include "kite/error.h"

void kite__v2seq_init(kite__v2seq *s) {
  memset(s, 0, sizeof(*s));
}

bool kite__v2seq_accept(kite__v2seq *s, uint16_t msg_id, uint16_t seq) {
  unsigned i = 0;
  while (i < s->n && s->slot[i].msg_id != msg_id)
    i++;
  bool deliver = true;
  uint16_t newest = seq;
  if (i < s->n) {
    newest = s->slot[i].newest;
    if ((int16_t)(uint16_t)(seq - newest) > 0)
      newest = seq;
    else
      deliver = false;
  } else if (s->n < KITE__V2SEQ_SLOTS) {
    i = s->n++;
  } else {
    i = KITE__V2SEQ_SLOTS - 1; /* the least recently used goes */
    s->forgotten++;
  }
  /* Any message of a msg_id makes it the most recently used: slots
   * 0..i-1 shift down by one. */
  memmove(&s->slot[1], &s->slot[0], i * sizeof(s->slot[0]));
  s->slot[0].msg_id = msg_id;
  s->slot[0].newest = newest;
  return deliver;
}

void kite__v2seq_out_init(kite__v2seq_out *o) {
  memset(o, 0, sizeof(*o));
}

void kite__v2seq_out_free(kite__v2seq_out *o) {
  free(o->e);
  kite__v2seq_out_init(o);
}

int kite__v2seq_next(kite__v2seq_out *o, uint16_t msg_id, uint16_t *seq) {
  /* The first entry whose msg_id is >= |msg_id|. */
  uint32_t lo = 0, hi = o->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (o->e[mid].msg_id < msg_id)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < o->n && o->e[lo].msg_id == msg_id) {
    *seq = o->e[lo].next++; /* uint16_t: 65535 wraps to 0 */
    return 0;
  }
  if (o->n == o->cap) { /* n < 65536: one entry per msg_id */
    uint32_t cap = o->cap ? o->cap * 2 : KITE__V2SEQ_OUT_MIN;
    void *e = realloc(o->e, cap * sizeof(o->e[0]));
    if (!e)
      return KITE_ENOMEM;
    o->e = e;
    o->cap = cap;
  }
  memmove(&o->e[lo + 1], &o->e[lo], (o->n - lo) * sizeof(o->e[0]));
  o->e[lo].msg_id = msg_id;
  o->e[lo].next = 1;
  o->n++;
  *seq = 0;
  return 0;
}
