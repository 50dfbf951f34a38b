/*
 * The v2 handshake's control packets (PROTOCOL-v2.md section 3 and 8):
 * sizes, layouts, every refusal of decode, sealed ACCEPT and OPENED under
 * the wrong key or with any bit flipped, and the client's table checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kite/error.h"
#include "proto/control.h"
#include "proto/v2.h"
#include "proto/v2ctl.h"
#include "v2_vectors.h"

static uint8_t tnonce[24], sealed[512];

static int setup(void **state) {
  (void)state;
  vec_seq(tnonce, 0x40, 24);
  vec_seq(sealed, 0x10, 255);
  vec_seq(sealed + 255, 0x90, 257);
  return kite__v2_init();
}

static kite__v2ctl sample(uint8_t type) {
  kite__v2ctl c;
  memset(&c, 0, sizeof(c));
  c.type = type;
  c.version = KITE__V2_VERSION;
  vec_seq(c.nonce, 0x01, 8);
  switch (type) {
  case KITE__CTRL_CONNECT:
    c.mtu = 1400;
    c.rcv_wnd = 128;
    /* fall through */
  case KITE__CTRL_CHALLENGE:
    vec_seq(c.cookie, 0xc0, 16);
    break;
  case KITE__CTRL_REJECT:
    c.reason = KITE__REJECT_NOT_HERE;
    break;
  }
  if (type == KITE__CTRL_CONNECT || type == KITE__CTRL_OPEN) {
    c.expire_ts = VEC_EXPIRE_TS;
    c.token_nonce = tnonce;
    c.sealed = sealed;
  }
  if (type == KITE__CTRL_OPEN || type == KITE__CTRL_OPENED)
    memset(c.nonce, 0, 8);
  if (type == KITE__CTRL_ACCEPT || type == KITE__CTRL_OPENED) {
    vec_seq(c.accept_nonce, 0xa0, 8);
    c.body = sealed; /* any 36 or 28 bytes */
  }
  return c;
}

static const uint8_t types[] = {1, 2, 3, 4, 5, 7, 8};

static void sizes_are_the_table(void **state) {
  (void)state;
  static const size_t want[9] = {0, 64, 32, 580, 60, 17, 0, 552, 44};
  for (int t = 0; t < 256; t++)
    assert_int_equal(kite__v2ctl_size((uint8_t)t), t < 9 ? want[t] : 0);
  assert_int_equal(KITE__V2CTL_MAX, 580);
  /* Every UDP reply is smaller than its request, and TCP's OPENED than
   * OPEN; REJECT is the smallest. */
  assert_true(kite__v2ctl_size(2) < kite__v2ctl_size(1));
  assert_true(kite__v2ctl_size(4) < kite__v2ctl_size(3));
  assert_true(kite__v2ctl_size(5) < kite__v2ctl_size(1));
  assert_true(kite__v2ctl_size(8) < kite__v2ctl_size(7));
  assert_true(kite__v2ctl_to_server(1) && kite__v2ctl_to_server(3) &&
              kite__v2ctl_to_server(7));
  assert_false(kite__v2ctl_to_server(2) || kite__v2ctl_to_server(4) ||
               kite__v2ctl_to_server(5) || kite__v2ctl_to_server(8));
}

