/*
 * When a shard holds back its next read (server/wake.h), on a fake clock:
 * never with the window off or after an iteration that served nothing;
 * after one that served two or more at once; after one that served one,
 * only when it began within a window of the previous one that served;
 * never after a read that filled a whole batch (more may be waiting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/wake.h"

static void off_never_holds(void **state) {
  (void)state;
  assert_false(kite__wake_hold(0, 64, 1000000, 999999, false));
  assert_false(kite__wake_hold(0, 1, 1000000, 999999, false));
}

static void nothing_served_never_holds(void **state) {
  (void)state; /* a timer or an inbox wake-up: no traffic to gather */
  assert_false(kite__wake_hold(500, 0, 1000000, 999900, false));
}

static void a_batch_holds(void **state) {
  (void)state; /* they queued up while it was away: dense */
  assert_true(kite__wake_hold(500, 2, 1000000, 0, false));
  assert_true(kite__wake_hold(500, 64, 1000000, 1000000 - 60000000, false));
}

static void one_holds_only_when_wakeups_come_fast(void **state) {
  (void)state;
  assert_true(kite__wake_hold(500, 1, 1000000, 1000000 - 499, false));
  assert_false(kite__wake_hold(500, 1, 1000000, 1000000 - 500, false));
  assert_false(kite__wake_hold(500, 1, 1000000, 1000000 - 10000, false));
  assert_false(kite__wake_hold(500, 1, 1000000, 0, false)); /* the first ever */
}

static void a_full_batch_never_holds(void **state) {
  (void)state; /* as batched as a read gets; maybe behind */
  assert_false(kite__wake_hold(500, 512, 1000000, 999900, true));
  assert_true(kite__wake_hold(500, 512, 1000000, 999900, false));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(off_never_holds),
      cmocka_unit_test(nothing_served_never_holds),
      cmocka_unit_test(a_batch_holds),
      cmocka_unit_test(one_holds_only_when_wakeups_come_fast),
      cmocka_unit_test(a_full_batch_never_holds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
