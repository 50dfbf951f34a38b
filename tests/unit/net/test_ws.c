#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "net/ws.h"

/* ---- a client's frames (RFC 6455 section 5.2), built by hand ---- */

enum { OP_CONT = 0, OP_TEXT = 1, OP_BIN = 2, OP_CLOSE = 8, OP_PING = 9,
       OP_PONG = 10 };

#define WIRE_MAX (1u << 20)

typedef struct wire {
  uint8_t *b;
  size_t len;
} wire;

static wire *wire_new(void) {
  wire *w = calloc(1, sizeof(*w));
  assert_non_null(w);
  w->b = malloc(WIRE_MAX);
  assert_non_null(w->b);
  return w;
}

static void wire_free(wire *w) {
  free(w->b);
  free(w);
}

/* Appends one frame; |masked| false builds what a client must never send. */
static void frame(wire *w, bool fin, uint8_t rsv, uint8_t op, bool masked,
                  const uint8_t *payload, size_t len) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  assert_true(w->len + len + 14 <= WIRE_MAX);
  uint8_t *p = w->b + w->len;
  *p++ = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | op);
  uint8_t m = masked ? 0x80 : 0;
  if (len < 126) {
    *p++ = (uint8_t)(m | len);
  } else if (len < 65536) {
    *p++ = m | 126;
    *p++ = (uint8_t)(len >> 8);
    *p++ = (uint8_t)len;
  } else {
    *p++ = m | 127;
    for (int i = 7; i >= 0; i--)
      *p++ = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (masked) {
    memcpy(p, key, 4);
    p += 4;
  }
  for (size_t i = 0; i < len; i++)
    p[i] = masked ? payload[i] ^ key[i % 4] : payload[i];
  w->len = (size_t)(p - w->b) + len;
}

static void bin(wire *w, const uint8_t *payload, size_t len) {
  frame(w, true, 0, OP_BIN, true, payload, len);
}

/* ---- the connection's side: what it wrote and what it passed on ---- */

typedef struct peer {
  kite__ws ws;
  kite__ws_stats st;
  uint8_t *out; /* what |write| took, back to back */
  size_t out_len;
  int write_rc;   /* returned by |write|: 0, or a refusal (nothing taken) */
  int writes;
  uint8_t *got;   /* payload passed on */
  size_t got_len;
  size_t take;    /* bytes the callback takes per call; 0: all */
  size_t biggest; /* the largest piece seen */
  int calls;
  ptrdiff_t fail; /* returned instead when nonzero */
} peer;

static int on_write(void *user, const struct iovec *iov, int n) {
  peer *p = user;
  if (p->write_rc)
    return p->write_rc;
  p->writes++;
  for (int i = 0; i < n; i++) {
    assert_true(p->out_len + iov[i].iov_len <= WIRE_MAX);
    if (iov[i].iov_len)
      memcpy(p->out + p->out_len, iov[i].iov_base, iov[i].iov_len);
    p->out_len += iov[i].iov_len;
  }
  return 0;
}

static ptrdiff_t on_data(void *user, const uint8_t *data, size_t len) {
  peer *p = user;
  p->calls++;
  if (p->fail)
    return p->fail;
  if (len > p->biggest)
    p->biggest = len;
  size_t n = p->take && p->take < len ? p->take : len;
  assert_true(p->got_len + n <= WIRE_MAX);
  memcpy(p->got + p->got_len, data, n);
  p->got_len += n;
  return (ptrdiff_t)n;
}

static peer *peer_new(uint32_t max_message) {
  peer *p = calloc(1, sizeof(*p));
  assert_non_null(p);
  p->out = malloc(WIRE_MAX);
  p->got = malloc(WIRE_MAX);
  assert_non_null(p->out);
  assert_non_null(p->got);
  assert_int_equal(kite__ws_init(&p->ws, max_message, on_write, p, &p->st), 0);
  return p;
}

static void peer_free(peer *p) {
  kite__ws_free(&p->ws);
  free(p->out);
  free(p->got);
  free(p);
}

/* Feeds |w| in pieces of |step| bytes (0: whole); returns the last result
 * (each feed must take all it is given while it succeeds). */
