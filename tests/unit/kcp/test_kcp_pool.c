#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kcp/kcp_pool.h"

static kite__kcp_pool *make(uint32_t max, uint32_t reserve) {
  kite__kcp_pool_config c;
  kite__kcp_pool_config_default(&c);
  c.max_segments = max;
  c.reserve = reserve;
  kite__kcp_pool *p = kite__kcp_pool_create(&c);
  assert_non_null(p);
  return p;
}

static void invalid_configs_are_refused(void **state) {
  (void)state;
  kite__kcp_pool_config c;
  kite__kcp_pool_config_default(&c);
  kite__kcp_pool_config bad = c;
  bad.mtu = 10;
  assert_null(kite__kcp_pool_create(&bad));
  bad = c;
  bad.wnd_max = 0;
  assert_null(kite__kcp_pool_create(&bad));
  bad = c;
  bad.reserve = bad.max_segments;
  assert_null(kite__kcp_pool_create(&bad));
  bad = c;
  bad.max_segments = 0;
  bad.reserve = 0;
  assert_null(kite__kcp_pool_create(&bad));
}

static void budget_and_reserve_hold(void **state) {
  (void)state;
  kite__kcp_pool *p = make(10, 4);
  kite__kseg *segs[10];
  assert_true(kite__kcp_pool_can_get(p, 6));
  assert_false(kite__kcp_pool_can_get(p, 7));
  for (int i = 0; i < 6; i++) {
    segs[i] = kite__kcp_pool_seg_get(p, false);
    assert_non_null(segs[i]);
    memset(segs[i]->data, 0xAB, p->mss); /* the whole mss is usable */
  }
  /* Unreserved use stops |reserve| short of the budget... */
  assert_null(kite__kcp_pool_seg_get(p, false));
  assert_false(kite__kcp_pool_can_get(p, 1));
  /* ...reserved use may take the rest, and no more. */
  for (int i = 6; i < 10; i++)
    assert_non_null(segs[i] = kite__kcp_pool_seg_get(p, true));
  assert_null(kite__kcp_pool_seg_get(p, true));
  assert_int_equal(p->stats.segs_used, 10);
  assert_int_equal(p->stats.segs_peak, 10);
  for (int i = 0; i < 10; i++)
    kite__kcp_pool_seg_put(p, segs[i]);
  assert_int_equal(p->stats.segs_used, 0);
  assert_int_equal(p->stats.segs_peak, 10);
  assert_true(kite__kcp_pool_can_get(p, 6));
  kite__kcp_pool_destroy(p);
}

static void rings_come_back_zeroed(void **state) {
  (void)state;
  kite__kcp_pool *p = make(100, 10);
  assert_true(p->ring_mask + 1 >= p->cfg.wnd_max);
  assert_int_equal((p->ring_mask + 1) & p->ring_mask, 0); /* power of two */
  kite__kseg **r = kite__kcp_pool_ring_get(p);
  assert_non_null(r);
  for (uint32_t i = 0; i <= p->ring_mask; i++)
    assert_null(r[i]);
  r[3] = (kite__kseg *)r; /* dirty it, then clear as the contract says */
  r[3] = NULL;
  assert_int_equal(p->stats.rings_used, 1);
  kite__kcp_pool_ring_put(p, r);
  assert_int_equal(p->stats.rings_used, 0);
  kite__kseg **again = kite__kcp_pool_ring_get(p);
  for (uint32_t i = 0; i <= p->ring_mask; i++)
    assert_null(again[i]);
  kite__kcp_pool_ring_put(p, again);
  kite__kcp_pool_destroy(p);
}

static void many_slabs_are_freed(void **state) {
  (void)state;
  /* Grows over several slabs, frees in another order: ASan checks the rest. */
  kite__kcp_pool *p = make(1000, 1);
  static kite__kseg *segs[999];
  for (int i = 0; i < 999; i++)
    assert_non_null(segs[i] = kite__kcp_pool_seg_get(p, false));
  for (int i = 0; i < 999; i += 2)
    kite__kcp_pool_seg_put(p, segs[i]);
  for (int i = 1; i < 999; i += 2)
    kite__kcp_pool_seg_put(p, segs[i]);
  assert_int_equal(p->stats.segs_used, 0);
  kite__kcp_pool_destroy(p);
}