static void layouts_round_trip(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(types); i++) {
    kite__v2ctl c = sample(types[i]), d;
    uint8_t buf[KITE__V2CTL_MAX + 8];
    memset(buf, 0xEE, sizeof(buf));
    int n = kite__v2ctl_encode(buf, sizeof(buf), &c);
    assert_int_equal(n, (int)kite__v2ctl_size(c.type));
    assert_int_equal(buf[n], 0xEE); /* nothing past the size */
    assert_memory_equal(buf, "KITE", 4);
    assert_int_equal(buf[4], c.type);
    assert_int_equal(buf[5], 2);
    assert_int_equal(buf[6] | buf[7], 0);
    assert_int_equal(kite__v2ctl_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.type, c.type);
    assert_memory_equal(d.nonce, c.nonce, 8);
    assert_memory_equal(d.cookie, c.cookie, 16);
    assert_int_equal(d.mtu, c.mtu);
    assert_int_equal(d.rcv_wnd, c.rcv_wnd);
    assert_int_equal(d.expire_ts, c.expire_ts);
    assert_int_equal(d.reason, c.reason);
    assert_memory_equal(d.accept_nonce, c.accept_nonce, 8);
    if (c.sealed != NULL) {
      assert_memory_equal(d.token_nonce, tnonce, 24);
      assert_memory_equal(d.sealed, sealed, 512);
    } else {
      assert_null(d.sealed);
    }
    if (c.body != NULL)
      assert_memory_equal(d.body, sealed, c.type == 4 ? 36 : 28);
    /* Too small a buffer: nothing written. */
    assert_int_equal(kite__v2ctl_encode(buf, (size_t)n - 1, &c),
                     KITE_EMSGSIZE);
  }
  /* The offsets section 3 and 8 spell out. */
  uint8_t buf[KITE__V2CTL_MAX];
  kite__v2ctl c = sample(KITE__CTRL_CONNECT);
  kite__v2ctl_encode(buf, sizeof(buf), &c);
  assert_int_equal(buf[32] | buf[33] << 8, 1400);
  assert_int_equal(buf[34], 128);
  assert_int_equal(buf[36], (uint8_t)VEC_EXPIRE_TS);
  assert_memory_equal(buf + 44, tnonce, 24);
  assert_memory_equal(buf + 68, sealed, 512);
  c = sample(KITE__CTRL_OPEN);
  kite__v2ctl_encode(buf, sizeof(buf), &c);
  assert_int_equal(buf[8], (uint8_t)VEC_EXPIRE_TS);
  assert_memory_equal(buf + 16, tnonce, 24);
  assert_memory_equal(buf + 40, sealed, 512);
}

static void encode_refuses_undefined_types_and_missing_parts(void **state) {
  (void)state;
  uint8_t buf[KITE__V2CTL_MAX];
  kite__v2ctl c = sample(KITE__CTRL_HELLO);
  c.type = KITE__CTRL_CLOSE;
  assert_int_equal(kite__v2ctl_encode(buf, sizeof(buf), &c), KITE_EINVAL);
  c.type = 9;
  assert_int_equal(kite__v2ctl_encode(buf, sizeof(buf), &c), KITE_EINVAL);
  c = sample(KITE__CTRL_CONNECT);
  c.sealed = NULL;
  assert_int_equal(kite__v2ctl_encode(buf, sizeof(buf), &c), KITE_EINVAL);
  c = sample(KITE__CTRL_ACCEPT);
  c.body = NULL;
  assert_int_equal(kite__v2ctl_encode(buf, sizeof(buf), &c), KITE_EINVAL);
}

static void decode_refuses_in_order(void **state) {
  (void)state;
  uint8_t buf[KITE__V2CTL_MAX + 1];
  kite__v2ctl d;
  assert_int_equal(kite__v2ctl_decode(NULL, 0, &d), KITE__V2_EMAGIC);
  assert_int_equal(kite__v2ctl_decode((const uint8_t *)"KITX", 4, &d),
                   KITE__V2_EMAGIC);
  assert_int_equal(kite__v2ctl_decode((const uint8_t *)"KITE\1\2\0", 7, &d),
                   KITE__V2_ESIZE);

  /* Every size but the type's own is refused; HELLO takes 64 or more. */
  for (size_t i = 0; i < sizeof(types); i++) {
    kite__v2ctl c = sample(types[i]);
    memset(buf, 0, sizeof(buf));
    int n = kite__v2ctl_encode(buf, sizeof(buf), &c);
    for (size_t len = 8; len <= sizeof(buf); len++) {
      int rc = kite__v2ctl_decode(buf, len, &d);
      bool ok = c.type == KITE__CTRL_HELLO ? len >= 64 : len == (size_t)n;
      assert_int_equal(rc, ok ? 0 : KITE__V2_ESIZE);
    }
  }

  /* A v1 HELLO: EVERSION, with the type and the nonce for REJECT 2. */
  kite__v2ctl c = sample(KITE__CTRL_HELLO);
  kite__v2ctl_encode(buf, sizeof(buf), &c);
  buf[5] = 1;
  assert_int_equal(kite__v2ctl_decode(buf, 64, &d), KITE__V2_EVERSION);
  assert_int_equal(d.type, 1);
  assert_int_equal(d.version, 1);
  assert_memory_equal(d.nonce, c.nonce, 8);
  buf[5] = 3;
  assert_int_equal(kite__v2ctl_decode(buf, 12, &d), KITE__V2_EVERSION);

  /* Type 6 (closes go inside datagrams), 0 and 9..255. */
  buf[5] = 2;
  for (int t = 0; t < 256; t++) {
    if (kite__v2ctl_size((uint8_t)t) != 0)
      continue;
    buf[4] = (uint8_t)t;
    assert_int_equal(kite__v2ctl_decode(buf, 64, &d), KITE__V2_ETYPE);
  }
}