static ptrdiff_t feed(peer *p, const wire *w, size_t step) {
  if (!step)
    step = w->len ? w->len : 1;
  ptrdiff_t rc = 0;
  for (size_t off = 0; off < w->len; off += step) {
    size_t n = w->len - off < step ? w->len - off : step;
    rc = kite__ws_feed(&p->ws, w->b + off, n, on_data, p);
    if (rc < 0)
      return rc;
    assert_int_equal(rc, n);
  }
  return rc;
}

static uint8_t *pattern(size_t len) {
  uint8_t *b = malloc(len ? len : 1);
  assert_non_null(b);
  for (size_t i = 0; i < len; i++)
    b[i] = (uint8_t)(i * 7 + i / 251);
  return b;
}

/* ---- input ---- */

static void messages_pass_whole_or_cut_anywhere(void **state) {
  static const size_t sizes[] = {0, 1, 125, 126, 4095, 4096, 4097, 65535,
                                 65536, 200000};
  for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    size_t len = sizes[s];
    uint8_t *msg = pattern(len);
    wire *w = wire_new();
    bin(w, msg, len);
    bin(w, msg, len < 10 ? len : 10);
    static const size_t steps[] = {0, 1, 3, 1000};
    for (size_t k = 0; k < 4; k++) {
      if (steps[k] == 1 && len > 70000)
        continue;
      peer *p = peer_new(1u << 20);
      feed(p, w, steps[k]);
      assert_int_equal(p->got_len, len + (len < 10 ? len : 10));
      assert_memory_equal(p->got, msg, len);
      assert_int_equal(p->st.messages_in, 2);
      assert_int_equal(p->st.bytes_in, p->got_len);
      assert_int_equal(p->out_len, 0); /* nothing to answer */
      assert_true(p->biggest <= 4096);  /* pieces of wslay's buffer */
      peer_free(p);
    }
    wire_free(w);
    free(msg);
  }
}

static void fragments_pass_in_order_with_pings_between(void **state) {
  uint8_t *msg = pattern(3000);
  wire *w = wire_new();
  frame(w, false, 0, OP_BIN, true, msg, 1000);
  frame(w, false, 0, OP_CONT, true, msg + 1000, 0); /* empty, allowed */
  frame(w, true, 0, OP_PING, true, (const uint8_t *)"abc", 3);
  frame(w, false, 0, OP_CONT, true, msg + 1000, 1500);
  frame(w, true, 0, OP_PONG, true, (const uint8_t *)"x", 1);
  frame(w, true, 0, OP_CONT, true, msg + 2500, 500);
  for (size_t step = 0; step <= 7; step += 7) {
    peer *p = peer_new(3000);
    feed(p, w, step);
    assert_int_equal(p->got_len, 3000);
    assert_memory_equal(p->got, msg, 3000);
    assert_int_equal(p->st.messages_in, 1);
    assert_int_equal(p->st.fragments_in, 3);
    assert_int_equal(p->st.pings_in, 1);
    assert_int_equal(p->st.pongs_in, 1);
    assert_int_equal(p->st.pongs_out, 1);
    /* The pong: unmasked, fin, same payload. */
    static const uint8_t pong[] = {0x8a, 0x03, 'a', 'b', 'c'};
    assert_int_equal(p->out_len, sizeof(pong));
    assert_memory_equal(p->out, pong, sizeof(pong));
    peer_free(p);
  }
  wire_free(w);
  free(msg);
}

