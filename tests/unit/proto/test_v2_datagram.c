/*
 * Protected datagrams (PROTOCOL-v2.md section 4), key limits (section 9),
 * the items inside (section 5) and unreliable messages (section 6).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/le.h"
#include "kcp/kcp_codec.h"
#include "kite/error.h"
#include "proto/v2.h"
#include "proto/v2item.h"
#include "proto/v2pkt.h"
#include "proto/v2seq.h"
#include "v2_vectors.h"

#define CONV 0x12345601u

static uint8_t key[32], other[32];

static int setup(void **state) {
  (void)state;
  vec_seq(key, 0x24, 32);
  vec_seq(other, 0x25, 32);
  return kite__v2_init();
}

static void seal_open_and_every_flip(void **state) {
  (void)state;
  uint8_t items[64], dg[128], pt[128];
  int n = kite__v2item_put_close(items, sizeof(items), 0);
  n += kite__v2item_put_padding(items + n, sizeof(items) - (size_t)n, 40);
  assert_int_equal(n, 44);
  int len = kite__v2pkt_seal(dg, sizeof(dg), CONV, 5, key, items, (size_t)n);
  assert_int_equal(len, 72);
  assert_int_equal(kite__v2pkt_open(pt, dg, (size_t)len, key), 44);
  assert_memory_equal(pt, items, 44);

  assert_int_equal(kite__v2pkt_open(pt, dg, (size_t)len, other),
                   KITE__V2_EAUTH);
  /* conv and pn are aad and nonce: every bit of the datagram counts. */
  for (size_t bit = 0; bit < (size_t)len * 8; bit++) {
    uint8_t bad[128];
    memcpy(bad, dg, (size_t)len);
    bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(kite__v2pkt_open(pt, bad, (size_t)len, key),
                     KITE__V2_EAUTH);
  }
  /* Truncated anywhere: too short, or the tag no longer verifies. */
  for (size_t cut = 0; cut < (size_t)len; cut++)
    assert_int_equal(kite__v2pkt_open(pt, dg, cut, key),
                     cut < 31 ? KITE__V2_ESIZE : KITE__V2_EAUTH);

  /* Sealed and opened in place. */
  uint8_t buf[128];
  memcpy(buf + 12, items, 44);
  assert_int_equal(kite__v2pkt_seal(buf, sizeof(buf), CONV, 5, key, buf + 12, 44),
                   72);
  assert_memory_equal(buf, dg, 72);
  assert_int_equal(kite__v2pkt_open(buf + 12, buf, 72, key), 44);
  assert_memory_equal(buf + 12, items, 44);
}

static void seal_refusals_and_peek(void **state) {
  (void)state;
  uint8_t items[3] = {0, 0, 0}, dg[64];
  assert_int_equal(kite__v2pkt_seal(dg, sizeof(dg), CONV, 0, key, items, 2),
                   KITE_EINVAL);
  assert_int_equal(kite__v2pkt_seal(dg, 30, CONV, 0, key, items, 3),
                   KITE_EMSGSIZE);
  assert_int_equal(kite__v2pkt_seal(dg, 31, CONV, 0, key, items, 3), 31);
  assert_int_equal(
      kite__v2pkt_seal(dg, sizeof(dg), CONV, KITE__V2_PN_LIMIT, key, items, 3),
      KITE__V2_ELIMIT);
  assert_int_equal(kite__v2pkt_seal(dg, sizeof(dg), CONV,
                                    KITE__V2_PN_LIMIT - 1, key, items, 3),
                   31);
  uint32_t conv;
  uint64_t pn;
  assert_int_equal(kite__v2pkt_peek(dg, 31, &conv, &pn), 0);
  assert_int_equal(conv, CONV);
  assert_int_equal(pn, KITE__V2_PN_LIMIT - 1);
  assert_int_equal(kite__v2pkt_peek(dg, 30, &conv, &pn), KITE__V2_ESIZE);
  kite__put_le64(dg + 4, KITE__V2_PN_LIMIT);
  assert_int_equal(kite__v2pkt_peek(dg, 31, &conv, &pn), KITE__V2_ELIMIT);
  kite__put_le64(dg + 4, UINT64_MAX);
  assert_int_equal(kite__v2pkt_peek(dg, 31, &conv, &pn), KITE__V2_ELIMIT);

  uint8_t nonce[12];
  kite__v2pkt_nonce(nonce, KITE__V2_NP_DATAGRAM, 5);
  static const uint8_t want[12] = {0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0};
  assert_memory_equal(nonce, want, 12);
}

