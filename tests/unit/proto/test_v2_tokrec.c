/*
 * The token record (PROTOCOL-v2.md section 3, steps 7 and 9): bound to
 * one address until expire_ts and never less, bounded and counted, and a
 * long random run against a model (stressing deletion from the probe
 * chains).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "proto/tokrec.h"
#include "proto/v2.h"
#include "v2_vectors.h"

static void tag_of(uint8_t tag[16], uint32_t i) {
  memset(tag, 0, 16);
  memcpy(tag, &i, sizeof(i));
}

static void binds_once_per_address(void **state) {
  (void)state;
  kite__tokrec r;
  assert_int_equal(kite__tokrec_init(&r, 4), 0);
  uint8_t tag[16];
  tag_of(tag, 1);
  kite__v2addr a = vec_addr(), b = vec_addr();
  b.port++;
  assert_int_equal(kite__tokrec_find(&r, tag, &a, 100), 0);
  assert_int_equal(kite__tokrec_add(&r, tag, &a, 130, 100), 0);
  assert_int_equal(r.count, 1);
  assert_int_equal(kite__tokrec_find(&r, tag, &a, 100), KITE__V2_EUSED);
  assert_int_equal(kite__tokrec_find(&r, tag, &b, 100), KITE__V2_EBOUND);
  /* Held until expire_ts, never less. */
  assert_int_equal(kite__tokrec_find(&r, tag, &b, 129), KITE__V2_EBOUND);
  assert_int_equal(r.used_here, 1);
  assert_int_equal(r.bound_other, 2);
  assert_int_equal(kite__tokrec_find(&r, tag, &b, 130), 0);
  assert_int_equal(r.count, 0);
  assert_int_equal(r.expired, 1);
  assert_int_equal(kite__tokrec_add(&r, tag, &a, 100, 100), KITE_EINVAL);
  kite__tokrec_free(&r);
  assert_int_equal(kite__tokrec_init(&r, 0), KITE_EINVAL);
}

static void full_refuses_rather_than_forget(void **state) {
  (void)state;
  kite__tokrec r;
  assert_int_equal(kite__tokrec_init(&r, 3), 0);
  kite__v2addr a = vec_addr();
  uint8_t tag[16];
  for (uint32_t i = 0; i < 3; i++) {
    tag_of(tag, i);
    assert_int_equal(kite__tokrec_add(&r, tag, &a, 200 + i, 100), 0);
  }
  tag_of(tag, 3);
  assert_int_equal(kite__tokrec_add(&r, tag, &a, 300, 100), KITE__V2_EFULL);
  assert_int_equal(kite__tokrec_add(&r, tag, &a, 300, 199), KITE__V2_EFULL);
  assert_int_equal(r.refused_full, 2);
  for (uint32_t i = 0; i < 3; i++) {
    uint8_t t[16];
    tag_of(t, i);
    assert_int_equal(kite__tokrec_find(&r, t, &a, 199), KITE__V2_EUSED);
  }
  /* At 200 the first expired: its room is taken back when full. */
  assert_int_equal(kite__tokrec_add(&r, tag, &a, 300, 200), 0);
  assert_int_equal(r.count, 3);
  assert_int_equal(r.expired, 1);
  assert_int_equal(kite__tokrec_expire(&r, 1000), 3);
  assert_int_equal(r.count, 0);
  kite__tokrec_free(&r);
}

#define N 512
static struct {
  uint64_t expire; /* 0: absent */
  uint16_t port;
} model[N];

static void random_run_matches_the_model(void **state) {
  (void)state;
  kite__tokrec r;
  assert_int_equal(kite__tokrec_init(&r, 200), 0);
  memset(model, 0, sizeof(model));
  srand(7);
  uint64_t now = 1000;
  size_t held = 0;
  for (int step = 0; step < 200000; step++) {
    if (rand() % 50 == 0)
      now++;
    if (rand() % 5000 == 0) {
      size_t want = 0;
      for (int i = 0; i < N; i++)
        if (model[i].expire != 0 && model[i].expire <= now) {
          model[i].expire = 0;
          want++;
          held--;
        }
      assert_int_equal(kite__tokrec_expire(&r, now), want);
    }
    uint32_t i = (uint32_t)rand() % N;
    uint8_t tag[16];
    tag_of(tag, i);
    kite__v2addr a = vec_addr();
    a.port = (uint16_t)(rand() % 2);
    int want = 0;
    if (model[i].expire != 0 && model[i].expire <= now) {
      model[i].expire = 0; /* find drops it */
      held--;
    }
    if (model[i].expire != 0)
      want = model[i].port == a.port ? KITE__V2_EUSED : KITE__V2_EBOUND;
    assert_int_equal(kite__tokrec_find(&r, tag, &a, now), want);
    if (want != 0)
      continue;
    uint64_t expire = now + 1 + (uint64_t)(rand() % 30);
    int rc = kite__tokrec_add(&r, tag, &a, expire, now);
    if (held == 200) {
      /* Full unless some expired: the record drops them first. */
      size_t live = 0;
      for (int k = 0; k < N; k++)
        if (model[k].expire != 0 && model[k].expire > now)
          live++;
      if (live == 200) {
        assert_int_equal(rc, KITE__V2_EFULL);
        continue;
      }
      for (int k = 0; k < N; k++)
        if (model[k].expire != 0 && model[k].expire <= now) {
          model[k].expire = 0;
          held--;
        }
    }
    assert_int_equal(rc, 0);
    model[i].expire = expire;
    model[i].port = a.port;
    held++;
    assert_int_equal(r.count, held);
  }
  kite__tokrec_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(binds_once_per_address),
      cmocka_unit_test(full_refuses_rather_than_forget),
      cmocka_unit_test(random_run_matches_the_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
