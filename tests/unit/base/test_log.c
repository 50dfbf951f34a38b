/*
 * Logging: a line is cut at 512 bytes, never overrun, and levels below the
 * minimum are skipped; the rate limiter lets one line a second through and
 * counts the rest, across the 32-bit clock's wrap.
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(levels_and_length),
      cmocka_unit_test(one_line_a_second),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