#ifndef KITE_NOMEMPOOL
static kite__kcp_pool *make_keeping(uint32_t keep_segs, uint32_t keep_rings) {
  kite__kcp_pool_config c;
  kite__kcp_pool_config_default(&c);
  c.keep_segments = keep_segs;
  c.keep_rings = keep_rings;
  kite__kcp_pool *p = kite__kcp_pool_create(&c);
  assert_non_null(p);
  return p;
}
#endif

/* A burst's chunks and rings stay while an interval needed them and go at
 * the next trim pass, down to the keep counts; the pool works after. The
 * passes are called by hand: no clock. */
static void a_burst_is_given_back_after_an_idle_interval(void **state) {
  (void)state;
#ifdef KITE_NOMEMPOOL
  skip(); /* nothing is kept: every chunk is freed at once */
#else
  enum { SEGS = 640, RINGS = 20 }; /* 10 slabs */
  kite__kcp_pool *p = make_keeping(128, 4);
  size_t empty = kite__kcp_pool_bytes(p);
  static kite__kseg *segs[SEGS];
  kite__kseg **rings[RINGS];
  for (int i = 0; i < SEGS; i++)
    assert_non_null(segs[i] = kite__kcp_pool_seg_get(p, false));
  for (int i = 0; i < RINGS; i++)
    assert_non_null(rings[i] = kite__kcp_pool_ring_get(p));
  assert_int_equal(p->stats.slabs, 10);
  size_t peak = kite__kcp_pool_bytes(p);
  assert_true(peak > empty + SEGS * p->mss);

  bool grew = false;
  assert_int_equal(kite__kcp_pool_trim(p, &grew), 0); /* all in use */
  assert_true(grew);
  for (int i = 0; i < SEGS; i++) /* in another order than taken */
    kite__kcp_pool_seg_put(p, segs[(i * 7) % SEGS]);
  for (int i = 0; i < RINGS; i++)
    kite__kcp_pool_ring_put(p, rings[i]);
  /* This interval needed all of it: kept. */
  assert_int_equal(kite__kcp_pool_trim(p, &grew), 0);
  assert_false(grew);
  assert_int_equal(p->stats.slabs, 10);
  /* The next needed none: down to 128 chunks (2 slabs) and 4 rings. */
  size_t freed = kite__kcp_pool_trim(p, &grew);
  assert_false(grew);
  assert_int_equal(p->stats.slabs, 2);
  assert_int_equal(p->stats.rings_free, 4);
  assert_int_equal(freed, peak - kite__kcp_pool_bytes(p));
  assert_int_equal(p->stats.trimmed_bytes, freed);
  assert_int_equal(kite__kcp_pool_trim(p, NULL), 0); /* at the floor */

  /* Still a pool: the kept chunks serve first, then it grows again. */
  for (int i = 0; i < SEGS; i++) {
    assert_non_null(segs[i] = kite__kcp_pool_seg_get(p, false));
    memset(segs[i]->data, i & 0xFF, p->mss);
  }
  assert_int_equal(p->stats.slabs, 10);
  for (int i = 0; i < SEGS; i++) {
    assert_int_equal(segs[i]->data[p->mss - 1], i & 0xFF);
    kite__kcp_pool_seg_put(p, segs[i]);
  }
  assert_int_equal(p->stats.segs_used, 0);
  kite__kcp_pool_destroy(p);
#endif
}

/* A slab with one chunk still in use stays (whatever the keep count); the
 * others go, and the free list keeps only the survivor's chunks. */
static void a_slab_in_use_is_kept(void **state) {
  (void)state;
#ifdef KITE_NOMEMPOOL
  skip();
#else
  enum { SEGS = 256 }; /* 4 slabs */
  kite__kcp_pool *p = make_keeping(0, 0);
  static kite__kseg *segs[SEGS];
  for (int i = 0; i < SEGS; i++)
    assert_non_null(segs[i] = kite__kcp_pool_seg_get(p, false));
  enum { KEPT = 100 };
  memset(segs[KEPT]->data, 0x5A, p->mss);
  for (int i = 0; i < SEGS; i++)
    if (i != KEPT)
      kite__kcp_pool_seg_put(p, segs[i]);
  kite__kcp_pool_trim(p, NULL); /* the interval of the burst */
  assert_true(kite__kcp_pool_trim(p, NULL) > 0);
  assert_int_equal(p->stats.slabs, 1);
  assert_int_equal(segs[KEPT]->data[0], 0x5A);
  assert_int_equal(segs[KEPT]->data[p->mss - 1], 0x5A);
  /* Its 63 free chunks are on the free list, and nothing else. */
  for (int i = 0; i < 63; i++)
    assert_non_null(segs[i] = kite__kcp_pool_seg_get(p, false));
  assert_int_equal(p->stats.slabs, 1);
  assert_non_null(segs[63] = kite__kcp_pool_seg_get(p, false));
  assert_int_equal(p->stats.slabs, 2);
  for (int i = 0; i < 64; i++)
    kite__kcp_pool_seg_put(p, segs[i]);
  kite__kcp_pool_seg_put(p, segs[KEPT]);
  kite__kcp_pool_destroy(p);
#endif
}

