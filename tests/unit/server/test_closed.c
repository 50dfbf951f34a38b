/*
 * Sessions just closed (server/closed.h): found by conv, answered only for
 * the peer's own address, within linger, one per resend interval; the
 * ring forgets the oldest when it wraps, and says whether it was still
 * lingering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/closed.h"

#include "proto/control.h"

static kite__addr addr(const char *text) {
  kite__addr a;
  assert_int_equal(kite__addr_parse(&a, text), 0);
  return a;
}

static const uint8_t token[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const kite__local local = {0};

static void answers_its_peer_within_linger(void **state) {
  (void)state;
  kite__closed c;
  assert_int_equal(kite__closed_init(&c, 4, 1000), 0);
  kite__addr peer = addr("127.0.0.1:5000"), other = addr("127.0.0.1:5001");
  assert_false(kite__closed_add(&c, 0x1234501, &peer, &local, token, 4, 100));
  /* The three copies just went: not again at once. */
  assert_null(kite__closed_heard(&c, 0x1234501, &peer, 24, 150));
  const kite__closed_entry *e = kite__closed_heard(&c, 0x1234501, &peer, 24, 200);
  assert_non_null(e);
  assert_int_equal(e->reason, 4);
  assert_memory_equal(e->token, token, 8);
  assert_null(kite__closed_heard(&c, 0x1234501, &peer, 24, 250)); /* too soon */
  assert_non_null(kite__closed_heard(&c, 0x1234501, &peer, 24, 300));
  assert_null(kite__closed_heard(&c, 0x1234501, &other, 24, 900));  /* stranger */
  assert_null(kite__closed_heard(&c, 0x1234502, &peer, 24, 900));   /* other conv */
  assert_null(kite__closed_heard(&c, 0x1234501, &peer,
                                 kite__ctrl_size(KITE__CTRL_CLOSE) - 1, 900));
  assert_non_null(kite__closed_heard(&c, 0x1234501, &peer, 24, 1099));
  assert_null(kite__closed_heard(&c, 0x1234501, &peer, 24, 1100)); /* expired */
  kite__closed_free(&c);
}

static void ring_forgets_the_oldest(void **state) {
  (void)state;
  kite__closed c;
  assert_int_equal(kite__closed_init(&c, 2, 1000), 0);
  kite__addr peer = addr("127.0.0.1:5000");
  assert_false(kite__closed_add(&c, 0x101, &peer, &local, token, 1, 0));
  assert_false(kite__closed_add(&c, 0x201, &peer, &local, token, 1, 0));
  /* Wraps while 0x101 still lingers: forgotten, and said so. */
  assert_true(kite__closed_add(&c, 0x301, &peer, &local, token, 1, 10));
  assert_null(kite__closed_heard(&c, 0x101, &peer, 24, 500));
  assert_non_null(kite__closed_heard(&c, 0x201, &peer, 24, 500));
  assert_non_null(kite__closed_heard(&c, 0x301, &peer, 24, 500));
  /* Past its linger, the overwritten one was not lingering. */
  assert_false(kite__closed_add(&c, 0x401, &peer, &local, token, 1, 2000));
  /* The same conv closing again takes its old entry, newest reason. */
  assert_false(kite__closed_add(&c, 0x401, &peer, &local, token, 3, 2000));
  const kite__closed_entry *e = kite__closed_heard(&c, 0x401, &peer, 24, 2200);
  assert_non_null(e);
  assert_int_equal(e->reason, 3);
  kite__closed_free(&c);
}

static void off_keeps_nothing(void **state) {
  (void)state;
  kite__closed c;
  assert_int_equal(kite__closed_init(&c, 0, 1000), 0);
  kite__addr peer = addr("127.0.0.1:5000");
  assert_false(kite__closed_add(&c, 0x101, &peer, &local, token, 1, 0));
  assert_null(kite__closed_heard(&c, 0x101, &peer, 24, 500));
  kite__closed_free(&c);
  assert_int_equal(kite__closed_init(&c, 4, 0), 0);
  assert_null(c.ring);
  kite__closed_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(answers_its_peer_within_linger),
      cmocka_unit_test(ring_forgets_the_oldest),
      cmocka_unit_test(off_keeps_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
