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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(invalid_configs_are_refused),
      cmocka_unit_test(budget_and_reserve_hold),
      cmocka_unit_test(rings_come_back_zeroed),
      cmocka_unit_test(many_slabs_are_freed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
