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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(matches_a_reference_under_heavy_deletion),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