static void max_message_holds_across_fragments(void **state) {
  uint8_t *msg = pattern(1001);
  /* Exactly the limit, in one frame and in three. */
  wire *w = wire_new();
  bin(w, msg, 1000);
  frame(w, false, 0, OP_BIN, true, msg, 400);
  frame(w, false, 0, OP_CONT, true, msg + 400, 400);
  frame(w, true, 0, OP_CONT, true, msg + 800, 200);
  peer *p = peer_new(1000);
  feed(p, w, 0);
  assert_int_equal(p->st.messages_in, 2);
  assert_int_equal(p->st.refused_too_big, 0);
  peer_free(p);

  /* One byte over in one frame: refused from its header, nothing passed. */
  w->len = 0;
  bin(w, msg, 1001);
  p = peer_new(1000);
  assert_int_equal(feed(p, w, 0), KITE_EPROTO);
  assert_int_equal(p->got_len, 0);
  assert_int_equal(p->st.refused_too_big, 1);
  assert_int_equal(p->ws.close_sent, KITE__WS_TOO_BIG);
  static const uint8_t close_1009[] = {0x88, 0x02, 0x03, 0xf1};
  assert_int_equal(p->out_len, sizeof(close_1009));
  assert_memory_equal(p->out, close_1009, sizeof(close_1009));
  /* Sticky. */
  assert_int_equal(kite__ws_feed(&p->ws, msg, 1, on_data, p), KITE_EPROTO);
  peer_free(p);

  /* Over in its third fragment: the first two went, the third did not. */
  w->len = 0;
  frame(w, false, 0, OP_BIN, true, msg, 400);
  frame(w, false, 0, OP_CONT, true, msg + 400, 400);
  frame(w, true, 0, OP_CONT, true, msg + 800, 201);
  p = peer_new(1000);
  assert_int_equal(feed(p, w, 0), KITE_EPROTO);
  assert_int_equal(p->got_len, 800);
  assert_int_equal(p->st.refused_too_big, 1);
  peer_free(p);

  /* A header claiming 2^62 bytes is refused as it stands. */
  w->len = 0;
  uint8_t huge[] = {0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5};
  memcpy(w->b, huge, sizeof(huge));
  w->len = sizeof(huge);
  p = peer_new(1000);
  assert_int_equal(feed(p, w, 0), KITE_EPROTO);
  assert_int_equal(p->st.refused_too_big, 1);
  peer_free(p);
  wire_free(w);
  free(msg);
}

/* |w| must be refused with |code|, counted in the counter at |offset| of
 * kite__ws_stats, with |before| bytes passed on first. */
static void expect_refused(const wire *w, uint16_t code, size_t offset,
                           size_t before) {
  for (size_t step = 0; step <= 1; step++) {
    peer *p = peer_new(1u << 16);
    assert_int_equal(feed(p, w, step), KITE_EPROTO);
    assert_int_equal(p->got_len, before);
    assert_int_equal(p->ws.close_sent, code);
    assert_int_equal(*(uint64_t *)((char *)&p->st + offset), 1);
    uint8_t close[4] = {0x88, 0x02, (uint8_t)(code >> 8), (uint8_t)code};
    assert_int_equal(p->out_len, 4);
    assert_memory_equal(p->out, close, 4);
    assert_int_equal(kite__ws_send(&p->ws, NULL, 0), KITE_ECLOSED);
    peer_free(p);
  }
}

#define STAT(name) offsetof(kite__ws_stats, name)

static void rfc6455_violations_are_refused(void **state) {
  const uint8_t x[200] = {1, 2, 3};
  wire *w = wire_new();
  /* A client MUST mask (section 5.1). */
  frame(w, true, 0, OP_BIN, false, x, 10);
  expect_refused(w, 1002, STAT(refused_unmasked), 0);
  w->len = 0;
  bin(w, x, 5);
  frame(w, true, 0, OP_PING, false, x, 0);
  expect_refused(w, 1002, STAT(refused_unmasked), 5);
  /* Text: kite's stream is binary. */
  w->len = 0;
  frame(w, true, 0, OP_TEXT, true, (const uint8_t *)"hi", 2);
  expect_refused(w, 1003, STAT(refused_text), 0);
  /* RSV bits without an extension. */
  w->len = 0;
  frame(w, true, 4, OP_BIN, true, x, 3);
  expect_refused(w, 1002, STAT(refused_proto), 0);
  /* Reserved opcodes. */
  static const uint8_t ops[] = {3, 7, 0xb, 0xf};
  for (size_t i = 0; i < sizeof(ops); i++) {
    w->len = 0;
    frame(w, true, 0, ops[i], true, x, 3);
    expect_refused(w, 1002, STAT(refused_proto), 0);
  }
  /* A continuation without a message; a message inside another. */
  w->len = 0;
  frame(w, true, 0, OP_CONT, true, x, 3);
  expect_refused(w, 1002, STAT(refused_proto), 0);
  w->len = 0;
  frame(w, false, 0, OP_BIN, true, x, 3);
  bin(w, x, 3);
  expect_refused(w, 1002, STAT(refused_proto), 3);
  /* Control frames: fragmented, or over 125 bytes (wslay's own checks). */
  w->len = 0;
  frame(w, false, 0, OP_PING, true, x, 3);
  expect_refused(w, 1002, STAT(refused_proto), 0);
  w->len = 0;
  frame(w, true, 0, OP_PING, true, x, 126);
  expect_refused(w, 1002, STAT(refused_proto), 0);
  /* A non-minimal length (126 saying 100). */
  w->len = 0;
  static const uint8_t nonmin[] = {0x82, 0xfe, 0x00, 0x64, 1, 2, 3, 4};
  memcpy(w->b, nonmin, sizeof(nonmin));
  w->len = sizeof(nonmin);
  expect_refused(w, 1002, STAT(refused_proto), 0);
  /* Close payloads: one byte, or a code that never travels. */
  w->len = 0;
  frame(w, true, 0, OP_CLOSE, true, x, 1);
  expect_refused(w, 1002, STAT(refused_proto), 0);
  static const uint16_t bad_codes[] = {999, 1004, 1005, 1006, 1015, 2999, 5000};
  for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
    w->len = 0;
    uint8_t c[2] = {(uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i]};
    frame(w, true, 0, OP_CLOSE, true, c, 2);
    expect_refused(w, 1002, STAT(refused_proto), 0);
  }
  wire_free(w);
}

