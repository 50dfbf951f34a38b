#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kite/error.h"
#include "proto/control.h"

#define HDR(type) 0x4B, 0x49, 0x54, 0x45, (type), 1, 0, 0
#define NONCE 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8
#define COOKIE                                                                \
  0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xCB,     \
      0xCC, 0xCD, 0xCE, 0xCF
#define TOKEN 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78

/* The layouts of PROTOCOL.md section 2, byte by byte. The values are those
 * of sample(): nonce A1.., cookie C0.., token 71.., conv 0x11223344, mtu
 * 0x0578 (1400), rcv_wnd 0x0080, idle 0x00007530 (30000), max_frame
 * 0x00010000, reason 4 (REJECT) or 5 (CLOSE). */
static const uint8_t hello[64] = {HDR(1), NONCE}; /* then 48 zeros */
static const uint8_t challenge[32] = {HDR(2), NONCE, COOKIE};
static const uint8_t connect_[64] = {HDR(3), NONCE, COOKIE,
                                     0x78, 0x05,  /* 32: mtu */
                                     0x80, 0x00}; /* 34: rcv_wnd, then 0s */
static const uint8_t accept_[40] = {HDR(4), NONCE,
                                    0x44, 0x33, 0x22, 0x11, /* 16: conv */
                                    TOKEN,                  /* 20: token */
                                    0x78, 0x05,             /* 28: mtu */
                                    0x80, 0x00,             /* 30: rcv_wnd */
                                    0x30, 0x75, 0x00, 0x00, /* 32: idle */
                                    0x00, 0x00, 0x01, 0x00}; /* 36: max_frame */
static const uint8_t reject[17] = {HDR(5), NONCE, 4 /* 16: reason */};
static const uint8_t close_[21] = {HDR(6), 0x44, 0x33, 0x22, 0x11, /* 8 */
                                   TOKEN,                          /* 12 */
                                   5 /* 20: reason */};
static const uint8_t open_[8] = {HDR(7)};
static const uint8_t opened[16] = {HDR(8), 0x30, 0x75, 0x00, 0x00, /* 8 */
                                   0x00, 0x00, 0x01, 0x00};        /* 12 */

static const struct {
  const uint8_t *bytes;
  size_t len;
} wire[9] = {
    {NULL, 0},
    {hello, sizeof(hello)},         {challenge, sizeof(challenge)},
    {connect_, sizeof(connect_)},   {accept_, sizeof(accept_)},
    {reject, sizeof(reject)},       {close_, sizeof(close_)},
    {open_, sizeof(open_)},         {opened, sizeof(opened)},
};

/* A kite__ctrl of |type| with sample values in exactly its fields. */
static kite__ctrl sample(uint8_t type) {
  static const uint8_t nonce[8] = {NONCE}, cookie[16] = {COOKIE},
                       token[8] = {TOKEN};
  kite__ctrl c;
  memset(&c, 0, sizeof(c));
  c.type = type;
  c.version = 1;
  switch (type) {
  case KITE__CTRL_CONNECT:
    c.mtu = 1400;
    c.rcv_wnd = 128;
    /* fall through */
  case KITE__CTRL_CHALLENGE:
    memcpy(c.cookie, cookie, 16);
    /* fall through */
  case KITE__CTRL_HELLO:
    memcpy(c.nonce, nonce, 8);
    break;
  case KITE__CTRL_ACCEPT:
    memcpy(c.nonce, nonce, 8);
    c.conv = 0x11223344;
    memcpy(c.token, token, 8);
    c.mtu = 1400;
    c.rcv_wnd = 128;
    c.idle_timeout_ms = 30000;
    c.max_frame = 65536;
    break;
  case KITE__CTRL_REJECT:
    memcpy(c.nonce, nonce, 8);
    c.reason = KITE__REJECT_COOKIE;
    break;
  case KITE__CTRL_CLOSE:
    c.conv = 0x11223344;
    memcpy(c.token, token, 8);
    c.reason = KITE__CLOSE_DEAD_LINK;
    break;
  case KITE__CTRL_OPENED:
    c.idle_timeout_ms = 30000;
    c.max_frame = 65536;
    break;
  }
  return c;
}

