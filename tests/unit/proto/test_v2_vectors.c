/*
 * Every test vector of PROTOCOL-v2.md section 11, byte for byte, made by
 * kite's own encoders and read back by its own decoders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "kcp/kcp_codec.h"
#include "proto/frame.h"
#include "proto/replay.h"
#include "proto/v2.h"
#include "proto/v2ctl.h"
#include "proto/v2item.h"
#include "proto/v2pkt.h"
#include "proto/v2rec.h"
#include "proto/v2tok.h"
#include "v2_vectors.h"

/* |hex| (pairs of digits, spaces ignored) into |out|; returns the bytes. */
static size_t unhex(uint8_t *out, size_t cap, const char *hex) {
  size_t n = 0;
  for (const char *c = hex; *c != '\0';) {
    if (*c == ' ' || *c == '\n') {
      c++;
      continue;
    }
    unsigned v;
    assert_int_equal(sscanf(c, "%2x", &v), 1);
    assert_true(n < cap);
    out[n++] = (uint8_t)v;
    c += 2;
  }
  return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *hex) {
  uint8_t want[1024];
  size_t n = unhex(want, sizeof(want), hex);
  assert_int_equal(len, n);
  assert_memory_equal(got, want, n);
}

static void assert_sha256(const uint8_t *p, size_t len, const char *hex) {
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, p, len);
  assert_hex(h, sizeof(h), hex);
}

static int setup(void **state) {
  (void)state;
  return kite__v2_init();
}

static void token_aad(void **state) {
  (void)state;
  uint8_t aad[KITE__V2TOK_AAD];
  kite__v2tok_aad(aad, VEC_PROTOCOL_ID, VEC_EXPIRE_TS);
  assert_hex(aad, sizeof(aad),
             "02 88 77 66 55 44 33 22 11 1e f1 53 65 00 00 00 00");
}

/* The private part is checked by opening the sealed one with libsodium
 * directly, so the seal and the layout are both the contract's. */
static void token_parts(void **state) {
  (void)state;
  uint8_t tok[KITE__V2TOK_PUBLIC], key[32];
  assert_int_equal(vec_token(tok, key), 0);
  const uint8_t *sealed = tok + 288;
  assert_hex(sealed, 8, "fe 39 05 70 d0 e0 79 16");
  assert_hex(sealed + 496, 16,
             "f6 2f f5 d8 38 45 62 31 8c 18 88 29 da 88 e4 b5");
  assert_sha256(sealed, 512,
                "039cd0e8b7cec4115ea0fecaadb41fdbd700340e985981b27a5bb358e6794a58");
  assert_sha256(tok, sizeof(tok),
                "37bb63f1c6c43216bb02660fee23bd8f4acbd244643f81ff405a1069c77f6f37");

  uint8_t aad[17], nonce[24], priv[496];
  kite__v2tok_aad(aad, VEC_PROTOCOL_ID, VEC_EXPIRE_TS);
  vec_seq(nonce, 0x40, 24);
  assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
                       priv, NULL, NULL, sealed, 512, aad, 17, nonce, key),
                   0);
  assert_sha256(priv, sizeof(priv),
                "26404669431a96c9d901af962443a85c52f715d0eac64fe4cedca26823e35d65");
  /* The address entry as section 11 spells it. */
  assert_hex(priv + 16, 20,
             "01 00 59 1b 7f 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00");

  /* And kite's own readers agree with the fields. */
  kite__v2tok pub, opened;
  assert_int_equal(kite__v2tok_read(tok, sizeof(tok), &pub), 0);
  assert_int_equal(pub.protocol_id, VEC_PROTOCOL_ID);
  assert_int_equal(pub.expire_ts, VEC_EXPIRE_TS);
  assert_int_equal(kite__v2tok_open(key, VEC_PROTOCOL_ID, VEC_EXPIRE_TS,
                                    pub.nonce, pub.sealed, &opened),
                   0);
  assert_int_equal(opened.client_id, 42);
  assert_int_equal(opened.timeout_s, 10);
  assert_memory_equal(opened.user_data, "player=alice\0\0", 14);
  assert_memory_equal(opened.c2s_key, pub.c2s_key, 32);
  assert_memory_equal(opened.s2c_key, pub.s2c_key, 32);
  kite__v2addr a = vec_addr();
  assert_true(kite__v2tok_lists(&opened, &a));
  kite__v2tok_wipe(&opened);
}