static void numbers_close_at_the_limit(void **state) {
  (void)state;
  kite__v2pn s = {.next = 0};
  uint64_t n;
  assert_int_equal(kite__v2pn_take(&s, &n), KITE__V2PN_OK);
  assert_int_equal(n, 0);
  assert_int_equal(kite__v2pn_take(&s, &n), KITE__V2PN_OK);
  assert_int_equal(n, 1);
  s.next = KITE__V2_PN_LIMIT - 4;
  assert_int_equal(kite__v2pn_take(&s, &n), KITE__V2PN_OK);
  for (uint64_t k = 3; k >= 1; k--) {
    assert_int_equal(kite__v2pn_take(&s, &n), KITE__V2PN_CLOSING);
    assert_int_equal(n, KITE__V2_PN_LIMIT - k);
  }
  assert_int_equal(kite__v2pn_take(&s, &n), KITE__V2_ELIMIT);
  assert_int_equal(kite__v2pn_take(&s, &n), KITE__V2_ELIMIT);
  assert_int_equal(s.next, KITE__V2_PN_LIMIT);
}

static const kite__v2item_rules to_server = {
    .conv = CONV, .max_unreliable = 100, .from_server = false};
static const kite__v2item_rules to_client = {
    .conv = CONV, .max_unreliable = 100, .from_server = true};

static size_t seg(uint8_t *out, uint32_t conv, uint8_t cmd, uint32_t len) {
  kite__kcp_hdr h = {.conv = conv, .cmd = cmd, .wnd = 32, .len = len};
  kite__kcp_hdr_encode(out, &h);
  memset(out + 24, 0x5A, len);
  return 24 + len;
}

static int check(const uint8_t *p, size_t len, const kite__v2item_rules *r,
                 kite__v2item_scan *s) {
  return kite__v2item_check(p, len, r, s);
}