static void the_peers_close_is_answered_with_its_code(void **state) {
  wire *w = wire_new();
  uint8_t c[6] = {0x0f, 0xa0, 'b', 'y', 'e', '!'}; /* 4000, "bye!" */
  bin(w, (const uint8_t *)"abc", 3);
  frame(w, true, 0, OP_CLOSE, true, c, sizeof(c));
  bin(w, (const uint8_t *)"late", 4); /* after the close: never read */
  peer *p = peer_new(100);
  assert_int_equal(kite__ws_feed(&p->ws, w->b, w->len, on_data, p), KITE_ECLOSED);
  assert_int_equal(p->got_len, 3);
  assert_int_equal(p->st.closes_in, 1);
  assert_int_equal(p->ws.close_received, 4000);
  assert_int_equal(p->ws.state, KITE__WS_CLOSED);
  static const uint8_t answer[] = {0x88, 0x02, 0x0f, 0xa0};
  assert_int_equal(p->out_len, sizeof(answer));
  assert_memory_equal(p->out, answer, sizeof(answer));
  assert_int_equal(kite__ws_feed(&p->ws, NULL, 0, on_data, p), KITE_ECLOSED);
  assert_int_equal(kite__ws_send(&p->ws, NULL, 0), KITE_ECLOSED);
  assert_int_equal(kite__ws_close(&p->ws, 1000, NULL, 0), KITE_ECLOSED);
  peer_free(p);

  /* An empty close is answered with an empty close. */
  w->len = 0;
  frame(w, true, 0, OP_CLOSE, true, NULL, 0);
  p = peer_new(100);
  assert_int_equal(feed(p, w, 0), KITE_ECLOSED);
  assert_int_equal(p->ws.close_received, 1005);
  static const uint8_t empty[] = {0x88, 0x00};
  assert_int_equal(p->out_len, sizeof(empty));
  assert_memory_equal(p->out, empty, sizeof(empty));
  peer_free(p);
  wire_free(w);
}