static void connect_packet(void **state) {
  (void)state;
  uint8_t tok[KITE__V2TOK_PUBLIC];
  assert_int_equal(vec_token(tok, NULL), 0);
  kite__v2tok pub;
  assert_int_equal(kite__v2tok_read(tok, sizeof(tok), &pub), 0);
  kite__v2ctl c;
  memset(&c, 0, sizeof(c));
  c.type = KITE__CTRL_CONNECT;
  vec_seq(c.nonce, 0x01, 8);
  vec_seq(c.cookie, 0xc0, 16);
  c.mtu = 1400;
  c.rcv_wnd = 128;
  c.expire_ts = pub.expire_ts;
  c.token_nonce = pub.nonce;
  c.sealed = pub.sealed;
  uint8_t out[KITE__V2CTL_MAX];
  assert_int_equal(kite__v2ctl_encode(out, sizeof(out), &c), 580);
  assert_sha256(out, 580,
                "18771b8f65331089ed9c9faaa7a36ecb3e4298a79a7e448cd2abc7cc178b13f5");
  kite__v2ctl d;
  assert_int_equal(kite__v2ctl_decode(out, 580, &d), 0);
  assert_memory_equal(d.sealed, tok + 288, 512);
  assert_memory_equal(d.token_nonce, tok + 32, 24);
  assert_int_equal(d.expire_ts, VEC_EXPIRE_TS);
}

static void traffic_keys(void **state) {
  (void)state;
  uint8_t c2s[32], s2c[32], cn[8], an[8], tn[8];
  vec_seq(c2s, 0x60, 32);
  vec_seq(s2c, 0x80, 32);
  vec_seq(cn, 0x01, 8);
  vec_seq(an, 0xa0, 8);
  vec_seq(tn, 0xb0, 8);
  uint8_t label[15];
  assert_int_equal(unhex(label, sizeof(label),
                         "6b 69 74 65 20 76 32 20 75 64 70 20 63 32 73"),
                   15);
  assert_memory_equal(label, KITE__V2_LABEL_UDP_C2S, 15);

  kite__v2keys udp, tcp;
  kite__v2_traffic_keys(&udp, c2s, s2c, false, cn, an);
  assert_hex(udp.c2s, 32,
             "241b35bd5814a42d26040daf2f848a94419c686ef626bbd4931fb3f3a28e27eb");
  assert_hex(udp.s2c, 32,
             "fdef9565ea0c3d66974ed2520952b2b8b6e941c691fe2906dc9e9b6ea1cc3aed");
  kite__v2_traffic_keys(&tcp, c2s, s2c, true, cn /* ignored */, tn);
  assert_hex(tcp.s2c, 32,
             "1b690f88b45bc24007248f8c3d75cf8875f00be15f391a1c895d54eed585e8a7");
  /* The kdf is crypto_generichash keyed, nothing more. */
  uint8_t in[31], want[32];
  memcpy(in, "kite v2 udp s2c", 15);
  memcpy(in + 15, cn, 8);
  memcpy(in + 23, an, 8);
  crypto_generichash(want, 32, in, 31, s2c, 32);
  assert_memory_equal(udp.s2c, want, 32);
}

static const kite__v2accept vec_accept = {
    .conv = 0x12345601, .mtu = 1400, .rcv_wnd = 128,
    .idle_timeout_ms = 10000, .max_frame = 65536, .max_unreliable = 1364};