static void assert_ctrl_equal(const kite__ctrl *a, const kite__ctrl *b) {
  assert_int_equal(a->type, b->type);
  assert_int_equal(a->version, b->version);
  assert_memory_equal(a->nonce, b->nonce, 8);
  assert_memory_equal(a->cookie, b->cookie, 16);
  assert_int_equal(a->mtu, b->mtu);
  assert_int_equal(a->rcv_wnd, b->rcv_wnd);
  assert_int_equal(a->conv, b->conv);
  assert_memory_equal(a->token, b->token, 8);
  assert_int_equal(a->idle_timeout_ms, b->idle_timeout_ms);
  assert_int_equal(a->max_frame, b->max_frame);
  assert_int_equal(a->reason, b->reason);
}

static void sizes_are_the_tables(void **state) {
  (void)state;
  static const size_t want[9] = {0, 64, 32, 64, 40, 17, 21, 8, 16};
  for (int t = 0; t < 256; t++)
    assert_int_equal(kite__ctrl_size((uint8_t)t), t < 9 ? want[t] : 0);
  for (int t = 1; t <= 8; t++) {
    assert_int_equal(wire[t].len, want[t]);
    assert_true(want[t] <= KITE__CTRL_MAX);
  }
}

static void magic_is_kite(void **state) {
  (void)state;
  const uint8_t kite[4] = {'K', 'I', 'T', 'E'};
  assert_true(kite__ctrl_is_control(kite, 4));
  assert_false(kite__ctrl_is_control(kite, 3));
  assert_false(kite__ctrl_is_control(NULL, 0));
  /* The conv that is never assigned, as a KCP segment would carry it. */
  uint8_t seg[4] = {(uint8_t)KITE__CTRL_MAGIC, (uint8_t)(KITE__CTRL_MAGIC >> 8),
                    (uint8_t)(KITE__CTRL_MAGIC >> 16),
                    (uint8_t)(KITE__CTRL_MAGIC >> 24)};
  assert_memory_equal(seg, kite, 4);
  const uint8_t other[4] = {'K', 'I', 'T', 'F'};
  assert_false(kite__ctrl_is_control(other, 4));
}

/* Every type encodes to the hand-written bytes, writes nothing past its
 * size, and decodes back from them. */
static void layouts_are_the_protocols(void **state) {
  (void)state;
  for (uint8_t t = 1; t <= 8; t++) {
    kite__ctrl c = sample(t), back;
    uint8_t buf[KITE__CTRL_MAX + 8];
    memset(buf, 0xEE, sizeof(buf));
    int n = kite__ctrl_encode(buf, sizeof(buf), &c);
    assert_int_equal(n, wire[t].len);
    assert_memory_equal(buf, wire[t].bytes, wire[t].len);
    for (size_t i = (size_t)n; i < sizeof(buf); i++)
      assert_int_equal(buf[i], 0xEE);
    assert_int_equal(kite__ctrl_decode(wire[t].bytes, wire[t].len, &back), 0);
    assert_ctrl_equal(&back, &c);
  }
}

static void encode_needs_room(void **state) {
  (void)state;
  for (uint8_t t = 1; t <= 8; t++) {
    kite__ctrl c = sample(t);
    uint8_t buf[KITE__CTRL_MAX];
    memset(buf, 0xEE, sizeof(buf));
    size_t size = kite__ctrl_size(t);
    assert_int_equal(kite__ctrl_encode(buf, size - 1, &c), KITE_EMSGSIZE);
    for (size_t i = 0; i < sizeof(buf); i++)
      assert_int_equal(buf[i], 0xEE); /* nothing written */
    assert_int_equal(kite__ctrl_encode(buf, size, &c), (int)size);
  }
  assert_int_equal(kite__ctrl_encode(NULL, 0, &(kite__ctrl){.type = 1}),
                   KITE_EMSGSIZE);
}

static void encode_refuses_unknown_types(void **state) {
  (void)state;
  uint8_t buf[KITE__CTRL_MAX];
  kite__ctrl c = sample(KITE__CTRL_HELLO);
  c.type = 0;
  assert_int_equal(kite__ctrl_encode(buf, sizeof(buf), &c), KITE_EINVAL);
  for (int t = 9; t < 256; t++) {
    c.type = (uint8_t)t;
    assert_int_equal(kite__ctrl_encode(buf, sizeof(buf), &c), KITE_EINVAL);
  }
}

/* Encoding ignores the fields of other types and writes reserved as 0 and
 * the padding as zeros, whatever the struct holds. */