static void our_close_first_then_theirs(void **state) {
  peer *p = peer_new(100);
  assert_int_equal(kite__ws_close(&p->ws, 1004, NULL, 0), KITE_EINVAL);
  char reason[124] = {0};
  assert_int_equal(kite__ws_close(&p->ws, 1000, reason, 124), KITE_EINVAL);
  assert_int_equal(kite__ws_close(&p->ws, KITE__WS_GOING_AWAY, "stop", 4), 0);
  static const uint8_t ours[] = {0x88, 0x06, 0x03, 0xe9, 's', 't', 'o', 'p'};
  assert_int_equal(p->out_len, sizeof(ours));
  assert_memory_equal(p->out, ours, sizeof(ours));
  assert_int_equal(kite__ws_close(&p->ws, 1000, NULL, 0), KITE_ECLOSED);
  assert_int_equal(kite__ws_send(&p->ws, NULL, 0), KITE_ECLOSED);
  /* Data and pings still in flight are read, not used, not answered. */
  wire *w = wire_new();
  bin(w, (const uint8_t *)"late", 4);
  frame(w, true, 0, OP_PING, true, (const uint8_t *)"p", 1);
  uint8_t c[2] = {0x03, 0xe9};
  frame(w, true, 0, OP_CLOSE, true, c, 2);
  assert_int_equal(feed(p, w, 0), KITE_ECLOSED);
  assert_int_equal(p->got_len, 0);
  assert_int_equal(p->st.discarded_in, 4);
  assert_int_equal(p->st.pongs_out, 0);
  assert_int_equal(p->out_len, sizeof(ours)); /* no second close */
  assert_int_equal(p->ws.state, KITE__WS_CLOSED);
  peer_free(p);
  wire_free(w);
}

static void a_full_output_drops_pongs_and_counts_them(void **state) {
  peer *p = peer_new(100);
  wire *w = wire_new();
  frame(w, true, 0, OP_PING, true, (const uint8_t *)"1", 1);
  p->write_rc = KITE_EFULL;
  assert_int_equal(feed(p, w, 0), (ptrdiff_t)w->len);
  assert_int_equal(p->st.pongs_dropped, 1);
  assert_int_equal(p->out_len, 0);
  p->write_rc = 0; /* room again: the next ping is answered */
  assert_int_equal(feed(p, w, 0), (ptrdiff_t)w->len);
  assert_int_equal(p->st.pongs_out, 1);
  /* A broken output fails the connection. */
  p->write_rc = KITE_ESYS;
  assert_int_equal(feed(p, w, 0), KITE_ESYS);
  assert_int_equal(p->ws.state, KITE__WS_FAILED);
  assert_int_equal(kite__ws_feed(&p->ws, NULL, 0, on_data, p), KITE_ESYS);
  peer_free(p);
  wire_free(w);
}

/* The callback takes a few bytes at a time and stops: every byte still
 * arrives, in order, once, through resumed feeds. */
static void a_stopping_callback_resumes_exactly_where_it_stopped(void **state) {
  uint8_t *msg = pattern(9000);
  wire *w = wire_new();
  bin(w, msg, 5000);
  frame(w, false, 0, OP_BIN, true, msg + 5000, 1000);
  frame(w, true, 0, OP_PING, true, (const uint8_t *)"pp", 2);
  frame(w, true, 0, OP_CONT, true, msg + 6000, 3000);
  peer *p = peer_new(1u << 16);
  p->take = 777;
  size_t off = 0;
  int feeds = 0;
  while (feeds++ < 10000) {
    size_t n = w->len - off < 1500 ? w->len - off : 1500;
    ptrdiff_t rc = kite__ws_feed(&p->ws, n ? w->b + off : NULL, n, on_data, p);
    assert_true(rc >= 0 && (size_t)rc <= n);
    off += (size_t)rc;
    if (off == w->len && kite__ws_held(&p->ws) == 0 && p->got_len == 9000)
      break;
  }
  assert_int_equal(p->got_len, 9000);
  assert_memory_equal(p->got, msg, 9000);
  assert_int_equal(p->st.messages_in, 2);
  assert_int_equal(p->st.bytes_in, 9000);
  assert_int_equal(p->st.pongs_out, 1);
  peer_free(p);
  wire_free(w);
  free(msg);
}

static void a_callback_error_is_returned_and_sticks(void **state) {
  wire *w = wire_new();
  bin(w, (const uint8_t *)"abc", 3);
  peer *p = peer_new(100);
  p->fail = KITE_EPROTO; /* say, the kite frame inside was bad */
  assert_int_equal(kite__ws_feed(&p->ws, w->b, w->len, on_data, p), KITE_EPROTO);
  assert_int_equal(kite__ws_feed(&p->ws, w->b, w->len, on_data, p), KITE_EPROTO);
  assert_int_equal(p->calls, 1);
  /* The connection may still say goodbye: the kite close notice, a close. */
  assert_int_equal(kite__ws_send(&p->ws, NULL, 0), 0);
  assert_int_equal(kite__ws_close(&p->ws, KITE__WS_PROTOCOL, NULL, 0), 0);
  static const uint8_t out[] = {0x82, 0x00, 0x88, 0x02, 0x03, 0xea};
  assert_int_equal(p->out_len, sizeof(out));
  assert_memory_equal(p->out, out, sizeof(out));
  peer_free(p);
  wire_free(w);
}

