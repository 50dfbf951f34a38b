#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "kite/error.h"
#include "server/cookie.h"

#define L KITE__COOKIE_LIFETIME_S

static const uint8_t master_a[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                     12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                     22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t nonce_a[8] = {0xA1, 0xA2, 0xA3, 0xA4,
                                   0xA5, 0xA6, 0xA7, 0xA8};

static struct sockaddr_in v4(const char *ip, uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port) {
  struct sockaddr_in6 a;
  memset(&a, 0, sizeof(a));
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
  return a;
}

#define SA(a) ((const struct sockaddr *)&(a))

static kite__cookie_jar jar(const uint8_t master[32]) {
  kite__cookie_jar j;
  assert_int_equal(kite__cookie_jar_init(&j, master, L), 0);
  return j;
}

static void init_refuses_lifetime_zero(void **state) {
  (void)state;
  kite__cookie_jar j;
  assert_int_equal(kite__cookie_jar_init(&j, master_a, 0), KITE_EINVAL);
  assert_int_equal(kite__cookie_jar_init(&j, master_a, 1), 0);
}

static void valid_cookie_is_accepted(void **state) {
  (void)state;
  kite__cookie_jar j = jar(master_a);
  struct sockaddr_in a = v4("192.0.2.7", 40000);
  struct sockaddr_in6 b = v6("2001:db8::1", 40000);
  uint8_t c[16];
  const uint32_t now = 1700000000u;
  assert_int_equal(kite__cookie_make(&j, 1, SA(a), nonce_a, now, c), 0);
  /* ts is in clear, little-endian, at the front */
  assert_int_equal(c[0] | c[1] << 8 | c[2] << 16 | (uint32_t)c[3] << 24, now);
  assert_true(kite__cookie_check(&j, 1, SA(a), nonce_a, c, now));
  assert_int_equal(kite__cookie_make(&j, 1, SA(b), nonce_a, now, c), 0);
  assert_true(kite__cookie_check(&j, 1, SA(b), nonce_a, c, now));
}

/* Accepted for its whole lifetime, from any second of its epoch: made at
 * every second of an epoch, it checks at every second up to ts + L, so in
 * particular one made late in epoch e still checks early in e + 1. */
static void accepted_across_a_rotation_up_to_lifetime(void **state) {
  (void)state;
  kite__cookie_jar maker = jar(master_a), checker = jar(master_a);
  struct sockaddr_in a = v4("198.51.100.1", 5555);
  const uint32_t base = 1000u * L;
  for (uint32_t ts = base; ts < base + 2 * L; ts++) {
    uint8_t c[16];
    assert_int_equal(kite__cookie_make(&maker, 1, SA(a), nonce_a, ts, c), 0);
    for (uint32_t now = ts; now <= ts + L; now++)
      assert_true(kite__cookie_check(&checker, 1, SA(a), nonce_a, c, now));
    assert_false(kite__cookie_check(&checker, 1, SA(a), nonce_a, c, ts + L + 1));
  }
  /* the case named: last second of epoch e, first seconds of e + 1 */
  uint8_t c[16];
  uint32_t late = base + L - 1;
  assert_int_equal(kite__cookie_make(&maker, 1, SA(a), nonce_a, late, c), 0);
  assert_true(kite__cookie_check(&checker, 1, SA(a), nonce_a, c, base + L));
  assert_true(kite__cookie_check(&checker, 1, SA(a), nonce_a, c, base + L + 1));
  assert_true(kite__cookie_check(&checker, 1, SA(a), nonce_a, c, late + L));
  assert_false(kite__cookie_check(&checker, 1, SA(a), nonce_a, c, late + L + 1));
}

/* The key is a function of the epoch alone: two jars with different
 * lifetimes (so different epoch lengths) make the same cookie for a ts that
 * falls in the same epoch number for both, and different ones otherwise. */
static void keys_rotate(void **state) {
  (void)state;
  kite__cookie_jar j10, j7;
  assert_int_equal(kite__cookie_jar_init(&j10, master_a, 10), 0);
  assert_int_equal(kite__cookie_jar_init(&j7, master_a, 7), 0);
  struct sockaddr_in a = v4("192.0.2.1", 1);
  static const struct {
    uint32_t ts;
    bool same; /* ts / 10 == ts / 7 */
  } cases[] = {{5, true}, {9, false}, {13, true}, {15, false}, {77, false}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t c10[16], c7[16];
    kite__cookie_make(&j10, 1, SA(a), nonce_a, cases[i].ts, c10);
    kite__cookie_make(&j7, 1, SA(a), nonce_a, cases[i].ts, c7);
    assert_int_equal(memcmp(c10, c7, 16) == 0, cases[i].same);
  }
}

static void refused_when_stale_or_from_the_future(void **state) {
  (void)state;
  kite__cookie_jar j = jar(master_a);
  struct sockaddr_in a = v4("192.0.2.7", 40000);
  uint8_t c[16];
  const uint32_t ts = 5000;
  kite__cookie_make(&j, 1, SA(a), nonce_a, ts, c);
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, ts + L + 1));
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, ts + 3600));
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, UINT32_MAX));
  /* a shard whose coarse clock lags by a second still takes it... */
  assert_true(kite__cookie_check(&j, 1, SA(a), nonce_a, c, ts - 1));
  /* ...but not by two, nor a cookie from the far future */
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, ts - 2));
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, 0));
  kite__cookie_make(&j, 1, SA(a), nonce_a, UINT32_MAX - 5, c);
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, ts));
}