static void encode_writes_zeros_where_due(void **state) {
  (void)state;
  for (uint8_t t = 1; t <= 8; t++) {
    kite__ctrl c = sample(t), junk;
    memset(&junk, 0x5A, sizeof(junk));
    /* keep the fields of type t, fill every other with junk */
    kite__ctrl mixed = junk;
    mixed.type = t;
    mixed.version = 0; /* 0: KITE__PROTO_VERSION */
    uint8_t a[KITE__CTRL_MAX], b[KITE__CTRL_MAX];
    int n = kite__ctrl_encode(a, sizeof(a), &c);
    switch (t) {
    case KITE__CTRL_CONNECT:
      mixed.mtu = c.mtu;
      mixed.rcv_wnd = c.rcv_wnd;
      /* fall through */
    case KITE__CTRL_CHALLENGE:
      memcpy(mixed.cookie, c.cookie, 16);
      /* fall through */
    case KITE__CTRL_HELLO:
      memcpy(mixed.nonce, c.nonce, 8);
      break;
    case KITE__CTRL_ACCEPT:
      memcpy(mixed.nonce, c.nonce, 8);
      mixed.conv = c.conv;
      memcpy(mixed.token, c.token, 8);
      mixed.mtu = c.mtu;
      mixed.rcv_wnd = c.rcv_wnd;
      mixed.idle_timeout_ms = c.idle_timeout_ms;
      mixed.max_frame = c.max_frame;
      break;
    case KITE__CTRL_REJECT:
      memcpy(mixed.nonce, c.nonce, 8);
      mixed.reason = c.reason;
      break;
    case KITE__CTRL_CLOSE:
      mixed.conv = c.conv;
      memcpy(mixed.token, c.token, 8);
      mixed.reason = c.reason;
      break;
    case KITE__CTRL_OPENED:
      mixed.idle_timeout_ms = c.idle_timeout_ms;
      mixed.max_frame = c.max_frame;
      break;
    }
    assert_int_equal(kite__ctrl_encode(b, sizeof(b), &mixed), n);
    assert_memory_equal(a, b, (size_t)n);
    assert_int_equal(b[5], KITE__PROTO_VERSION);
    assert_int_equal(b[6], 0);
    assert_int_equal(b[7], 0);
  }
  /* the padding, explicitly */
  uint8_t buf[KITE__CTRL_MAX];
  memset(buf, 0xFF, sizeof(buf));
  kite__ctrl h = sample(KITE__CTRL_HELLO);
  assert_int_equal(kite__ctrl_encode(buf, sizeof(buf), &h), 64);
  for (int i = 16; i < 64; i++)
    assert_int_equal(buf[i], 0);
  memset(buf, 0xFF, sizeof(buf));
  kite__ctrl cn = sample(KITE__CTRL_CONNECT);
  assert_int_equal(kite__ctrl_encode(buf, sizeof(buf), &cn), 64);
  for (int i = 36; i < 64; i++)
    assert_int_equal(buf[i], 0);
}

/* A nonzero version is written as given (REJECT reason 2 carries the
 * server's own). */
static void encode_writes_a_given_version(void **state) {
  (void)state;
  kite__ctrl c = sample(KITE__CTRL_REJECT);
  c.version = 7;
  c.reason = KITE__REJECT_VERSION;
  uint8_t buf[KITE__CTRL_MAX];
  assert_int_equal(kite__ctrl_encode(buf, sizeof(buf), &c), 17);
  assert_int_equal(buf[5], 7);
  assert_int_equal(buf[16], 2);
}

/* Random field values survive encode then decode, for every type. */
static void round_trips(void **state) {
  (void)state;
  uint32_t x = 2463534242u;
  for (int i = 0; i < 4000; i++) {
    uint8_t t = (uint8_t)(1 + i % 8);
    kite__ctrl c = sample(t), back;
    uint8_t rnd[48];
    for (size_t k = 0; k < sizeof(rnd); k++) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      rnd[k] = (uint8_t)x;
    }
    /* overwrite only the fields the type has */
    if (t <= KITE__CTRL_REJECT)
      memcpy(c.nonce, rnd, 8);
    if (t == KITE__CTRL_CHALLENGE || t == KITE__CTRL_CONNECT)
      memcpy(c.cookie, rnd + 8, 16);
    if (t == KITE__CTRL_CONNECT || t == KITE__CTRL_ACCEPT) {
      c.mtu = (uint16_t)(rnd[24] | rnd[25] << 8);
      c.rcv_wnd = (uint16_t)(rnd[26] | rnd[27] << 8);
    }
    if (t == KITE__CTRL_ACCEPT || t == KITE__CTRL_CLOSE) {
      c.conv = x;
      memcpy(c.token, rnd + 28, 8);
    }
    if (t == KITE__CTRL_ACCEPT || t == KITE__CTRL_OPENED) {
      c.idle_timeout_ms = x * 3u;
      c.max_frame = x * 7u;
    }
    if (t == KITE__CTRL_REJECT || t == KITE__CTRL_CLOSE)
      c.reason = rnd[40];
    uint8_t buf[KITE__CTRL_MAX];
    int n = kite__ctrl_encode(buf, sizeof(buf), &c);
    assert_int_equal(n, kite__ctrl_size(t));
    assert_int_equal(kite__ctrl_decode(buf, (size_t)n, &back), 0);
    assert_ctrl_equal(&back, &c);
  }
}

