/*
 * The sender's sequencing table (PROTOCOL-v2.md section 6: the seq is the
 * sender's count per session, direction and msg_id, from 0, +1 each; only
 * the receiver may forget): every msg_id keeps its count however many
 * others are used, across the 16-bit wrap, and the table grows only when
 * a msg_id is first used.
 */
#include "proto/v2seq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static uint16_t next(kite__v2seq_out *o, uint16_t msg_id) {
  uint16_t seq = 0xBEEF;
  assert_int_equal(kite__v2seq_next(o, msg_id, &seq), 0);
  return seq;
}

/* More msg_ids than the receiver's 64 slots, in an order that inserts at
 * the front, the back and the middle: none starts again at 0. */
static void many_msg_ids_never_forgotten(void **state) {
  (void)state;
  kite__v2seq_out o;
  kite__v2seq_out_init(&o);
  enum { IDS = 1000, ROUNDS = 5 };
  for (int r = 0; r < ROUNDS; r++) {
    for (uint32_t k = 0; k < IDS; k++) {
      /* A permutation of 0..IDS-1 (7919 is prime to IDS), scaled to
       * spread over the 16 bits. */
      uint16_t id = (uint16_t)(((k * 7919u) % IDS) * 65u + 1u);
      assert_int_equal(next(&o, id), r);
    }
  }
  assert_int_equal(o.n, IDS);
  for (uint32_t i = 1; i < o.n; i++) /* sorted, each once */
    assert_true(o.e[i - 1].msg_id < o.e[i].msg_id);
  kite__v2seq_out_free(&o);
  assert_null(o.e);
  assert_int_equal(o.n, 0);
  /* Freed, it is empty and usable again: a count from 0. */
  assert_int_equal(next(&o, 42), 0);
  kite__v2seq_out_free(&o);
}

/* Every one of the 65536 msg_ids (the bound: one entry each), the
 * extremes included, and 65535 wrapping to 0 for one of them. */
static void every_msg_id_and_the_wrap(void **state) {
  (void)state;
  kite__v2seq_out o;
  kite__v2seq_out_init(&o);
  for (uint32_t id = 0; id < 65536; id++) /* ascending: each at the end */
    assert_int_equal(next(&o, (uint16_t)id), 0);
  assert_int_equal(o.n, 65536);
  assert_int_equal(o.cap, 65536); /* doubling from 8 lands on it */
  for (uint32_t i = 1; i < 65535; i++)
    assert_int_equal(next(&o, 0xFFFF), i);
  assert_int_equal(next(&o, 0xFFFF), 65535);
  assert_int_equal(next(&o, 0xFFFF), 0); /* wraps */
  assert_int_equal(next(&o, 0xFFFF), 1);
  assert_int_equal(next(&o, 0), 1); /* the others kept theirs */
  assert_int_equal(next(&o, 0x8000), 1);
  assert_int_equal(o.n, 65536);
  assert_int_equal(o.cap, 65536);
  kite__v2seq_out_free(&o);
}

/* It grows only when a msg_id is first used: by doubling from
 * KITE__V2SEQ_OUT_MIN, never for a msg_id already in it. */
static void grows_only_for_a_new_msg_id(void **state) {
  (void)state;
  kite__v2seq_out o;
  kite__v2seq_out_init(&o);
  assert_null(o.e);
  assert_int_equal(o.cap, 0);
  assert_int_equal(next(&o, 500), 0);
  assert_int_equal(o.cap, KITE__V2SEQ_OUT_MIN);
  for (uint16_t id = 1; id < KITE__V2SEQ_OUT_MIN; id++)
    next(&o, id);
  assert_int_equal(o.n, KITE__V2SEQ_OUT_MIN);
  assert_int_equal(o.cap, KITE__V2SEQ_OUT_MIN);
  void *e = o.e;
  for (int i = 0; i < 10000; i++) /* known msg_ids: no growth */
    next(&o, (uint16_t)(1 + i % (KITE__V2SEQ_OUT_MIN - 1)));
  assert_ptr_equal(o.e, e);
  assert_int_equal(o.cap, KITE__V2SEQ_OUT_MIN);
  next(&o, 9999); /* one more: doubled */
  assert_int_equal(o.n, KITE__V2SEQ_OUT_MIN + 1);
  assert_int_equal(o.cap, 2 * KITE__V2SEQ_OUT_MIN);
  assert_int_equal(next(&o, 500), 1);
  assert_int_equal(next(&o, 9999), 1);
  kite__v2seq_out_free(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(many_msg_ids_never_forgotten),
      cmocka_unit_test(every_msg_id_and_the_wrap),
      cmocka_unit_test(grows_only_for_a_new_msg_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
