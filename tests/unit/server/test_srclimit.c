/*
 * The per-source table (srclimit.h): limits per address and per prefix
 * (/24, /64; IPv4-mapped IPv6 as IPv4), half-open apart, records freed
 * when their counts reach 0, and a table that never fills for the
 * sessions it was sized for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/srclimit.h"

#include "net/addr.h"

#include <sodium.h>
#include <stdio.h>

static const uint8_t key[16] = {1, 2, 3};

static kite__src_keys keys_of(const kite__srclimit *l, const char *text) {
  kite__addr a;
  assert_int_equal(kite__addr_parse(&a, text), 0);
  return kite__srclimit_keys(l, &a.sa);
}

static void limits_per_address_and_prefix(void **state) {
  (void)state;
  kite__srclimit l;
  kite__srclimit_limits lim = {.per_addr = 3, .per_prefix = 4,
                               .halfopen_per_addr = 2, .halfopen_per_prefix = 3};
  assert_int_equal(kite__srclimit_init(&l, &lim, 16, key), 0);
  kite__src_keys a = keys_of(&l, "10.0.0.1:1000");
  kite__src_keys a2 = keys_of(&l, "10.0.0.1:2000"); /* the port is no matter */
  kite__src_keys b = keys_of(&l, "10.0.0.2:1000");  /* a's /24 */
  kite__src_keys c = keys_of(&l, "10.0.1.1:1000");  /* another /24 */
  assert_int_equal(a.addr, a2.addr);
  assert_int_equal(a.prefix, b.prefix);
  assert_true(a.addr != b.addr && a.prefix != c.prefix);
  assert_int_equal(kite__srclimit_add(&l, &a), 0);
  assert_int_equal(kite__srclimit_add(&l, &a2), 0);
  assert_int_equal(kite__srclimit_add(&l, &a), KITE__SRC_OVER_HALFOPEN);
  kite__srclimit_opened(&l, &a);
  kite__srclimit_opened(&l, &a);
  assert_int_equal(kite__srclimit_add(&l, &a), 0);
  assert_int_equal(kite__srclimit_add(&l, &a), KITE__SRC_OVER_SESSIONS);
  assert_int_equal(kite__srclimit_add(&l, &b), 0); /* prefix: 4 */
  assert_int_equal(kite__srclimit_add(&l, &b), KITE__SRC_OVER_SESSIONS);
  assert_int_equal(kite__srclimit_add(&l, &c), 0);
  assert_int_equal(kite__srclimit_sources(&l), 5); /* a, b, their /24, c, its /24 */
  /* Everything ends: every record is freed. */
  kite__srclimit_remove(&l, &a, true);
  kite__srclimit_remove(&l, &a, true);
  kite__srclimit_remove(&l, &a, false);
  kite__srclimit_remove(&l, &b, false);
  assert_int_equal(kite__srclimit_sources(&l), 2);
  kite__srclimit_remove(&l, &c, false);
  assert_int_equal(kite__srclimit_sources(&l), 0);
  kite__srclimit_free(&l);
}

static void ipv6_prefix_is_a_64_and_mapped_v4_is_v4(void **state) {
  (void)state;
  kite__srclimit l;
  kite__srclimit_limits lim = {.per_addr = 1, .per_prefix = 2};
  assert_int_equal(kite__srclimit_init(&l, &lim, 16, key), 0);
  kite__src_keys x = keys_of(&l, "[2001:db8:1:2::1]:5");
  kite__src_keys y = keys_of(&l, "[2001:db8:1:2:ffff::9]:5");
  kite__src_keys z = keys_of(&l, "[2001:db8:1:3::1]:5");
  assert_int_equal(x.prefix, y.prefix);
  assert_true(x.prefix != z.prefix);
  kite__src_keys v4 = keys_of(&l, "192.0.2.7:9");
  kite__src_keys mapped = keys_of(&l, "[::ffff:192.0.2.7]:9");
  assert_int_equal(v4.addr, mapped.addr);
  assert_int_equal(v4.prefix, mapped.prefix);
  assert_int_equal(kite__srclimit_add(&l, &v4), 0);
  assert_int_equal(kite__srclimit_add(&l, &mapped), KITE__SRC_OVER_SESSIONS);
  kite__srclimit_free(&l);
}

static void no_limits_no_table(void **state) {
  (void)state;
  kite__srclimit l;
  kite__srclimit_limits lim = {0};
  assert_int_equal(kite__srclimit_init(&l, &lim, 16, key), 0);
  kite__src_keys k = keys_of(&l, "10.0.0.1:1");
  for (int i = 0; i < 100; i++)
    assert_int_equal(kite__srclimit_add(&l, &k), 0);
  assert_int_equal(kite__srclimit_sources(&l), 0);
  kite__srclimit_free(&l);
}

/* As many sessions as the table was sized for, each from its own /24:
 * two records each, and the table never refuses one. */
static void sized_for_its_sessions(void **state) {
  (void)state;
  enum { N = 1000 };
  kite__srclimit l;
  kite__srclimit_limits lim = {.per_addr = 1, .per_prefix = 1};
  assert_int_equal(kite__srclimit_init(&l, &lim, N, key), 0);
  static kite__src_keys k[N];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      char text[32];
      snprintf(text, sizeof(text), "10.%d.%d.1:1", i / 256, i % 256);
      k[i] = keys_of(&l, text);
      assert_int_equal(kite__srclimit_add(&l, &k[i]), 0);
    }
    assert_int_equal(kite__srclimit_sources(&l), 2 * N);
    for (int i = 0; i < N; i++)
      kite__srclimit_remove(&l, &k[i], false);
    assert_int_equal(kite__srclimit_sources(&l), 0);
  }
  kite__srclimit_free(&l);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(limits_per_address_and_prefix),
      cmocka_unit_test(ipv6_prefix_is_a_64_and_mapped_v4_is_v4),
      cmocka_unit_test(no_limits_no_table),
      cmocka_unit_test(sized_for_its_sessions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