/* Every length below a type's size is refused as short, including a
 * HELLO or CONNECT of 16..63 bytes, and the header itself. */
static void short_lengths_are_refused(void **state) {
  (void)state;
  kite__ctrl out;
  for (uint8_t t = 1; t <= 8; t++) {
    for (size_t len = 0; len < wire[t].len; len++) {
      int want = len < 4 ? KITE__CTRL_EMAGIC : KITE__CTRL_ESHORT;
      memset(&out, 0x5A, sizeof(out));
      assert_int_equal(kite__ctrl_decode(wire[t].bytes, len, &out), want);
      if (len >= 8) {
        assert_int_equal(out.type, t);
        assert_int_equal(out.version, 1);
      } else {
        assert_int_equal(out.type, 0);
      }
      assert_int_equal(out.conv, 0); /* the rest is zeroed */
    }
  }
  assert_int_equal(kite__ctrl_decode(NULL, 0, &out), KITE__CTRL_EMAGIC);
}

/* Bytes after a fixed-size type's size are ignored, as is the content of
 * the padding and the reserved u16. */
static void decode_is_lenient_where_allowed(void **state) {
  (void)state;
  for (uint8_t t = 1; t <= 8; t++) {
    uint8_t buf[200];
    memset(buf, 0x99, sizeof(buf));
    memcpy(buf, wire[t].bytes, wire[t].len);
    buf[6] = 0xFF; /* reserved */
    buf[7] = 0x01;
    if (t == KITE__CTRL_HELLO)
      buf[20] = 0x42; /* padding */
    if (t == KITE__CTRL_CONNECT)
      buf[63] = 0x42;
    kite__ctrl want = sample(t), got;
    for (size_t len = wire[t].len; len <= sizeof(buf); len += 37) {
      assert_int_equal(kite__ctrl_decode(buf, len, &got), 0);
      assert_ctrl_equal(&got, &want);
    }
  }
}

static void unknown_types_are_refused(void **state) {
  (void)state;
  uint8_t buf[100] = {HDR(0), NONCE};
  kite__ctrl out;
  assert_int_equal(kite__ctrl_decode(buf, sizeof(buf), &out),
                   KITE__CTRL_ETYPE);
  assert_int_equal(out.type, 0);
  for (int t = 9; t < 256; t++) {
    buf[4] = (uint8_t)t;
    for (size_t len = 8; len <= sizeof(buf); len += 23) {
      assert_int_equal(kite__ctrl_decode(buf, len, &out), KITE__CTRL_ETYPE);
      assert_int_equal(out.type, t);
    }
  }
}

static void not_control_is_emagic(void **state) {
  (void)state;
  uint8_t buf[64];
  memcpy(buf, hello, sizeof(buf));
  kite__ctrl out;
  for (int i = 0; i < 4; i++) {
    buf[i] ^= 0x20;
    assert_int_equal(kite__ctrl_decode(buf, sizeof(buf), &out),
                     KITE__CTRL_EMAGIC);
    buf[i] ^= 0x20;
  }
  assert_int_equal(kite__ctrl_decode(buf, sizeof(buf), &out), 0);
}

/* Any version but 1 is EVERSION, before the type and size checks; type,
 * version and (from 16 bytes) the nonce are filled for the REJECT. */