/* The 1 s tolerance across an epoch boundary: made on a shard whose clock
 * reads the first second of e + 1, checked on one that still reads the
 * last second of e (the key of e + 1 is not cached there yet). */
static void future_second_across_a_boundary(void **state) {
  (void)state;
  kite__cookie_jar ahead = jar(master_a), behind = jar(master_a);
  struct sockaddr_in6 a = v6("2001:db8::5", 443);
  uint8_t c[16];
  const uint32_t boundary = 77u * L;
  kite__cookie_make(&ahead, 1, SA(a), nonce_a, boundary, c);
  assert_true(kite__cookie_check(&behind, 1, SA(a), nonce_a, c, boundary - 1));
  assert_true(kite__cookie_check(&behind, 1, SA(a), nonce_a, c, boundary));
  assert_true(kite__cookie_check(&behind, 1, SA(a), nonce_a, c, boundary - 1));
}

static void refused_with_any_bit_flipped(void **state) {
  (void)state;
  kite__cookie_jar j = jar(master_a);
  struct sockaddr_in a = v4("203.0.113.9", 7777);
  uint8_t c[16];
  const uint32_t now = 123456;
  kite__cookie_make(&j, 1, SA(a), nonce_a, now, c);
  for (int bit = 0; bit < 128; bit++) {
    c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    /* at the cookie's own time and one second later: a flipped low ts bit
     * alone keeps the age in range, so only the MAC can refuse it */
    assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, now));
    assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, now + 1));
    c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  assert_true(kite__cookie_check(&j, 1, SA(a), nonce_a, c, now));
}

static void refused_for_another_client(void **state) {
  (void)state;
  kite__cookie_jar j = jar(master_a);
  const uint32_t now = 99999;
  uint8_t c[16];

  struct sockaddr_in a = v4("192.0.2.7", 40000);
  kite__cookie_make(&j, 1, SA(a), nonce_a, now, c);
  struct sockaddr_in port = v4("192.0.2.7", 40001);
  struct sockaddr_in addr = v4("192.0.2.8", 40000);
  struct sockaddr_in6 mapped = v6("::ffff:192.0.2.7", 40000);
  assert_false(kite__cookie_check(&j, 1, SA(port), nonce_a, c, now));
  assert_false(kite__cookie_check(&j, 1, SA(addr), nonce_a, c, now));
  assert_false(kite__cookie_check(&j, 1, SA(mapped), nonce_a, c, now));
  uint8_t nonce_b[8];
  memcpy(nonce_b, nonce_a, 8);
  nonce_b[7] ^= 1;
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_b, c, now));
  /* the fields of the sockaddr that are not the address do not count */
  struct sockaddr_in same = a;
  memset(same.sin_zero, 0x77, sizeof(same.sin_zero));
  assert_true(kite__cookie_check(&j, 1, SA(same), nonce_a, c, now));

  /* the same the other way round, from IPv6 */
  struct sockaddr_in6 b = v6("::ffff:192.0.2.7", 40000);
  kite__cookie_make(&j, 1, SA(b), nonce_a, now, c);
  assert_true(kite__cookie_check(&j, 1, SA(b), nonce_a, c, now));
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, now));
  struct sockaddr_in6 b2 = v6("::ffff:192.0.2.8", 40000);
  assert_false(kite__cookie_check(&j, 1, SA(b2), nonce_a, c, now));
  struct sockaddr_in6 b3 = v6("::ffff:192.0.2.7", 40002);
  assert_false(kite__cookie_check(&j, 1, SA(b3), nonce_a, c, now));
}

static void refused_under_another_master(void **state) {
  (void)state;
  uint8_t master_b[32];
  memcpy(master_b, master_a, 32);
  master_b[31] ^= 0x80;
  kite__cookie_jar ja = jar(master_a), jb = jar(master_b);
  struct sockaddr_in a = v4("192.0.2.7", 40000);
  uint8_t c[16];
  kite__cookie_make(&ja, 1, SA(a), nonce_a, 4242, c);
  assert_false(kite__cookie_check(&jb, 1, SA(a), nonce_a, c, 4242));

  uint8_t r1[32], r2[32];
  assert_int_equal(kite__cookie_master_new(r1), 0);
  assert_int_equal(kite__cookie_master_new(r2), 0);
  assert_memory_not_equal(r1, r2, 32);
  kite__cookie_jar jr1 = jar(r1), jr2 = jar(r2);
  kite__cookie_make(&jr1, 1, SA(a), nonce_a, 4242, c);
  assert_true(kite__cookie_check(&jr1, 1, SA(a), nonce_a, c, 4242));
  assert_false(kite__cookie_check(&jr2, 1, SA(a), nonce_a, c, 4242));
}