static void items_refuse_each_malformation(void **state) {
  (void)state;
  uint8_t p[256], v[128];
  kite__v2item_scan s;
  size_t n;

  /* Runs past the end: a partial header, a value longer than the rest. */
  p[0] = KITE__V2ITEM_PADDING;
  assert_int_equal(check(p, 2, &to_server, &s), KITE__V2_EPROTO);
  assert_int_equal(s.why, KITE__V2ITEM_ETRUNC);
  kite__v2item_put_padding(p, sizeof(p), 10);
  assert_int_equal(check(p, 10, &to_server, &s), 0);
  assert_int_equal(check(p, 9, &to_server, &s), KITE__V2_EPROTO);
  assert_int_equal(s.why, KITE__V2ITEM_ETRUNC);
  assert_int_equal(check(p, 11, &to_server, &s), KITE__V2_EPROTO); /* 1 left */

  /* Lengths a type does not allow. */
  struct {
    uint8_t type;
    uint16_t len;
  } bad_len[] = {{KITE__V2ITEM_CLOSE, 0},          {KITE__V2ITEM_CLOSE, 2},
                 {KITE__V2ITEM_PATH_CHALLENGE, 7}, {KITE__V2ITEM_PATH_CHALLENGE, 9},
                 {KITE__V2ITEM_PATH_RESPONSE, 0},  {KITE__V2ITEM_UNRELIABLE, 4}};
  memset(v, 0, sizeof(v));
  for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
    n = (size_t)kite__v2item_put(p, sizeof(p), bad_len[i].type, v,
                                 bad_len[i].len);
    assert_int_equal(check(p, n, &to_client, &s), KITE__V2_EPROTO);
    assert_int_equal(s.why, KITE__V2ITEM_ELEN);
  }

  /* KCP: whole segments of this conv, cmd 81..84, filling the value. */
  n = seg(v, CONV, KITE_KCP_CMD_PUSH, 4);
  n += seg(v + n, CONV, KITE_KCP_CMD_ACK, 0);
  size_t good = (size_t)kite__v2item_put(p, sizeof(p), KITE__V2ITEM_KCP, v, n);
  assert_int_equal(check(p, good, &to_server, &s), 0);
  struct {
    uint32_t conv;
    uint8_t cmd;
    size_t cut; /* bytes of the value dropped from its end */
  } bad_kcp[] = {{CONV + 1, 81, 0}, {CONV, 80, 0}, {CONV, 85, 0},
                 {CONV, 81, 1},     {CONV, 81, 23}};
  for (size_t i = 0; i < sizeof(bad_kcp) / sizeof(bad_kcp[0]); i++) {
    size_t m = seg(v, CONV, KITE_KCP_CMD_PUSH, 4);
    m += seg(v + m, bad_kcp[i].conv, bad_kcp[i].cmd, 0);
    m -= bad_kcp[i].cut;
    size_t k = (size_t)kite__v2item_put(p, sizeof(p), KITE__V2ITEM_KCP, v, m);
    assert_int_equal(check(p, k, &to_server, &s), KITE__V2_EPROTO);
    assert_int_equal(s.why, KITE__V2ITEM_EKCP);
  }
  /* Trailing bytes after whole segments; a value under 24 bytes. */
  n = seg(v, CONV, KITE_KCP_CMD_WINS, 0);
  v[n] = 0;
  size_t k = (size_t)kite__v2item_put(p, sizeof(p), KITE__V2ITEM_KCP, v, n + 1);
  assert_int_equal(check(p, k, &to_server, &s), KITE__V2_EPROTO);
  k = (size_t)kite__v2item_put(p, sizeof(p), KITE__V2ITEM_KCP, v, 23);
  assert_int_equal(check(p, k, &to_server, &s), KITE__V2_EPROTO);
  k = (size_t)kite__v2item_put(p, sizeof(p), KITE__V2ITEM_KCP, v, 0);
  assert_int_equal(check(p, k, &to_server, &s), KITE__V2_EPROTO);

  /* UNRELIABLE: pong only on msg_id 0, ping body 32 at most, body at most
   * max_unreliable (100 here). */
  k = (size_t)kite__v2item_put_unreliable(p, sizeof(p), 1, KITE__V2U_F_PONG, 0,
                                          v, 0, 100);
  assert_int_equal(check(p, k, &to_server, &s), KITE__V2_EPROTO);
  assert_int_equal(s.why, KITE__V2ITEM_EPONG);
  k = (size_t)kite__v2item_put_unreliable(p, sizeof(p), 0, KITE__V2U_F_PONG, 0,
                                          v, 32, 100);
  assert_int_equal(check(p, k, &to_server, &s), 0);
  k = (size_t)kite__v2item_put_unreliable(p, sizeof(p), 0, 0, 0, v, 33, 100);
  assert_int_equal(check(p, k, &to_server, &s), KITE__V2_EPROTO);
  assert_int_equal(s.why, KITE__V2ITEM_EPING);
  k = (size_t)kite__v2item_put_unreliable(p, sizeof(p), 7, 0, 0, v, 100, 100);
  assert_int_equal(check(p, k, &to_server, &s), 0);
  k = (size_t)kite__v2item_put_unreliable(p, sizeof(p), 7, 0, 0, v, 101, 101);
  assert_int_equal(check(p, k, &to_server, &s), KITE__V2_EPROTO);
  assert_int_equal(s.why, KITE__V2ITEM_EBODY);
  /* Bits 2..7 of flags are ignored. */
  k = (size_t)kite__v2item_put_unreliable(p, sizeof(p), 7, 0xFC, 0, v, 1, 100);
  assert_int_equal(check(p, k, &to_server, &s), 0);
}

