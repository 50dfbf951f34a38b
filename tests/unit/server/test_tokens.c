/*
 * The server's striped token record (server/tokens.h): steps 7 and 9 of
 * a v2 handshake across threads. A tag binds once, to the first address;
 * racing binds of one tag from many threads leave exactly one winner;
 * full stripes refuse; expired tags free their slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/tokens.h"

#include "kite/error.h"
#include "proto/v2.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

static kite__v2addr addr_of(uint8_t last, uint16_t port) {
  kite__v2addr a;
  memset(&a, 0, sizeof(a));
  a.type = 1;
  a.port = port;
  a.addr[0] = 127;
  a.addr[3] = last;
  return a;
}

static void binds_once_to_the_first_address(void **state) {
  (void)state;
  kite__tokens t;
  assert_int_equal(kite__tokens_init(&t, 4, 16), 0);
  uint8_t tag[KITE__V2TOK_TAG];
  randombytes_buf(tag, sizeof(tag));
  kite__v2addr a = addr_of(1, 7001), b = addr_of(2, 7001), c = addr_of(1, 7002);
  assert_int_equal(kite__tokens_check(&t, tag, &a, 100), 0);
  assert_int_equal(kite__tokens_bind(&t, tag, &a, 130, 100), 0);
  assert_int_equal(kite__tokens_check(&t, tag, &a, 101), KITE__V2_EUSED);
  assert_int_equal(kite__tokens_check(&t, tag, &b, 101), KITE__V2_EBOUND);
  assert_int_equal(kite__tokens_check(&t, tag, &c, 101), KITE__V2_EBOUND);
  assert_int_equal(kite__tokens_bind(&t, tag, &b, 130, 101), KITE__V2_EBOUND);
  /* Until its expire_ts, never less; then free again. */
  assert_int_equal(kite__tokens_check(&t, tag, &b, 129), KITE__V2_EBOUND);
  kite__tokens_stats st;
  kite__tokens_stats_get(&t, &st);
  assert_int_equal(st.held, 1);
  assert_true(st.bound_other >= 3);
  assert_true(st.used_here >= 1);
  size_t dropped = 0;
  for (uint32_t i = 0; i < t.n; i++)
    dropped += kite__tokens_expire(&t, i, 130);
  assert_int_equal(dropped, 1);
  kite__tokens_stats_get(&t, &st);
  assert_int_equal(st.held, 0);
  assert_int_equal(kite__tokens_check(&t, tag, &b, 130), 0);
  kite__tokens_free(&t);
  kite__tokens_free(&t); /* twice is harmless */
}

static void full_stripe_refuses(void **state) {
  (void)state;
  kite__tokens t;
  assert_int_equal(kite__tokens_init(&t, 1, 8), 0);
  kite__v2addr a = addr_of(1, 7001);
  int refused = 0;
  for (int i = 0; i < 9; i++) {
    uint8_t tag[KITE__V2TOK_TAG];
    randombytes_buf(tag, sizeof(tag));
    int rc = kite__tokens_bind(&t, tag, &a, 400, 100);
    if (rc == KITE__V2_EFULL)
      refused++;
    else
      assert_int_equal(rc, 0);
  }
  assert_int_equal(refused, 1);
  kite__tokens_stats st;
  kite__tokens_stats_get(&t, &st);
  assert_int_equal(st.held, 8);
  assert_int_equal(st.refused_full, 1);
  kite__tokens_free(&t);
  assert_int_equal(kite__tokens_init(&t, 0, 8), KITE_EINVAL);
  assert_int_equal(kite__tokens_init(&t, 2, 0), KITE_EINVAL);
}

#define RACERS 4
#define TAGS 2000

static kite__tokens race_t;
static uint8_t race_tags[TAGS][KITE__V2TOK_TAG];
static atomic_int race_wins[TAGS];

static void *racer(void *arg) {
  kite__v2addr a = addr_of((uint8_t)(uintptr_t)arg + 1, 7001);
  for (int i = 0; i < TAGS; i++)
    if (kite__tokens_bind(&race_t, race_tags[i], &a, 400, 100) == 0)
      atomic_fetch_add(&race_wins[i], 1);
  return NULL;
}

static void racing_binds_have_one_winner(void **state) {
  (void)state;
  assert_int_equal(kite__tokens_init(&race_t, 3, TAGS), 0);
  randombytes_buf(race_tags, sizeof(race_tags));
  pthread_t th[RACERS];
  for (uintptr_t i = 0; i < RACERS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, racer, (void *)i), 0);
  for (int i = 0; i < RACERS; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < TAGS; i++)
    assert_int_equal(atomic_load(&race_wins[i]), 1);
  kite__tokens_stats st;
  kite__tokens_stats_get(&race_t, &st);
  assert_int_equal(st.held, TAGS);
  kite__tokens_free(&race_t);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(binds_once_to_the_first_address),
      cmocka_unit_test(full_stripe_refuses),
      cmocka_unit_test(racing_binds_have_one_winner),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