static void accept_packet(void **state) {
  (void)state;
  uint8_t s2c[32], cn[8], an[8];
  vec_seq(s2c, 0x80, 32);
  vec_seq(cn, 0x01, 8);
  vec_seq(an, 0xa0, 8);
  assert_int_equal(kite__v2_max_unreliable(1400, 65536), 1364);
  uint8_t pkt[KITE__V2CTL_ACCEPT];
  kite__v2ctl_accept_seal(pkt, cn, an, &vec_accept, s2c);
  assert_hex(pkt, sizeof(pkt),
             "4b 49 54 45 04 02 00 00 01 02 03 04 05 06 07 08"
             "a0 a1 a2 a3 a4 a5 a6 a7 cb e6 31 2f ab 40 4f 8c"
             "4a 82 9f c3 62 73 cb 76 15 96 c2 cb 9c ed 2d 5f"
             "a2 50 78 96 5a d4 e1 0e e5 8c ea 94");

  /* The nonce and plaintext of section 11, opened by hand. */
  uint8_t nonce[12], pt[20];
  assert_int_equal(unhex(nonce, 12, "01 00 00 00 a0 a1 a2 a3 a4 a5 a6 a7"), 12);
  assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt(
                       pt, NULL, NULL, pkt + 24, 36, pkt, 24, nonce, s2c),
                   0);
  assert_hex(pt, 20,
             "01 56 34 12 78 05 80 00 10 27 00 00 00 00 01 00 54 05 00 00");

  kite__v2ctl d;
  assert_int_equal(kite__v2ctl_decode(pkt, sizeof(pkt), &d), 0);
  assert_int_equal(d.type, KITE__CTRL_ACCEPT);
  assert_memory_equal(d.nonce, cn, 8);
  assert_memory_equal(d.accept_nonce, an, 8);
  kite__v2accept a;
  assert_int_equal(kite__v2ctl_accept_open(pkt, s2c, &a), 0);
  assert_memory_equal(&a, &vec_accept, sizeof(a));
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), 0);
}

static void opened_packet(void **state) {
  (void)state;
  uint8_t s2c[32], tn[8];
  vec_seq(s2c, 0x80, 32);
  vec_seq(tn, 0xb0, 8);
  kite__v2accept o = {.idle_timeout_ms = 10000, .max_frame = 65536,
                      .max_unreliable = 1364};
  uint8_t pkt[KITE__V2CTL_OPENED];
  kite__v2ctl_opened_seal(pkt, tn, &o, s2c);
  assert_hex(pkt, sizeof(pkt),
             "4b 49 54 45 08 02 00 00 b0 b1 b2 b3 b4 b5 b6 b7 40 43 cc e7 07 "
             "68 d4 66 77 65 49 26 2b 97 7d 33 01 67 8e 98 8e 4b 5e 5e df b2 "
             "da 8d");
  uint8_t nonce[12], pt[12];
  assert_int_equal(unhex(nonce, 12, "02 00 00 00 b0 b1 b2 b3 b4 b5 b6 b7"), 12);
  assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt(
                       pt, NULL, NULL, pkt + 16, 28, pkt, 16, nonce, s2c),
                   0);
  assert_hex(pt, 12, "10 27 00 00 00 00 01 00 54 05 00 00");
  kite__v2accept back;
  assert_int_equal(kite__v2ctl_opened_open(pkt, s2c, &back), 0);
  assert_memory_equal(&back, &o, sizeof(o));
}

static void tcp_record(void **state) {
  (void)state;
  uint8_t c2s[32], s2c[32], tn[8];
  vec_seq(c2s, 0x60, 32);
  vec_seq(s2c, 0x80, 32);
  vec_seq(tn, 0xb0, 8);
  kite__v2keys k;
  kite__v2_traffic_keys(&k, c2s, s2c, true, NULL, tn);
  uint8_t frame[16];
  kite__frame_header(frame, KITE__MSG_PING, KITE__FRAME_F_PONG, "ping", 4,
                     false);
  memcpy(frame + 12, "ping", 4);
  assert_hex(frame, 16, "04 00 00 00 00 00 02 00 00 00 00 00 70 69 6e 67");
  uint8_t rec[64];
  assert_int_equal(kite__v2rec_seal(rec, sizeof(rec), 0, k.s2c, frame, 16), 34);
  assert_hex(rec, 34,
             "10 00 86 5a 8a 9a 05 c7 0a 61 26 bc 5d be 43 a1 ee b3 d2 2b 51 "
             "f5 26 63 48 d6 2c c6 fe 0a f4 c2 97 bb");
  kite__v2rec_reader r;
  assert_int_equal(kite__v2rec_reader_init(&r, k.s2c), 0);
  const uint8_t *pt;
  size_t n;
  assert_int_equal(kite__v2rec_read(&r, rec, 34, &pt, &n), 34);
  assert_non_null(pt);
  assert_int_equal(n, 16);
  assert_memory_equal(pt, frame, 16);
  kite__v2rec_reader_free(&r);
}

static const char vec_plain[] =
    "01 28 00 01 56 34 12 51 00 80 00 e8 03 00 00 00"
    "00 00 00 00 00 00 00 10 00 00 00 04 00 00 00 00"
    "00 00 00 00 00 00 00 70 69 6e 67 02 09 00 10 00"
    "01 07 00 73 6e 61 70";