static void other_versions_are_refused_with_the_nonce(void **state) {
  (void)state;
  const uint8_t want_nonce[8] = {NONCE};
  kite__ctrl out;
  for (int v = 0; v < 256; v++) {
    if (v == 1)
      continue;
    for (uint8_t t = 1; t <= 8; t++) {
      uint8_t buf[64];
      memcpy(buf, wire[t].bytes, wire[t].len);
      buf[5] = (uint8_t)v;
      for (size_t len = 8; len <= wire[t].len; len++) {
        assert_int_equal(kite__ctrl_decode(buf, len, &out),
                         KITE__CTRL_EVERSION);
        assert_int_equal(out.type, t);
        assert_int_equal(out.version, v);
        if (len >= 16 && t <= KITE__CTRL_REJECT)
          assert_memory_equal(out.nonce, want_nonce, 8);
        if (len < 16)
          assert_memory_equal(out.nonce, (uint8_t[8]){0}, 8);
        assert_int_equal(out.conv, 0);
      }
    }
    uint8_t odd[16] = {HDR(200), NONCE}; /* reserved type, other version */
    odd[5] = (uint8_t)v;
    assert_int_equal(kite__ctrl_decode(odd, sizeof(odd), &out),
                     KITE__CTRL_EVERSION);
    assert_int_equal(out.type, 200);
  }
}

/* Section 2, step 1: no reply is larger than the request that caused it.
 * The server answers HELLO (64) with CHALLENGE, CONNECT (64) with ACCEPT or
 * REJECT, and a request of another version with REJECT; it answers only
 * what kite__ctrl_may_answer() allows. */
static void no_amplification(void **state) {
  (void)state;
  size_t hello_min = kite__ctrl_size(KITE__CTRL_HELLO);
  size_t connect_min = kite__ctrl_size(KITE__CTRL_CONNECT);
  size_t reject_size = kite__ctrl_size(KITE__CTRL_REJECT);
  assert_true(kite__ctrl_size(KITE__CTRL_CHALLENGE) <= hello_min);
  assert_true(reject_size <= hello_min); /* version mismatch on HELLO */
  assert_true(kite__ctrl_size(KITE__CTRL_ACCEPT) <= connect_min);
  assert_true(reject_size <= connect_min);

  /* Every HELLO or CONNECT that decodes is at least that large... */
  kite__ctrl out;
  uint8_t buf[64];
  for (uint8_t t = KITE__CTRL_HELLO; t <= KITE__CTRL_CONNECT; t += 2) {
    memcpy(buf, wire[t].bytes, 64);
    for (size_t len = 0; len <= 64; len++) {
      bool ok = kite__ctrl_decode(buf, len, &out) == 0;
      assert_int_equal(ok, len == 64);
      assert_int_equal(kite__ctrl_may_answer(t, len), len >= 64);
    }
  }
  /* ...and a short one of another version gets no answer either. */
  memcpy(buf, hello, 64);
  buf[5] = 2;
  for (size_t len = 8; len <= 64; len++) {
    assert_int_equal(kite__ctrl_decode(buf, len, &out), KITE__CTRL_EVERSION);
    bool may = kite__ctrl_may_answer(out.type, len);
    assert_int_equal(may, len >= 64);
    if (may)
      assert_true(reject_size <= len);
  }
  /* Nothing else is answered on UDP. */
  for (int t = 0; t < 256; t++)
    if (t != KITE__CTRL_HELLO && t != KITE__CTRL_CONNECT)
      assert_false(kite__ctrl_may_answer((uint8_t)t, 1500));
}

static void errors_have_names(void **state) {
  (void)state;
  static const int errs[] = {KITE__CTRL_EMAGIC, KITE__CTRL_ESHORT,
                             KITE__CTRL_EVERSION, KITE__CTRL_ETYPE};
  for (size_t i = 0; i < 4; i++) {
    assert_string_not_equal(kite__ctrl_strerror(errs[i]), "unknown");
    /* clear of the KITE_E* table */
    assert_string_equal(kite_err_name(errs[i]), "UNKNOWN");
  }
  assert_string_equal(kite__ctrl_strerror(0), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sizes_are_the_tables),
      cmocka_unit_test(magic_is_kite),
      cmocka_unit_test(layouts_are_the_protocols),
      cmocka_unit_test(encode_needs_room),
      cmocka_unit_test(encode_refuses_unknown_types),
      cmocka_unit_test(encode_writes_zeros_where_due),
      cmocka_unit_test(encode_writes_a_given_version),
      cmocka_unit_test(round_trips),
      cmocka_unit_test(short_lengths_are_refused),
      cmocka_unit_test(decode_is_lenient_where_allowed),
      cmocka_unit_test(unknown_types_are_refused),
      cmocka_unit_test(not_control_is_emagic),
      cmocka_unit_test(other_versions_are_refused_with_the_nonce),
      cmocka_unit_test(no_amplification),
      cmocka_unit_test(errors_have_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
