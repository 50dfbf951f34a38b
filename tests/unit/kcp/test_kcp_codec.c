#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kcp/kcp_codec.h"

/* The byte layout of PROTOCOL.md section 3, written out by hand. */
static void header_layout_is_ikcps(void **state) {
  (void)state;
  kite__kcp_hdr h = {.conv = 0x11223344, .cmd = KITE_KCP_CMD_PUSH,
                     .frg = 5, .wnd = 0x0180, .ts = 0xA1A2A3A4,
                     .sn = 0xB1B2B3B4, .una = 0xC1C2C3C4, .len = 0x00000520};
  const uint8_t want[KITE_KCP_OVERHEAD] = {
      0x44, 0x33, 0x22, 0x11, 81, 5, 0x80, 0x01, 0xA4, 0xA3, 0xA2, 0xA1,
      0xB4, 0xB3, 0xB2, 0xB1, 0xC4, 0xC3, 0xC2, 0xC1, 0x20, 0x05, 0, 0};
  uint8_t buf[KITE_KCP_OVERHEAD + 1];
  buf[KITE_KCP_OVERHEAD] = 0xEE;
  uint8_t *end = kite__kcp_hdr_encode(buf, &h);
  assert_ptr_equal(end, buf + KITE_KCP_OVERHEAD);
  assert_memory_equal(buf, want, sizeof(want));
  assert_int_equal(buf[KITE_KCP_OVERHEAD], 0xEE); /* nothing written past */
  assert_int_equal(kite__kcp_peek_conv(buf), 0x11223344);
}

static void decode_inverts_encode(void **state) {
  (void)state;
  uint32_t x = 12345;
  for (int i = 0; i < 1000; i++) {
    kite__kcp_hdr h, back;
    x = x * 1103515245u + 12345u;
    h.conv = x;
    h.cmd = (uint8_t)(x >> 3);
    h.frg = (uint8_t)(x >> 11);
    h.wnd = (uint16_t)(x >> 7);
    h.ts = x * 3;
    h.sn = x * 5;
    h.una = x * 7;
    h.len = x * 11;
    uint8_t buf[KITE_KCP_OVERHEAD];
    kite__kcp_hdr_encode(buf, &h);
    kite__kcp_hdr_decode(buf, &back);
    assert_memory_equal(&h.conv, &back.conv, sizeof(h.conv));
    assert_int_equal(h.cmd, back.cmd);
    assert_int_equal(h.frg, back.frg);
    assert_int_equal(h.wnd, back.wnd);
    assert_int_equal(h.ts, back.ts);
    assert_int_equal(h.sn, back.sn);
    assert_int_equal(h.una, back.una);
    assert_int_equal(h.len, back.len);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(header_layout_is_ikcps),
      cmocka_unit_test(decode_inverts_encode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
