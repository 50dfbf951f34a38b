/*
 * Logging: a line is cut at 512 bytes, never overrun, and levels below the
 * minimum are skipped; the rate limiter lets one line a second through and
 * counts the rest, across the 32-bit clock's wrap, and its flush reports a
 * burst held back once the second is over (fake clock throughout).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/log.h"

#include <stdio.h>
#include <string.h>

static char last[1024];
static int lines;

static void sink(void *user, kite_log_level level, const char *msg) {
  (void)user; (void)level;
  lines++;
  snprintf(last, sizeof(last), "%s", msg);
}

static void levels_and_length(void **state) {
  (void)state;
  kite__log log;
  kite__log_init(&log, sink, NULL, KITE_LOG_WARN);
  lines = 0;
  kite__logf(&log, KITE_LOG_INFO, "skipped %d", 1);
  assert_int_equal(lines, 0);
  kite__logf(&log, KITE_LOG_ERROR, "kept %d", 2);
  assert_int_equal(lines, 1);
  assert_string_equal(last, "kept 2");
  char big[2000];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  kite__logf(&log, KITE_LOG_WARN, "%s", big);
  assert_int_equal(strlen(last), 511);
}

static void one_line_a_second(void **state) {
  (void)state;
  kite__ratelog r = {0};
  uint32_t held = 99;
  uint32_t t = 0xFFFFFF00u; /* a second from here crosses the wrap */
  assert_true(kite__ratelog_allow(&r, t, &held));
  assert_int_equal(held, 0);
  for (int i = 0; i < 5; i++)
    assert_false(kite__ratelog_allow(&r, t + 100 * (uint32_t)i, &held));
  assert_false(kite__ratelog_allow(&r, t + 999, &held));
  assert_true(kite__ratelog_allow(&r, t + 1000, &held));
  assert_int_equal(held, 6);
  assert_true(kite__ratelog_allow(&r, t + 5000, &held));
  assert_int_equal(held, 0);
}

/* A line, then a burst, then silence: the burst's count comes out of the
 * flush once the second is over, not with some later line, and no line
 * ever says "0 more". */
static void flush_reports_the_burst(void **state) {
  (void)state;
  kite__ratelog r = {0};
  uint32_t held = 99;
  uint32_t t = 0xFFFFFE00u;
  assert_false(kite__ratelog_flush(&r, t, &held)); /* nothing yet */
  assert_true(kite__ratelog_allow(&r, t, &held));
  assert_int_equal(held, 0);
  char buf[48];
  assert_string_equal(kite__ratelog_tail(buf, sizeof(buf), held), "");
  for (int i = 1; i <= 7; i++)
    assert_false(kite__ratelog_allow(&r, t + 10 * (uint32_t)i, &held));
  for (uint32_t d = 0; d < 1000; d += 100)
    assert_false(kite__ratelog_flush(&r, t + d, &held)); /* not over yet */
  assert_true(kite__ratelog_flush(&r, t + 1000, &held)); /* across the wrap */
  assert_int_equal(held, 7);
  assert_false(kite__ratelog_flush(&r, t + 1001, &held)); /* said once */
  /* The flush was its second's line: the next event waits for the next. */
  assert_false(kite__ratelog_allow(&r, t + 1500, &held));
  assert_false(kite__ratelog_flush(&r, t + 1999, &held));
  assert_true(kite__ratelog_flush(&r, t + 2000, &held));
  assert_int_equal(held, 1);
  /* A quiet second: the flush says nothing and the next event goes out
   * at once, with nothing to add. */
  assert_false(kite__ratelog_flush(&r, t + 3000, &held));
  assert_true(kite__ratelog_allow(&r, t + 3001, &held));
  assert_int_equal(held, 0);
  /* An event that comes before the flush after its second still carries
   * the count in its own line. */
  assert_false(kite__ratelog_allow(&r, t + 3500, &held));
  assert_false(kite__ratelog_allow(&r, t + 3600, &held));
  assert_true(kite__ratelog_allow(&r, t + 4001, &held));
  assert_int_equal(held, 2);
  assert_string_equal(kite__ratelog_tail(buf, sizeof(buf), held),
                      " (2 more in the last second)");
  assert_false(kite__ratelog_flush(&r, t + 5001, &held));
}

/* A ratelog quiet for longer than half the 32-bit clock (24.8 days) still
 * lets the next line through, once a flush has seen it quiet. */
static void quiet_ratelog_survives_the_wrap(void **state) {
  (void)state;
  kite__ratelog r = {0};
  uint32_t held;
  assert_true(kite__ratelog_allow(&r, 0, &held));
  assert_false(kite__ratelog_flush(&r, 1000, &held)); /* quiet: forgotten */
  assert_true(kite__ratelog_allow(&r, 1000 + 0x80000000u + 10, &held));
  assert_int_equal(held, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(levels_and_length),
      cmocka_unit_test(one_line_a_second),
      cmocka_unit_test(flush_reports_the_burst),
      cmocka_unit_test(quiet_ratelog_survives_the_wrap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
