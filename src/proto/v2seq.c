#include "proto/v2seq.h"

#include <string.h>

void kite__v2seq_init(kite__v2seq *s) {
  memset(s, 0, sizeof(*s));
}

/* Slot |i| (or a new one at the end, the least recently used evicted when
 * full) becomes slot 0 with |msg_id| and |value|. */
static void use(kite__v2seq *s, unsigned i, uint16_t msg_id, uint16_t value) {
  if (i >= s->n) {
    if (s->n < KITE__V2SEQ_SLOTS) {
      i = s->n++;
    } else {
      i = KITE__V2SEQ_SLOTS - 1;
      s->forgotten++;
    }
  }
  memmove(&s->slot[1], &s->slot[0], i * sizeof(s->slot[0]));
  s->slot[0].msg_id = msg_id;
  s->slot[0].newest = value;
}

uint16_t kite__v2seq_next(kite__v2seq *s, uint16_t msg_id) {
  unsigned i = 0;
  while (i < s->n && s->slot[i].msg_id != msg_id)
    i++;
  uint16_t seq = i < s->n ? (uint16_t)(s->slot[i].newest + 1) : 0;
  use(s, i, msg_id, seq);
  return seq;
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
