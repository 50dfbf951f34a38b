/*
 * The Prometheus text writer: exact lines, escaping, number forms, refused
 * names, and the 1 MiB bound (whole lines only, never a cut one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ops/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void family_and_samples(void **state) {
  (void)state;
  kite__prom p;
  kite__prom_init(&p);
  kite__prom_family(&p, "kite_sessions", "gauge", "sessions open now");
  kite__prom_sample(&p, "kite_sessions", NULL, NULL, 12);
  kite__prom_family(&p, "kite_closed_total", "counter", NULL);
  kite__prom_sample(&p, "kite_closed_total", "reason", "idle", 3);
  assert_string_equal(p.buf, "# HELP kite_sessions sessions open now\n"
                             "# TYPE kite_sessions gauge\n"
                             "kite_sessions 12\n"
                             "# TYPE kite_closed_total counter\n"
                             "kite_closed_total{reason=\"idle\"} 3\n");
  assert_int_equal(p.len, strlen(p.buf));
  assert_false(p.oom);
  assert_false(p.invalid);
  /* A reset keeps the allocation and starts over. */
  char *buf = p.buf;
  kite__prom_reset(&p);
  assert_int_equal(p.len, 0);
  kite__prom_sample(&p, "x", NULL, NULL, 1);
  assert_ptr_equal(p.buf, buf);
  assert_string_equal(p.buf, "x 1\n");
  kite__prom_free(&p);
}

static void escaping(void **state) {
  (void)state;
  kite__prom p;
  kite__prom_init(&p);
  kite__prom_family(&p, "m", "counter", "a \\ b\nc \"q\"");
  kite__prom_sample(&p, "m", "l", "x\\y\n\"z\"", 1);
  assert_string_equal(p.buf, "# HELP m a \\\\ b\\nc \"q\"\n"
                             "# TYPE m counter\n"
                             "m{l=\"x\\\\y\\n\\\"z\\\"\"} 1\n");
  kite__prom_free(&p);
}

static const char *value(double v, char *out, size_t cap) {
  kite__prom p;
  kite__prom_init(&p);
  kite__prom_sample(&p, "v", NULL, NULL, v);
  snprintf(out, cap, "%s", p.buf + 2); /* after "v " */
  out[strlen(out) - 1] = 0;            /* the newline */
  kite__prom_free(&p);
  return out;
}

static void numbers(void **state) {
  (void)state;
  char b[64];
  assert_string_equal(value(0, b, sizeof(b)), "0");
  assert_string_equal(value(-0.0, b, sizeof(b)), "0");
  assert_string_equal(value(1234567, b, sizeof(b)), "1234567");
  assert_string_equal(value(9007199254740992.0, b, sizeof(b)), "9007199254740992");
  assert_string_equal(value(-42, b, sizeof(b)), "-42");
  assert_string_equal(value(0.1, b, sizeof(b)), "0.1");
  assert_string_equal(value(1e20, b, sizeof(b)), "1e+20");
  assert_string_equal(value(NAN, b, sizeof(b)), "NaN");
  assert_string_equal(value(INFINITY, b, sizeof(b)), "+Inf");
  assert_string_equal(value(-INFINITY, b, sizeof(b)), "-Inf");
  assert_true(strtod(value(1.0 / 3, b, sizeof(b)), NULL) == 1.0 / 3);
}

static void bad_names_write_nothing(void **state) {
  (void)state;
  kite__prom p;
  kite__prom_init(&p);
  assert_true(kite__prom_name_ok("a:b_c9"));
  assert_false(kite__prom_name_ok("9a"));
  assert_false(kite__prom_name_ok("a-b"));
  assert_false(kite__prom_name_ok(""));
  kite__prom_family(&p, "bad name", "counter", "h");
  assert_true(p.invalid);
  assert_int_equal(p.len, 0);
  kite__prom_reset(&p);
  kite__prom_family(&p, "m", "histogram", "h");
  assert_true(p.invalid);
  kite__prom_reset(&p);
  kite__prom_sample(&p, "m", "__reserved", "v", 1);
  assert_true(p.invalid);
  kite__prom_reset(&p);
  kite__prom_sample(&p, "m", "l", NULL, 1);
  assert_true(p.invalid);
  assert_int_equal(p.len, 0);
  kite__prom_free(&p);
}

static void bounded_whole_lines(void **state) {
  (void)state;
  kite__prom p;
  kite__prom_init(&p);
  char big[1000];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  size_t lines = 0;
  while (!p.oom) {
    kite__prom_sample(&p, "m", "l", big, 1);
    lines += !p.oom;
  }
  assert_true(p.len < KITE__PROM_MAX);
  assert_true(p.cap <= KITE__PROM_MAX);
  /* Every line there is whole. */
  size_t line = strlen("m{l=\"\"} 1\n") + strlen(big);
  assert_int_equal(p.len, lines * line);
  assert_int_equal(p.buf[p.len - 1], '\n');
  /* Once over, nothing more is written, even a short line. */
  size_t len = p.len;
  kite__prom_sample(&p, "m", NULL, NULL, 1);
  assert_int_equal(p.len, len);
  kite__prom_reset(&p);
  assert_false(p.oom);
  kite__prom_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(family_and_samples),
      cmocka_unit_test(escaping),
      cmocka_unit_test(numbers),
      cmocka_unit_test(bad_names_write_nothing),
      cmocka_unit_test(bounded_whole_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