static void a_bad_item_spoils_the_datagram(void **state) {
  (void)state;
  uint8_t p[128], v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  kite__v2item_scan s;
  size_t n = (size_t)kite__v2item_put_unreliable(p, sizeof(p), 9, 0, 0, "x", 1,
                                                 100);
  n += (size_t)kite__v2item_put(p + n, sizeof(p) - n, KITE__V2ITEM_CLOSE, v, 2);
  assert_int_equal(check(p, n, &to_server, &s), KITE__V2_EPROTO);
  assert_int_equal(s.end, 0);
}

static void close_ends_reading_and_others_are_skipped(void **state) {
  (void)state;
  uint8_t p[128], data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  size_t n = 0;
  n += (size_t)kite__v2item_put(p + n, sizeof(p) - n, 200, "abc", 3);
  n += (size_t)kite__v2item_put(p + n, sizeof(p) - n, 6, NULL, 0);
  n += (size_t)kite__v2item_put_path(p + n, sizeof(p) - n,
                                     KITE__V2ITEM_PATH_CHALLENGE, data);
  n += (size_t)kite__v2item_put_path(p + n, sizeof(p) - n,
                                     KITE__V2ITEM_PATH_RESPONSE, data);
  n += (size_t)kite__v2item_put_unreliable(p + n, sizeof(p) - n, 0,
                                           KITE__V2U_F_PONG, 0, "hi", 2, 100);
  n += (size_t)kite__v2item_put_close(p + n, sizeof(p) - n, 99);
  size_t end = n;
  memset(p + n, 0xFF, 5); /* garbage after CLOSE: never read */
  n += 5;

  kite__v2item_scan s;
  assert_int_equal(check(p, n, &to_server, &s), 0);
  assert_int_equal(s.end, end);
  assert_true(s.close);
  assert_int_equal(s.reserved, 2);
  assert_int_equal(s.wrong_way, 1); /* the challenge, sent to the server */

  kite__v2item_iter it;
  kite__v2item item;
  kite__v2item_iter_init(&it, p, s.end, false);
  assert_true(kite__v2item_next(&it, &item));
  assert_int_equal(item.type, KITE__V2ITEM_PATH_RESPONSE);
  assert_memory_equal(item.value, data, 8);
  assert_true(kite__v2item_next(&it, &item));
  assert_int_equal(item.type, KITE__V2ITEM_UNRELIABLE);
  assert_int_equal(item.flags, KITE__V2U_F_PONG);
  assert_int_equal(item.body_len, 2);
  assert_true(kite__v2item_next(&it, &item));
  assert_int_equal(item.type, KITE__V2ITEM_CLOSE);
  assert_int_equal(item.reason, 0); /* unknown reason: read as 0 */
  assert_false(kite__v2item_next(&it, &item));

  /* Seen by the client: the response is the wrong way, the challenge not. */
  assert_int_equal(check(p, n, &to_client, &s), 0);
  assert_int_equal(s.wrong_way, 1);
  kite__v2item_iter_init(&it, p, s.end, true);
  assert_true(kite__v2item_next(&it, &item));
  assert_int_equal(item.type, KITE__V2ITEM_PATH_CHALLENGE);

  /* A known reason is kept. */
  n = (size_t)kite__v2item_put_close(p, sizeof(p), KITE__CLOSE_KEY_EXHAUSTED);
  assert_int_equal(check(p, n, &to_client, &s), 0);
  kite__v2item_iter_init(&it, p, s.end, true);
  assert_true(kite__v2item_next(&it, &item));
  assert_int_equal(item.reason, 7);
}