static const char vec_sent[] =
    "01 56 34 12 05 00 00 00 00 00 00 00 98 98 f3 51"
    "fa 19 2a 13 1c 55 1b e6 8c ff 92 f4 ab 84 5a e9"
    "1b c8 4d aa 32 a7 e6 09 0c 8a 2a 79 e0 3c 33 28"
    "33 f8 3f 42 cc c6 68 42 3d 78 6a 65 c9 72 fc e7"
    "15 9c 2d 18 9e 18 17 43 86 3a 25 34 3f 90 2e 27"
    "fa 7e 84";

static void datagram(void **state) {
  (void)state;
  uint8_t c2s[32], s2c[32], cn[8], an[8];
  vec_seq(c2s, 0x60, 32);
  vec_seq(s2c, 0x80, 32);
  vec_seq(cn, 0x01, 8);
  vec_seq(an, 0xa0, 8);
  kite__v2keys k;
  kite__v2_traffic_keys(&k, c2s, s2c, false, cn, an);

  /* The items, built by kite's encoders. */
  uint8_t seg[40];
  kite__kcp_hdr h = {.conv = 0x12345601, .cmd = KITE_KCP_CMD_PUSH, .frg = 0,
                     .wnd = 128, .ts = 1000, .sn = 0, .una = 0, .len = 16};
  kite__kcp_hdr_encode(seg, &h);
  kite__frame_header(seg + 24, KITE__MSG_PING, 0, "ping", 4, false);
  memcpy(seg + 36, "ping", 4);
  uint8_t items[128];
  int n = kite__v2item_put(items, sizeof(items), KITE__V2ITEM_KCP, seg, 40);
  assert_int_equal(n, 43);
  int m = kite__v2item_put_unreliable(items + n, sizeof(items) - (size_t)n,
                                      0x0010, KITE__V2U_F_SEQ, 7, "snap", 4,
                                      1364);
  assert_int_equal(m, 12);
  assert_hex(items, (size_t)(n + m), vec_plain);

  uint8_t dg[256];
  int len = kite__v2pkt_seal(dg, sizeof(dg), 0x12345601, 5, k.c2s, items,
                             (size_t)(n + m));
  assert_int_equal(len, 83);
  assert_hex(dg, 83, vec_sent);

  /* And received: peek, window, open, record, items. */
  uint32_t conv;
  uint64_t pn;
  assert_int_equal(kite__v2pkt_peek(dg, 83, &conv, &pn), 0);
  assert_int_equal(conv, 0x12345601);
  assert_int_equal(pn, 5);
  kite__replay w;
  kite__replay_init(&w);
  assert_int_equal(kite__replay_check(&w, pn), 0);
  uint8_t pt[128];
  assert_int_equal(kite__v2pkt_open(pt, dg, 83, k.c2s), 55);
  assert_int_equal(kite__replay_record(&w, pn), 1);
  kite__v2item_rules rules = {.conv = conv, .max_unreliable = 1364,
                              .from_server = false};
  kite__v2item_scan scan;
  assert_int_equal(kite__v2item_check(pt, 55, &rules, &scan), 0);
  assert_int_equal(scan.end, 55);
  kite__v2item_iter it;
  kite__v2item_iter_init(&it, pt, scan.end, false);
  kite__v2item item;
  assert_true(kite__v2item_next(&it, &item));
  assert_int_equal(item.type, KITE__V2ITEM_KCP);
  assert_int_equal(item.len, 40);
  assert_memory_equal(item.value, seg, 40);
  assert_true(kite__v2item_next(&it, &item));
  assert_int_equal(item.type, KITE__V2ITEM_UNRELIABLE);
  assert_int_equal(item.msg_id, 0x0010);
  assert_int_equal(item.flags, 1);
  assert_int_equal(item.seq, 7);
  assert_int_equal(item.body_len, 4);
  assert_memory_equal(item.body, "snap", 4);
  assert_false(kite__v2item_next(&it, &item));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(token_aad),      cmocka_unit_test(token_parts),
      cmocka_unit_test(connect_packet), cmocka_unit_test(traffic_keys),
      cmocka_unit_test(accept_packet),  cmocka_unit_test(opened_packet),
      cmocka_unit_test(tcp_record),     cmocka_unit_test(datagram),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
