/*
 * A shard's rate-limited warnings as the loop drives them, on a fake clock
 * (sh->now) with the log captured: a refused-handshake line, the burst
 * after it reported by kite__shard_logs_flush() once the second is over,
 * and never a line that says "0 more".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/server_internal.h"

#include <stdio.h>
#include <string.h>

static char lines[8][512];
static int nlines;

static void sink(void *user, kite_log_level level, const char *msg) {
  (void)user;
  assert_int_equal(level, KITE_LOG_WARN);
  assert_true(nlines < 8);
  snprintf(lines[nlines++], sizeof(lines[0]), "%s", msg);
}

static void burst_reported_when_its_second_ends(void **state) {
  (void)state;
  static kite_server srv; /* large: not on the stack */
  static kite__shard sh;
  memset(&srv, 0, sizeof(srv));
  memset(&sh, 0, sizeof(sh));
  kite__log_init(&srv.log, sink, NULL, KITE_LOG_DEBUG);
  sh.srv = &srv;
  sh.index = 3;
  kite__addr from;
  assert_int_equal(kite__addr_parse(&from, "127.0.0.1:4000"), 0);
  nlines = 0;

  sh.now = 5000;
  kite__handshake_log_refused(&sh, "", &from, "server full");
  assert_int_equal(nlines, 1);
  assert_string_equal(lines[0], "handshake from 127.0.0.1:4000 refused: server full");
  for (int i = 0; i < 40; i++) {
    sh.now = 5000 + 20 * (uint32_t)i;
    kite__handshake_log_refused(&sh, "tcp ", &from, "server full");
    kite__shard_logs_flush(&sh); /* once per loop iteration */
  }
  assert_int_equal(nlines, 1); /* held back within the second */
  sh.now = 5999;
  kite__shard_logs_flush(&sh);
  assert_int_equal(nlines, 1);
  sh.now = 6000; /* the second is over; no further refusal comes */
  kite__shard_logs_flush(&sh);
  assert_int_equal(nlines, 2);
  assert_string_equal(lines[1], "shard 3: 40 more handshakes refused in the last second");
  for (uint32_t t = 6001; t < 9000; t += 250)
    sh.now = t, kite__shard_logs_flush(&sh);
  assert_int_equal(nlines, 2); /* said once; quiet since */
  sh.now = 9000;
  kite__handshake_log_refused(&sh, "", &from, "server full");
  assert_int_equal(nlines, 3);
  assert_null(strstr(lines[2], "more"));
  for (int i = 0; i < 3; i++)
    assert_null(strstr(lines[i], " 0 more"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(burst_reported_when_its_second_ends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
