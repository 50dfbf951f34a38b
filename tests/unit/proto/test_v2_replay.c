/*
 * The replay window (PROTOCOL-v2.md section 4): its edges, jumps, the
 * wrap of its bit indexes, and a long random run against a model that is
 * the contract's definition word for word (a set of every number
 * recorded).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "proto/replay.h"
#include "proto/v2.h"

static void empty_takes_anything_once(void **state) {
  (void)state;
  kite__replay w;
  kite__replay_init(&w);
  assert_int_equal(kite__replay_check(&w, 0), 0);
  assert_int_equal(kite__replay_check(&w, 123456), 0);
  assert_int_equal(kite__replay_record(&w, 0), 1);
  assert_int_equal(kite__replay_check(&w, 0), KITE__V2_EDUP);
  assert_int_equal(kite__replay_record(&w, 0), KITE__V2_EDUP);
  assert_int_equal(kite__replay_record(&w, 1), 1);
  assert_int_equal(kite__replay_record(&w, 1), KITE__V2_EDUP);

  /* A first number far from 0: the numbers below it within 1023 are new. */
  kite__replay_init(&w);
  assert_int_equal(kite__replay_record(&w, 5000), 1);
  assert_int_equal(kite__replay_check(&w, 5000 - 1023), 0);
  assert_int_equal(kite__replay_check(&w, 5000 - 1024), KITE__V2_ESTALE);
  assert_int_equal(kite__replay_record(&w, 4999), 0);
  assert_int_equal(kite__replay_record(&w, 4999), KITE__V2_EDUP);
}

static void window_edges(void **state) {
  (void)state;
  kite__replay w;
  kite__replay_init(&w);
  assert_int_equal(kite__replay_record(&w, 2000), 1);
  assert_int_equal(kite__replay_record(&w, 2000 - 1023), 0); /* oldest kept */
  assert_int_equal(kite__replay_record(&w, 2000 - 1024), KITE__V2_ESTALE);
  assert_int_equal(kite__replay_record(&w, 0), KITE__V2_ESTALE);
  assert_int_equal(kite__replay_check(&w, 2000 - 1023), KITE__V2_EDUP);

  /* Raising top by one pushes the oldest out: 977 becomes stale. */
  assert_int_equal(kite__replay_record(&w, 2001), 1);
  assert_int_equal(kite__replay_check(&w, 977), KITE__V2_ESTALE);
  assert_int_equal(kite__replay_check(&w, 978), 0);
}

/* A record below top must not touch top or the other bits (the
 * unsigned difference pn - top wraps there). */
static void a_late_number_clears_nothing(void **state) {
  (void)state;
  kite__replay w;
  kite__replay_init(&w);
  for (uint64_t pn = 100; pn <= 110; pn++)
    assert_int_equal(kite__replay_record(&w, pn), 1);
  assert_int_equal(kite__replay_record(&w, 50), 0);
  assert_int_equal(w.top, 110);
  for (uint64_t pn = 100; pn <= 110; pn++)
    assert_int_equal(kite__replay_check(&w, pn), KITE__V2_EDUP);
  assert_int_equal(kite__replay_check(&w, 50), KITE__V2_EDUP);
  assert_int_equal(kite__replay_check(&w, 51), 0);
}

static void jumps_clear_the_skipped(void **state) {
  (void)state;
  kite__replay w;
  kite__replay_init(&w);
  for (uint64_t pn = 0; pn <= 10; pn++)
    assert_int_equal(kite__replay_record(&w, pn), 1);
  /* 1030 shares bit 6 with 6; 6 is now stale, 7..10 still recorded. */
  assert_int_equal(kite__replay_record(&w, 1030), 1);
  assert_int_equal(kite__replay_check(&w, 6), KITE__V2_ESTALE);
  for (uint64_t pn = 7; pn <= 10; pn++)
    assert_int_equal(kite__replay_check(&w, pn), KITE__V2_EDUP);
  for (uint64_t pn = 11; pn < 1030; pn++)
    assert_int_equal(kite__replay_check(&w, pn), 0);

  /* A jump of exactly 1023 keeps top's bit; of 1024 clears all. */
  kite__replay_init(&w);
  assert_int_equal(kite__replay_record(&w, 0), 1);
  assert_int_equal(kite__replay_record(&w, 1023), 1);
  assert_int_equal(kite__replay_check(&w, 0), KITE__V2_EDUP);
  assert_int_equal(kite__replay_record(&w, 1023 + 1024), 1);
  assert_int_equal(kite__replay_check(&w, 1023), KITE__V2_ESTALE);
  assert_int_equal(kite__replay_check(&w, 1024), 0);
  assert_int_equal(kite__replay_check(&w, 2046), 0);

  /* Huge jumps, to the very end of the number space. */
  assert_int_equal(kite__replay_record(&w, KITE__V2_PN_LIMIT - 1), 1);
  assert_int_equal(kite__replay_check(&w, KITE__V2_PN_LIMIT - 1),
                   KITE__V2_EDUP);
  assert_int_equal(kite__replay_check(&w, KITE__V2_PN_LIMIT - 1024), 0);
  assert_int_equal(kite__replay_check(&w, KITE__V2_PN_LIMIT - 1025),
                   KITE__V2_ESTALE);
  assert_int_equal(kite__replay_record(&w, UINT64_MAX), 1);
  assert_int_equal(kite__replay_check(&w, UINT64_MAX), KITE__V2_EDUP);
  assert_int_equal(kite__replay_check(&w, UINT64_MAX - 1023), 0);
  assert_int_equal(kite__replay_check(&w, 0), KITE__V2_ESTALE);
}

/* The model: the contract's definition over the set of recorded numbers. */
#define MODEL_MAX 200000
static uint8_t seen[MODEL_MAX];

static int model_check(bool have_top, uint64_t top, uint64_t pn) {
  if (!have_top || pn > top)
    return 0;
  if (top - pn >= 1024)
    return KITE__V2_ESTALE;
  return seen[pn] ? KITE__V2_EDUP : 0;
}

static void random_run_matches_the_model(void **state) {
  (void)state;
  srand(15);
  memset(seen, 0, sizeof(seen));
  kite__replay w;
  kite__replay_init(&w);
  bool have_top = false;
  uint64_t top = 0, base = 0;
  for (int i = 0; i < 300000; i++) {
    /* Mostly in order with reordering and copies; sometimes a jump. */
    int r = rand() % 1000;
    uint64_t pn;
    if (r < 5)
      pn = base + 1000 + (uint64_t)(rand() % 1500);
    else if (r < 300)
      pn = base > 1200 ? base - (uint64_t)(rand() % 1200) : (uint64_t)(rand() % 1200);
    else
      pn = base + (uint64_t)(rand() % 40);
    if (pn >= MODEL_MAX)
      break;
    int want = model_check(have_top, top, pn);
    assert_int_equal(kite__replay_check(&w, pn), want);
    int rc = kite__replay_record(&w, pn);
    if (want != 0) {
      assert_int_equal(rc, want);
      continue;
    }
    assert_int_equal(rc, !have_top || pn > top ? 1 : 0);
    seen[pn] = 1;
    if (!have_top || pn > top)
      top = pn;
    have_top = true;
    if (pn > base)
      base = pn;
  }
  assert_true(top > 10000); /* the run went far: many bit-index wraps */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(empty_takes_anything_once),
      cmocka_unit_test(window_edges),
      cmocka_unit_test(a_late_number_clears_nothing),
      cmocka_unit_test(jumps_clear_the_skipped),
      cmocka_unit_test(random_run_matches_the_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
