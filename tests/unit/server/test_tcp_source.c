/*
 * Per-source TCP limits (server/tcp_source.h): the keys an address and
 * its prefix make, and the counts: a limit reached refuses, nothing is
 * counted for a refusal, a release gives back, a limit of 0 is off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/tcp_source.h"

#include <arpa/inet.h>
#include <string.h>

static kite__addr v4(const char *ip) {
  kite__addr a;
  memset(&a, 0, sizeof(a));
  a.v4.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a.v4.sin_addr);
  return a;
}

static kite__addr v6(const char *ip) {
  kite__addr a;
  memset(&a, 0, sizeof(a));
  a.v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &a.v6.sin6_addr);
  return a;
}

static void keys(void **state) {
  (void)state;
  uint8_t k1[17], k2[17];
  kite__addr a = v4("10.1.2.3"), b = v4("10.1.2.99"), m = v6("::ffff:10.1.2.3");
  /* the address itself: 1 + 4 bytes; the mapped form is the same key */
  assert_int_equal(kite__src_key(&a, false, k1), 5);
  assert_int_equal(kite__src_key(&m, false, k2), 5);
  assert_memory_equal(k1, k2, 5);
  /* /24: the same for .3 and .99 (each kind has its own table) */
  assert_int_equal(kite__src_key(&a, true, k1), 4);
  assert_int_equal(kite__src_key(&b, true, k2), 4);
  assert_memory_equal(k1, k2, 4);
  kite__addr o = v4("10.1.3.3");
  kite__src_key(&o, true, k2);
  assert_memory_not_equal(k1, k2, 4);
  /* /64: the upper half only */
  kite__addr x = v6("2001:db8:1:2::1"), y = v6("2001:db8:1:2:ffff::9");
  kite__addr z = v6("2001:db8:1:3::1");
  assert_int_equal(kite__src_key(&x, true, k1), 9);
  kite__src_key(&y, true, k2);
  assert_memory_equal(k1, k2, 9);
  kite__src_key(&z, true, k2);
  assert_memory_not_equal(k1, k2, 9);
  assert_int_equal(kite__src_key(&x, false, k1), 17);
}

static void counts(void **state) {
  (void)state;
  kite__src_limit *l = kite__src_limit_new(2, 3);
  assert_non_null(l);
  kite__addr a = v4("10.1.2.3"), b = v4("10.1.2.4"), c = v4("10.9.9.9");
  kite__src_hold h[6];
  assert_int_equal(kite__src_acquire(l, &a, &h[0]), KITE__SRC_OK);
  assert_int_equal(kite__src_acquire(l, &a, &h[1]), KITE__SRC_OK);
  assert_int_equal(kite__src_acquire(l, &a, &h[2]), KITE__SRC_ADDR);
  assert_int_equal(h[2].addr, KITE__SRC_NONE);
  assert_int_equal(h[2].prefix, KITE__SRC_NONE);
  assert_int_equal(kite__src_acquire(l, &b, &h[2]), KITE__SRC_OK);
  assert_int_equal(kite__src_acquire(l, &b, &h[3]), KITE__SRC_PREFIX);
  assert_int_equal(kite__src_acquire(l, &c, &h[4]), KITE__SRC_OK);
  /* a release makes room, twice is harmless (the hold is cleared) */
  kite__src_release(l, &h[0]);
  kite__src_release(l, &h[0]);
  assert_int_equal(kite__src_acquire(l, &b, &h[3]), KITE__SRC_OK);
  assert_int_equal(kite__src_acquire(l, &a, &h[5]), KITE__SRC_PREFIX);
  for (int i = 1; i < 5; i++)
    kite__src_release(l, &h[i]);
  for (uint32_t i = 0; i < KITE__SRC_BUCKETS; i++) {
    assert_int_equal(atomic_load(&l->addr[i]), 0);
    assert_int_equal(atomic_load(&l->prefix[i]), 0);
  }
  kite__src_limit_free(l);
  /* limits off: nothing counted, nothing refused */
  l = kite__src_limit_new(0, 0);
  for (int i = 0; i < 100; i++) {
    kite__src_hold x;
    assert_int_equal(kite__src_acquire(l, &a, &x), KITE__SRC_OK);
  }
  kite__src_limit_free(l);
  kite__src_hold x;
  assert_int_equal(kite__src_acquire(NULL, &a, &x), KITE__SRC_OK);
  kite__src_release(NULL, &x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(keys),
      cmocka_unit_test(counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