/* A steady load's working set is never trimmed, however far above the
 * keep counts it is. */
static void a_steady_working_set_is_kept(void **state) {
  (void)state;
#ifdef KITE_NOMEMPOOL
  skip();
#else
  enum { SEGS = 300 };
  kite__kcp_pool *p = make_keeping(64, 0);
  static kite__kseg *segs[SEGS];
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < SEGS; i++)
      assert_non_null(segs[i] = kite__kcp_pool_seg_get(p, false));
    for (int i = 0; i < SEGS; i++)
      kite__kcp_pool_seg_put(p, segs[i]);
    kite__kseg **r = kite__kcp_pool_ring_get(p);
    kite__kcp_pool_ring_put(p, r);
    bool grew = true;
    assert_int_equal(kite__kcp_pool_trim(p, &grew), 0);
    assert_int_equal(grew, round == 0);
    assert_int_equal(p->stats.slabs, 5); /* 300 chunks */
    assert_int_equal(p->stats.rings_free, 1);
  }
  kite__kcp_pool_destroy(p);
#endif
}

/* A walk that found no whole slab to free is not repeated at the next
 * pass but after 1, 2, 4, then 8 passes; one that frees resets that. */
static void a_fruitless_walk_backs_off(void **state) {
  (void)state;
#ifdef KITE_NOMEMPOOL
  skip();
#else
  enum { SEGS = 256 }; /* 4 slabs */
  kite__kcp_pool *p = make_keeping(0, 0);
  static kite__kseg *segs[SEGS];
  for (int i = 0; i < SEGS; i++)
    assert_non_null(segs[i] = kite__kcp_pool_seg_get(p, false));
  for (int i = 0; i < SEGS; i++) /* one chunk of each slab stays in use */
    if (i % 64 != 5)
      kite__kcp_pool_seg_put(p, segs[i]);
  kite__kcp_pool_trim(p, NULL); /* the burst's interval */
  assert_int_equal(kite__kcp_pool_trim(p, NULL), 0); /* walked: nothing */
  kite__kcp_pool_seg_put(p, segs[5]); /* slab 0 is whole now */
  assert_int_equal(kite__kcp_pool_trim(p, NULL), 0); /* skipped (1) */
  assert_int_equal(p->stats.slabs, 4);
  assert_true(kite__kcp_pool_trim(p, NULL) > 0);     /* walked: freed */
  assert_int_equal(p->stats.slabs, 3);
  /* Fruitless walks now: skips of 1, 2, 4, 8, 8 passes between them. */
  int skipped = 0, expect[] = {1, 2, 4, 8, 8};
  for (int w = 0; w < 5; w++) {
    assert_int_equal(kite__kcp_pool_trim(p, NULL), 0); /* a walk */
    assert_int_equal(p->walk_skip, expect[w]);
    for (skipped = 0; p->walk_skip; skipped++)
      assert_int_equal(kite__kcp_pool_trim(p, NULL), 0);
    assert_int_equal(skipped, expect[w]);
  }
  for (int i = 64; i < SEGS; i += 64)
    kite__kcp_pool_seg_put(p, segs[i + 5]);
  /* All free: no walk, whatever the backoff. The interval had 3 in use:
   * one slab stays for them, then goes at the next pass. */
  assert_true(kite__kcp_pool_trim(p, NULL) > 0);
  assert_int_equal(p->stats.slabs, 1);
  assert_true(kite__kcp_pool_trim(p, NULL) > 0);
  assert_int_equal(p->stats.slabs, 0);
  kite__kcp_pool_destroy(p);
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(invalid_configs_are_refused),
      cmocka_unit_test(budget_and_reserve_hold),
      cmocka_unit_test(rings_come_back_zeroed),
      cmocka_unit_test(many_slabs_are_freed),
      cmocka_unit_test(a_burst_is_given_back_after_an_idle_interval),
      cmocka_unit_test(a_slab_in_use_is_kept),
      cmocka_unit_test(a_steady_working_set_is_kept),
      cmocka_unit_test(a_fruitless_walk_backs_off),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