static const kite__v2accept good = {
    .conv = 0x12345601, .mtu = 1400, .rcv_wnd = 128,
    .idle_timeout_ms = 10000, .max_frame = 65536, .max_unreliable = 1364};

static void accept_needs_the_key_and_every_bit(void **state) {
  (void)state;
  uint8_t key[32], cn[8], an[8], pkt[60];
  vec_seq(key, 0x80, 32);
  vec_seq(cn, 0x01, 8);
  vec_seq(an, 0xa0, 8);
  kite__v2ctl_accept_seal(pkt, cn, an, &good, key);
  kite__v2accept a;
  assert_int_equal(kite__v2ctl_accept_open(pkt, key, &a), 0);

  uint8_t wrong[32];
  vec_seq(wrong, 0x60, 32); /* the other token key */
  assert_int_equal(kite__v2ctl_accept_open(pkt, wrong, &a), KITE__V2_EAUTH);
  static const kite__v2accept zero;
  assert_memory_equal(&a, &zero, sizeof(a));
  /* Header, client_nonce and accept_nonce are aad or nonce: every bit of
   * all 60 bytes counts. */
  for (size_t bit = 0; bit < 60 * 8; bit++) {
    uint8_t bad[60];
    memcpy(bad, pkt, 60);
    bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(kite__v2ctl_accept_open(bad, key, &a), KITE__V2_EAUTH);
  }

  uint8_t opened[44];
  vec_seq(an, 0xb0, 8);
  kite__v2ctl_opened_seal(opened, an, &good, key);
  assert_int_equal(kite__v2ctl_opened_open(opened, key, &a), 0);
  assert_int_equal(a.idle_timeout_ms, 10000);
  assert_int_equal(a.conv, 0); /* not carried */
  assert_int_equal(kite__v2ctl_opened_open(opened, wrong, &a), KITE__V2_EAUTH);
  for (size_t bit = 0; bit < 44 * 8; bit++) {
    uint8_t bad[44];
    memcpy(bad, opened, 44);
    bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(kite__v2ctl_opened_open(bad, key, &a), KITE__V2_EAUTH);
  }
  /* An ACCEPT body is not an OPENED body: the prefixes differ. */
  assert_int_not_equal(pkt[4], opened[4]);
}

static void accept_check_is_the_table(void **state) {
  (void)state;
  kite__v2accept a = good;
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), 0);
  assert_int_equal(kite__v2ctl_accept_check(&a, 1500), 0);
  assert_int_equal(kite__v2ctl_accept_check(&a, 1399), KITE__V2_EFORM);
  a.conv = KITE__CTRL_MAGIC;
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), KITE__V2_EFORM);
  a = good;
  a.mtu = 575;
  a.max_unreliable = kite__v2_max_unreliable(575, a.max_frame);
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), KITE__V2_EFORM);
  a.mtu = 576;
  a.max_unreliable = 540;
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), 0);
  a = good;
  a.rcv_wnd = 0;
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), KITE__V2_EFORM);
  a = good;
  a.max_unreliable = 1363;
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), KITE__V2_EFORM);
  a.max_unreliable = 1365;
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), KITE__V2_EFORM);
  a = good;
  a.max_frame = 1000; /* the frame limit binds */
  a.max_unreliable = 1000;
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), 0);
  a = good;
  a.reserved = 1;
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), KITE__V2_EFORM);
  assert_int_equal(kite__v2_max_unreliable(65535, UINT32_MAX), 65499);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sizes_are_the_table),
      cmocka_unit_test(layouts_round_trip),
      cmocka_unit_test(encode_refuses_undefined_types_and_missing_parts),
      cmocka_unit_test(decode_refuses_in_order),
      cmocka_unit_test(accept_needs_the_key_and_every_bit),
      cmocka_unit_test(accept_check_is_the_table),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
