/*
 * v1 conv generation (conv.h): the shard byte kept, 24 random bits above
 * it (each bit set about half the time over many draws), never the control
 * magic, never a conv the shard already holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/conv.h"

#include "proto/control.h"

#include <sodium.h>

#define DRAWS 100000

static void many_convs_random_above_the_shard_byte(void **state) {
  (void)state;
  kite__map live;
  assert_int_equal(kite__map_init(&live, DRAWS), 0);
  uint32_t ones[32] = {0};
  for (uint32_t i = 0; i < DRAWS; i++) {
    uint32_t conv = kite__conv_new(&live, 7);
    assert_int_equal(kite__conv_shard(conv), 7);
    assert_true(conv != KITE__CTRL_MAGIC);
    /* distinct: the map refuses a key it holds */
    assert_int_equal(kite__map_put(&live, kite__conv_key(conv), i), 0);
    for (int b = 0; b < 32; b++)
      ones[b] += conv >> b & 1;
  }
  /* The shard byte is 7 in every draw; each of the 24 bits above is set
   * in about half of them (binomial, sd 158: 2,000 away is impossible). */
  for (int b = 0; b < 8; b++)
    assert_int_equal(ones[b], (7u >> b & 1) ? DRAWS : 0);
  for (int b = 8; b < 32; b++) {
    assert_in_range(ones[b], DRAWS / 2 - 2000, DRAWS / 2 + 2000);
  }
  kite__map_free(&live);
}

static void magic_and_live_convs_never_handed_out(void **state) {
  (void)state;
  kite__map live;
  assert_int_equal(kite__map_init(&live, 4), 0);
  assert_false(kite__conv_usable(&live, KITE__CTRL_MAGIC));
  uint32_t conv = kite__conv_make(3, 0xABCDEF);
  assert_int_equal(conv, 0xABCDEF03u);
  assert_true(kite__conv_usable(&live, conv));
  assert_int_equal(kite__map_put(&live, kite__conv_key(conv), 0), 0);
  assert_false(kite__conv_usable(&live, conv));
  /* the same random bits on another shard are another conv */
  assert_true(kite__conv_usable(&live, kite__conv_make(4, 0xABCDEF)));
  kite__map_free(&live);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(many_convs_random_above_the_shard_byte),
      cmocka_unit_test(magic_and_live_convs_never_handed_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