/* The shard property: jars built from one master agree, byte for byte,
 * whatever each one's cache holds (one walked forward second by second,
 * the other jumping around, back in time included). */
static void jars_with_one_master_agree(void **state) {
  (void)state;
  kite__cookie_jar s1 = jar(master_a), s2 = jar(master_a);
  struct sockaddr_in6 a = v6("2001:db8::42", 9000);
  uint32_t jump = 777;
  for (uint32_t now = 3000; now < 3200; now++) {
    uint8_t c1[16], c2[16];
    jump = jump * 1103515245u + 12345u;
    kite__cookie_make(&s2, 1, SA(a), nonce_a, jump % 100000u, c2); /* churn */
    kite__cookie_make(&s1, 1, SA(a), nonce_a, now, c1);
    kite__cookie_make(&s2, 1, SA(a), nonce_a, now, c2);
    assert_memory_equal(c1, c2, 16);
    assert_true(kite__cookie_check(&s2, 1, SA(a), nonce_a, c1, now + L / 2));
    assert_true(kite__cookie_check(&s1, 1, SA(a), nonce_a, c2, now));
  }
}

static void ts_zero_works(void **state) {
  (void)state;
  kite__cookie_jar j = jar(master_a);
  struct sockaddr_in a = v4("127.0.0.1", 1234);
  uint8_t c[16];
  assert_int_equal(kite__cookie_make(&j, 1, SA(a), nonce_a, 0, c), 0);
  assert_memory_equal(c, (uint8_t[4]){0}, 4);
  for (uint32_t now = 0; now <= L; now++)
    assert_true(kite__cookie_check(&j, 1, SA(a), nonce_a, c, now));
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c, L + 1));
  /* and a fresh jar that first sees epoch 0 at check time */
  kite__cookie_jar k = jar(master_a);
  assert_true(kite__cookie_check(&k, 1, SA(a), nonce_a, c, 0));
}

static void other_families_are_refused(void **state) {
  (void)state;
  kite__cookie_jar j = jar(master_a);
  struct sockaddr_in a = v4("127.0.0.1", 1234);
  uint8_t c[16], untouched[16];
  memset(c, 0xEE, sizeof(c));
  memcpy(untouched, c, 16);
  struct sockaddr_storage un;
  memset(&un, 0, sizeof(un));
  un.ss_family = AF_UNIX;
  assert_int_equal(kite__cookie_make(&j, 1, SA(un), nonce_a, 10, c),
                   KITE_EINVAL);
  assert_memory_equal(c, untouched, 16);
  kite__cookie_make(&j, 1, SA(a), nonce_a, 10, c);
  assert_false(kite__cookie_check(&j, 1, SA(un), nonce_a, c, 10));
}

/* The version is in the MAC: a v1 HELLO's cookie fails a v2 CONNECT and
 * the other way round (PROTOCOL-v2.md section 3). */
static void refused_for_another_version(void **state) {
  (void)state;
  kite__cookie_jar j = jar(master_a);
  struct sockaddr_in a = v4("127.0.0.1", 1234);
  uint8_t c1[16], c2[16];
  const uint32_t now = 1700000000u;
  kite__cookie_make(&j, 1, SA(a), nonce_a, now, c1);
  kite__cookie_make(&j, 2, SA(a), nonce_a, now, c2);
  assert_memory_not_equal(c1 + 4, c2 + 4, 12);
  assert_true(kite__cookie_check(&j, 1, SA(a), nonce_a, c1, now));
  assert_true(kite__cookie_check(&j, 2, SA(a), nonce_a, c2, now));
  assert_false(kite__cookie_check(&j, 2, SA(a), nonce_a, c1, now));
  assert_false(kite__cookie_check(&j, 1, SA(a), nonce_a, c2, now));
}

static void clear_wipes_the_secrets(void **state) {
  (void)state;
  kite__cookie_jar j = jar(master_a);
  struct sockaddr_in a = v4("127.0.0.1", 1234);
  uint8_t c[16];
  kite__cookie_make(&j, 1, SA(a), nonce_a, 10, c);
  kite__cookie_jar_clear(&j);
  kite__cookie_jar zero;
  memset(&zero, 0, sizeof(zero));
  assert_memory_equal(&j, &zero, sizeof(j));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(init_refuses_lifetime_zero),
      cmocka_unit_test(valid_cookie_is_accepted),
      cmocka_unit_test(accepted_across_a_rotation_up_to_lifetime),
      cmocka_unit_test(keys_rotate),
      cmocka_unit_test(refused_when_stale_or_from_the_future),
      cmocka_unit_test(future_second_across_a_boundary),
      cmocka_unit_test(refused_with_any_bit_flipped),
      cmocka_unit_test(refused_for_another_client),
      cmocka_unit_test(refused_under_another_master),
      cmocka_unit_test(jars_with_one_master_agree),
      cmocka_unit_test(ts_zero_works),
      cmocka_unit_test(other_families_are_refused),
      cmocka_unit_test(refused_for_another_version),
      cmocka_unit_test(clear_wipes_the_secrets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