/* ---- output ---- */

static void sends_are_one_unit_with_the_smallest_header(void **state) {
  static const struct {
    size_t len, hdr;
  } cases[] = {/* body lengths: with kite's 12-byte header, the payload is
                * 12, 125, 126, 65535, 65536 and 70012 bytes */
               {0, 2}, {113, 2}, {114, 4}, {65523, 4}, {65524, 10}, {70000, 10}};
  uint8_t *body = pattern(70000);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    peer *p = peer_new(100);
    size_t len = cases[i].len, half = len / 2;
    uint8_t hdr12[12] = {12, 0, 0, 0, 0x34, 0x12};
    struct iovec iov[3] = {{hdr12, sizeof(hdr12)}, {body, half},
                           {body + half, len - half}};
    assert_int_equal(kite__ws_send(&p->ws, iov, 3), 0);
    assert_int_equal(p->writes, 1);
    size_t total = 12 + len;
    assert_int_equal(p->out_len, cases[i].hdr + total);
    assert_int_equal(p->out[0], 0x82); /* fin, binary */
    assert_int_equal(p->out[1] & 0x80, 0); /* never masked */
    uint64_t got = p->out[1] & 0x7f;
    if (got == 126)
      got = (uint64_t)p->out[2] << 8 | p->out[3];
    else if (got == 127)
      for (int k = 0; k < 8; k++)
        got = (k ? got << 8 : 0) | p->out[2 + k];
    assert_int_equal(got, total);
    assert_memory_equal(p->out + cases[i].hdr, hdr12, 12);
    assert_memory_equal(p->out + cases[i].hdr + 12, body, len);
    assert_int_equal(p->st.messages_out, 1);
    /* Refused whole: nothing taken, and the next send is whole again. */
    p->write_rc = KITE_EFULL;
    assert_int_equal(kite__ws_send(&p->ws, iov, 3), KITE_EFULL);
    p->write_rc = 0;
    p->out_len = 0;
    assert_int_equal(kite__ws_send(&p->ws, iov, 1), 0);
    assert_int_equal(p->out_len, 2 + 12);
    assert_int_equal(p->out[1], 12);
    peer_free(p);
  }
  peer *p = peer_new(100);
  struct iovec many[KITE__WS_IOV_MAX + 1] = {{0}};
  assert_int_equal(kite__ws_send(&p->ws, many, KITE__WS_IOV_MAX + 1), KITE_EINVAL);
  assert_int_equal(kite__ws_send(&p->ws, many, KITE__WS_IOV_MAX), 0);
  peer_free(p);
  free(body);
}

static void init_checks_its_arguments(void **state) {
  kite__ws ws;
  kite__ws_stats st;
  assert_int_equal(kite__ws_init(&ws, 0, on_write, NULL, &st), KITE_EINVAL);
  assert_int_equal(kite__ws_init(&ws, 1, NULL, NULL, &st), KITE_EINVAL);
  assert_int_equal(kite__ws_init(&ws, 1, on_write, NULL, NULL), KITE_EINVAL);
  kite__ws_free(&ws); /* harmless after a failed init */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(messages_pass_whole_or_cut_anywhere),
      cmocka_unit_test(fragments_pass_in_order_with_pings_between),
      cmocka_unit_test(max_message_holds_across_fragments),
      cmocka_unit_test(rfc6455_violations_are_refused),
      cmocka_unit_test(the_peers_close_is_answered_with_its_code),
      cmocka_unit_test(our_close_first_then_theirs),
      cmocka_unit_test(a_full_output_drops_pongs_and_counts_them),
      cmocka_unit_test(a_stopping_callback_resumes_exactly_where_it_stopped),
      cmocka_unit_test(a_callback_error_is_returned_and_sticks),
      cmocka_unit_test(sends_are_one_unit_with_the_smallest_header),
      cmocka_unit_test(init_checks_its_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
