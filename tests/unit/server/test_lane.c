/*
 * The snapshot lane's pieces (issue 18): the per-session byte budget, the
 * sender's and receiver's sequencing across the 16-bit wrap with
 * reordering and duplicates, and the shard's slots for messages from
 * other threads (taken and given back by many threads at once).
 */
#include "server/session_v2.h"
#include "server/upool.h"

#include "proto/v2seq.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void budget_refills_up_to_a_second(void **state) {
  (void)state;
  kite__v2sess v;
  memset(&v, 0, sizeof(v));
  uint32_t t = UINT32_MAX - 100; /* the clock wraps on the way */
  v.budget = 1000;
  v.budget_ms = t;
  assert_true(kite__v2_budget_take(&v, t, 1000, 600));
  assert_false(kite__v2_budget_take(&v, t, 1000, 600)); /* 400 left */
  assert_int_equal(v.budget, 400);
  assert_true(kite__v2_budget_take(&v, t + 300, 1000, 600)); /* +300 */
  assert_int_equal(v.budget, 100);
  assert_false(kite__v2_budget_take(&v, t + 300, 1000, 101));
  /* Ten seconds idle: a second's worth, never more. */
  assert_true(kite__v2_budget_take(&v, t + 10300, 1000, 1000));
  assert_false(kite__v2_budget_take(&v, t + 10300, 1000, 1));
  assert_int_equal(v.budget, 0);
}

/* The receiver delivers a sequenced stream's messages in increasing order
 * only, across 65535 -> 0, whatever the order and copies they come in. */
static uint16_t next(kite__v2seq_out *out, uint16_t msg_id) {
  uint16_t seq = 0xBEEF;
  assert_int_equal(kite__v2seq_next(out, msg_id, &seq), 0);
  return seq;
}

static void sequencing_across_the_wrap(void **state) {
  (void)state;
  kite__v2seq_out out;
  kite__v2seq in;
  kite__v2seq_out_init(&out);
  kite__v2seq_init(&in);
  /* The sender counts from 0, +1 each, per msg_id. */
  assert_int_equal(next(&out, 7), 0);
  assert_int_equal(next(&out, 7), 1);
  assert_int_equal(next(&out, 8), 0);
  for (int i = 2; i < 65530; i++)
    next(&out, 7);
  enum { N = 4000 };
  static uint16_t sent[N], wire[2 * N];
  for (int i = 0; i < N; i++)
    sent[i] = next(&out, 7); /* 65530 .. wraps .. */
  assert_int_equal(sent[0], 65530);
  assert_int_equal(sent[6], 0);
  /* The wire: reordered within 8, every 5th duplicated later. */
  uint32_t rng = 12345, n = 0;
  for (int i = 0; i < N; i++) {
    wire[n++] = sent[i];
    if (i % 5 == 0)
      wire[n++] = sent[i];
  }
  for (uint32_t i = 0; i + 1 < n; i++) {
    rng = rng * 1103515245u + 12345u;
    uint32_t j = i + (rng >> 16) % 8;
    if (j < n) {
      uint16_t t = wire[i];
      wire[i] = wire[j];
      wire[j] = t;
    }
  }
  int delivered = 0;
  int32_t last = -1; /* position in |sent| of the newest delivered */
  for (uint32_t i = 0; i < n; i++) {
    if (!kite__v2seq_accept(&in, 7, wire[i]))
      continue;
    /* Its position: seq 65530 + k (mod 2^16) is sent[k]. */
    int32_t k = (int32_t)(uint16_t)(wire[i] - 65530u);
    assert_true(k > last); /* never backwards, never twice */
    last = k;
    delivered++;
  }
  assert_true(delivered >= N / 8); /* the late ones dropped, not all */
  assert_int_equal(last, N - 1); /* the newest got through */
  /* In order with copies: all delivered once. */
  kite__v2seq_init(&in);
  delivered = 0;
  for (int i = 0; i < N; i++) {
    delivered += kite__v2seq_accept(&in, 7, sent[i]);
    assert_false(kite__v2seq_accept(&in, 7, sent[i]));
  }
  assert_int_equal(delivered, N);
  kite__v2seq_out_free(&out);
}

static void slots_run_out_and_come_back(void **state) {
  (void)state;
  kite__upool p;
  assert_int_equal(kite__upool_init(&p, 16, 1400), 0);
  kite__cmd *c[16];
  for (int i = 0; i < 16; i++) {
    c[i] = kite__upool_take(&p);
    assert_non_null(c[i]);
    assert_true(kite__upool_owns(&p, c[i]));
    assert_int_equal(c[i]->type, KITE__CMD_UNRELIABLE);
    memset(c[i]->data, i, 1400); /* the whole body is the slot's */
  }
  assert_null(kite__upool_take(&p));
  kite__upool_give(&p, c[3]);
  assert_ptr_equal(kite__upool_take(&p), c[3]);
  for (int i = 0; i < 16; i++)
    kite__upool_give(&p, c[i]);
  kite__cmd stray;
  assert_false(kite__upool_owns(&p, &stray));
  kite__upool_free(&p);
}

/* Many threads take and give at once: a slot is never handed to two. */
enum { THREADS = 4, ROUNDS = 20000, SLOTS = 8 };
static kite__upool shared;
static _Atomic uint32_t held[SLOTS];
static _Atomic uint32_t twice;

static void *churn(void *arg) {
  (void)arg;
  for (int r = 0; r < ROUNDS; r++) {
    kite__cmd *c = kite__upool_take(&shared);
    if (!c)
      continue;
    size_t i = (size_t)((uint8_t *)c - shared.mem) / shared.stride;
    if (atomic_fetch_add(&held[i], 1) != 0)
      atomic_fetch_add(&twice, 1);
    atomic_fetch_sub(&held[i], 1);
    kite__upool_give(&shared, c);
  }
  return NULL;
}

static void slots_under_contention(void **state) {
  (void)state;
  assert_int_equal(kite__upool_init(&shared, SLOTS, 64), 0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(atomic_load(&twice), 0);
  int n = 0;
  while (kite__upool_take(&shared))
    n++;
  assert_int_equal(n, SLOTS); /* none lost */
  kite__upool_free(&shared);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(budget_refills_up_to_a_second),
      cmocka_unit_test(sequencing_across_the_wrap),
      cmocka_unit_test(slots_run_out_and_come_back),
      cmocka_unit_test(slots_under_contention),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
