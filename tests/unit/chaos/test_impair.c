/*
 * kite-chaos's impairment model: the same seed makes the same decisions;
 * loss and duplication happen at their rates (within bounds wide enough
 * that a correct generator fails them less than once in 10^6 runs);
 * delay and jitter stay in range; reordering holds some back; a blackout
 * drops everything inside its window and nothing outside it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "impair.h"

#define N 200000

static void same_seed_same_fate(void **state) {
  (void)state;
  chaos_profile p = {.loss = 0.1, .dup = 0.1, .reorder = 0.1, .delay_ms = 5,
                     .jitter_ms = 20, .reorder_ms = 30};
  chaos_dir a, b, c;
  chaos_dir_init(&a, &p, 42, 1);
  chaos_dir_init(&b, &p, 42, 1);
  chaos_dir_init(&c, &p, 43, 1);
  int differ = 0;
  for (uint64_t t = 0; t < 10000; t++) {
    uint64_t x[2] = {0}, y[2] = {0}, z[2] = {0};
    int na = chaos_decide(&a, t, x), nb = chaos_decide(&b, t, y);
    int nc = chaos_decide(&c, t, z);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, sizeof(x));
    differ += na != nc || x[0] != z[0];
  }
  assert_true(differ > 1000); /* another seed, another run */
}

static void rates(void **state) {
  (void)state;
  chaos_profile p = {.loss = 0.05, .dup = 0.02};
  chaos_dir d;
  chaos_dir_init(&d, &p, 7, 2);
  int sent = 0;
  for (int i = 0; i < N; i++) {
    uint64_t at[2];
    sent += chaos_decide(&d, 1000, at);
  }
  /* 5% of 200,000 is 10,000 with a standard deviation near 97: +-6 sd. */
  assert_true(d.dropped > 9400 && d.dropped < 10600);
  /* 2% of the 190,000 that survive: 3,800, sd near 61. */
  assert_true(d.duplicated > 3430 && d.duplicated < 4170);
  assert_int_equal(sent, N - (int)d.dropped + (int)d.duplicated);
  assert_int_equal(d.seen, N);
}

static void delay_jitter_reorder(void **state) {
  (void)state;
  chaos_profile p = {.delay_ms = 10, .jitter_ms = 5, .reorder = 0.25, .reorder_ms = 100};
  chaos_dir d;
  chaos_dir_init(&d, &p, 1, 1);
  int held = 0, lo = 0, hi = 0;
  for (int i = 0; i < 10000; i++) {
    uint64_t at[2];
    assert_int_equal(chaos_decide(&d, 5000, at), 1);
    uint64_t wait = at[0] - 5000;
    if (wait >= 100) {
      held++;
      wait -= 100;
    }
    assert_true(wait >= 10 && wait <= 15);
    lo += wait == 10;
    hi += wait == 15;
  }
  assert_int_equal(held, (int)d.reordered);
  assert_true(held > 2200 && held < 2800);
  assert_true(lo > 0 && hi > 0); /* both ends of the jitter range occur */
}

static void blackout_windows(void **state) {
  (void)state;
  chaos_profile p = {.blackout_every_ms = 1000, .blackout_ms = 200};
  chaos_dir d;
  chaos_dir_init(&d, &p, 1, 1);
  for (uint64_t t = 0; t < 5000; t++) {
    uint64_t at[2];
    int n = chaos_decide(&d, t, at);
    assert_int_equal(n, t % 1000 < 200 ? 0 : 1);
    if (n)
      assert_int_equal(at[0], t); /* no delay configured: now */
  }
  assert_int_equal(d.blacked_out, 1000);
  assert_int_equal(d.dropped, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(same_seed_same_fate),
      cmocka_unit_test(rates),
      cmocka_unit_test(delay_jitter_reorder),
      cmocka_unit_test(blackout_windows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