static void encoders_refuse_what_does_not_fit(void **state) {
  (void)state;
  uint8_t p[64], body[64] = {0};
  assert_int_equal(kite__v2item_put_unreliable(p, sizeof(p), 1, 0, 0, body, 51,
                                               50),
                   KITE_EMSGSIZE);
  assert_int_equal(kite__v2item_put_unreliable(p, 57, 1, 0, 0, body, 50, 50),
                   KITE_EMSGSIZE);
  assert_int_equal(kite__v2item_put_unreliable(p, 58, 1, 0, 0, body, 50, 50),
                   58);
  assert_int_equal(kite__v2item_put(p, 2, KITE__V2ITEM_PADDING, NULL, 0),
                   KITE_EMSGSIZE);
  assert_int_equal(kite__v2item_put(p, sizeof(p), 1, body, 65536),
                   KITE_EMSGSIZE);
  assert_int_equal(kite__v2item_put_padding(p, sizeof(p), 2), KITE_EINVAL);
  assert_int_equal(kite__v2item_put_padding(p, sizeof(p), 65), KITE_EMSGSIZE);
  assert_int_equal(kite__v2item_put_path(p, sizeof(p), KITE__V2ITEM_CLOSE,
                                         body),
                   KITE_EINVAL);
  assert_int_equal(kite__v2item_put_close(p, 3, 1), KITE_EMSGSIZE);
  assert_int_equal(kite__v2item_put_close(p, 4, 1), 4);
}

static void sequencing_keeps_the_newest(void **state) {
  (void)state;
  kite__v2seq s;
  kite__v2seq_init(&s);
  assert_true(kite__v2seq_accept(&s, 10, 500)); /* the first, whatever seq */
  assert_false(kite__v2seq_accept(&s, 10, 500));
  assert_false(kite__v2seq_accept(&s, 10, 499));
  assert_true(kite__v2seq_accept(&s, 10, 502));
  assert_false(kite__v2seq_accept(&s, 10, 501));
  assert_true(kite__v2seq_accept(&s, 11, 0)); /* per msg_id */

  /* 65535 wraps to 0; half the space ahead is newer, behind older. */
  kite__v2seq_init(&s);
  assert_true(kite__v2seq_accept(&s, 1, 65535));
  assert_true(kite__v2seq_accept(&s, 1, 0));
  assert_false(kite__v2seq_accept(&s, 1, 65535));
  assert_true(kite__v2seq_accept(&s, 1, 32767));
  assert_false(kite__v2seq_accept(&s, 1, 0)); /* 32767 behind */
  assert_true(kite__v2seq_accept(&s, 1, 65534)); /* 32767 ahead */

  /* 64 msg_ids are tracked; the 65th forgets the least recently used. */
  kite__v2seq_init(&s);
  for (uint16_t id = 0; id < 64; id++)
    assert_true(kite__v2seq_accept(&s, id, 100));
  assert_true(kite__v2seq_accept(&s, 0, 101)); /* id 0 used again */
  for (uint16_t id = 0; id < 64; id++)
    assert_false(kite__v2seq_accept(&s, id, 99));
  /* Every id was just looked at, oldest-first from 0: 0 is now the LRU. */
  assert_int_equal(s.forgotten, 0);
  assert_true(kite__v2seq_accept(&s, 1000, 0));
  assert_int_equal(s.forgotten, 1);
  assert_true(kite__v2seq_accept(&s, 0, 50)); /* forgotten: gets through */
  assert_int_equal(s.forgotten, 2);
  assert_true(kite__v2seq_accept(&s, 1000, 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(seal_open_and_every_flip),
      cmocka_unit_test(seal_refusals_and_peek),
      cmocka_unit_test(numbers_close_at_the_limit),
      cmocka_unit_test(items_refuse_each_malformation),
      cmocka_unit_test(a_bad_item_spoils_the_datagram),
      cmocka_unit_test(close_ends_reading_and_others_are_skipped),
      cmocka_unit_test(encoders_refuse_what_does_not_fit),
      cmocka_unit_test(sequencing_keeps_the_newest),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
