#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "base/map.h"
#include "kite/error.h"

/* Random puts and deletes against a plain array; keys chosen to collide a
 * lot (few distinct low bits), which is where backward shift can go wrong. */
static void matches_a_reference_under_heavy_deletion(void **state) {
  (void)state;
  enum { KEYS = 600, MAX = 300 };
  kite__map m;
  assert_int_equal(kite__map_init(&m, MAX), 0);
  static int64_t ref[KEYS]; /* -1: absent, else value */
  for (int i = 0; i < KEYS; i++)
    ref[i] = -1;
  uint64_t rng = 42;
  uint32_t count = 0;
  for (int step = 0; step < 200000; step++) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    int k = (int)((rng >> 33) % KEYS);
    uint64_t key = (uint64_t)k << 40 | (uint64_t)(k % 7); /* clustered */
    uint32_t v;
    if ((rng >> 20) & 1) {
      int rc = kite__map_put(&m, key, (uint32_t)step);
      if (ref[k] >= 0) {
        assert_int_equal(rc, KITE_ESTATE);
      } else if (count == MAX) {
        assert_int_equal(rc, KITE_EFULL);
      } else {
        assert_int_equal(rc, 0);
        ref[k] = step;
        count++;
      }
    } else {
      bool had = kite__map_del(&m, key);
      assert_int_equal(had, ref[k] >= 0);
      if (had) {
        ref[k] = -1;
        count--;
      }
    }
    if (step % 997 == 0) {
      for (int i = 0; i < KEYS; i++) {
        uint64_t ki = (uint64_t)i << 40 | (uint64_t)(i % 7);
        bool found = kite__map_get(&m, ki, &v);
        assert_int_equal(found, ref[i] >= 0);
        if (found)
          assert_int_equal(v, (uint32_t)ref[i]);
      }
      assert_int_equal(m.count, count);
    }
  }
  kite__map_free(&m);
}

static uint64_t key_of(uint32_t i) { /* spread, as hashed keys are */
  uint64_t k = (uint64_t)i * 0x9E3779B97F4A7C15ULL;
  return k ^ (k >> 29);
}

static void all_there(const kite__map *m, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to; i++) {
    uint32_t v = ~0u;
    assert_true(kite__map_get(m, key_of(i), &v));
    assert_int_equal(v, i);
  }
}

/* A map starts small, grows with its entries up to its bound and no
 * further, and keeps every entry across each rehash. */
static void grows_with_its_entries_up_to_max(void **state) {
  (void)state;
  enum { MAX = 5000 };
  kite__map m;
  assert_int_equal(kite__map_init(&m, MAX), 0);
  assert_int_equal(kite__map_bytes(&m), KITE__MAP_MIN_SLOTS * sizeof(kite__map_entry));
  for (uint32_t i = 0; i < MAX; i++) {
    assert_int_equal(kite__map_put(&m, key_of(i), i), 0);
    assert_true(2 * m.count <= m.mask + 1); /* load 1/2 at most */
  }
  assert_int_equal(kite__map_put(&m, key_of(MAX), MAX), KITE_EFULL);
  assert_int_equal(m.mask + 1, 16384); /* 5000 at load <= 1/2 */
  all_there(&m, 0, MAX);
  kite__map_free(&m);
}

/* After a burst the owner's shrink gives the table back once it is under
 * 1/8 full, down to 1/4 full; not before, and a put after it does not grow
 * it again until the count has doubled (no rehashing back and forth). */
static void shrinks_when_mostly_empty_with_hysteresis(void **state) {
  (void)state;
  enum { BURST = 4096 };
  kite__map m;
  assert_int_equal(kite__map_init(&m, 100000), 0);
  for (uint32_t i = 0; i < BURST; i++)
    assert_int_equal(kite__map_put(&m, key_of(i), i), 0);
  uint32_t peak = m.mask + 1; /* 8192 */
  assert_int_equal(peak, 8192);
  assert_int_equal(kite__map_shrink(&m), 0); /* half full: kept */

  /* Down to 1/8 full: still kept (the boundary is strict). */
  uint32_t left = peak / 8;
  for (uint32_t i = left; i < BURST; i++)
    assert_true(kite__map_del(&m, key_of(i)));
  assert_int_equal(kite__map_shrink(&m), 0);
  assert_int_equal(m.mask + 1, peak);

  /* One fewer: shrunk to the smallest table at most 1/4 full. */
  left--;
  assert_true(kite__map_del(&m, key_of(left)));
  size_t freed = kite__map_shrink(&m);
  assert_int_equal(m.mask + 1, 4096); /* 1023 <= 4096 / 4 */
  assert_int_equal(freed, (size_t)(peak - 4096) * sizeof(kite__map_entry));
  all_there(&m, 0, left);
  assert_int_equal(kite__map_shrink(&m), 0); /* 1/4 full: nothing to do */

  /* Hysteresis: it grows again only past 1/2, twice the count it had. */
  uint32_t n = m.mask + 1;
  for (uint32_t i = left; i < n / 2; i++)
    assert_int_equal(kite__map_put(&m, key_of(i), i), 0);
  assert_int_equal(m.mask + 1, n);
  assert_int_equal(kite__map_put(&m, key_of(n / 2), n / 2), 0);
  assert_int_equal(m.mask + 1, 2 * n);
  all_there(&m, 0, n / 2 + 1);

  /* Emptied: back to the minimum, and usable. */
  for (uint32_t i = 0; i <= n / 2; i++)
    assert_true(kite__map_del(&m, key_of(i)));
  assert_true(kite__map_shrink(&m) > 0);
  assert_int_equal(m.mask + 1, KITE__MAP_MIN_SLOTS);
  assert_int_equal(kite__map_shrink(&m), 0);
  assert_int_equal(kite__map_put(&m, key_of(7), 7), 0);
  all_there(&m, 7, 8);
  kite__map_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(matches_a_reference_under_heavy_deletion),
      cmocka_unit_test(grows_with_its_entries_up_to_max),
      cmocka_unit_test(shrinks_when_mostly_empty_with_hysteresis),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
