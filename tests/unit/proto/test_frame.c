#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "proto/frame.h"

/* ---- a stream of frames to cut up, and what a reader delivered ---- */

#define MAX_FRAMES 64
#define STREAM_MAX 65536

/* Frames as a reader delivered them: headers, and bodies copied back to
 * back, so two runs compare with two memcmps. */
typedef struct got {
  int n;
  kite__frame_hdr h[MAX_FRAMES];
  size_t body_off[MAX_FRAMES];
  uint8_t bodies[STREAM_MAX];
  size_t body_len;
  int stop_after; /* the callback stops after this many frames; 0 never */
  int calls_since_stop;
  bool null_body;         /* a callback ever saw body == NULL */
  bool buffered_in_cb;    /* a callback saw buffered() != 0 */
  kite__frame_reader *r;  /* for the buffered() check; may be NULL */
} got;

static int collect(void *user, const kite__frame_hdr *h, const uint8_t *body) {
  got *g = user;
  assert_true(g->n < MAX_FRAMES);
  if (!body)
    g->null_body = true;
  if (g->r && kite__frame_reader_buffered(g->r) != 0)
    g->buffered_in_cb = true;
  g->h[g->n] = *h;
  g->body_off[g->n] = g->body_len;
  if (h->len)
    memcpy(g->bodies + g->body_len, body, h->len);
  g->body_len += h->len;
  g->n++;
  if (g->stop_after && ++g->calls_since_stop == g->stop_after) {
    g->calls_since_stop = 0;
    return 1;
  }
  return 0;
}

static got *got_new(kite__frame_reader *r) {
  got *g = calloc(1, sizeof(*g));
  assert_non_null(g);
  g->r = r;
  return g;
}

static void assert_same_frames(const got *a, const got *b) {
  assert_int_equal(a->n, b->n);
  for (int i = 0; i < a->n; i++) {
    assert_int_equal(a->h[i].len, b->h[i].len);
    assert_int_equal(a->h[i].msg_id, b->h[i].msg_id);
    assert_int_equal(a->h[i].flags, b->h[i].flags);
    assert_int_equal(a->h[i].crc32, b->h[i].crc32);
    assert_int_equal(a->body_off[i], b->body_off[i]);
  }
  assert_int_equal(a->body_len, b->body_len);
  assert_memory_equal(a->bodies, b->bodies, a->body_len);
}

typedef struct stream {
  uint8_t *bytes;
  size_t len;
  got want; /* the frames as written */
} stream;

static stream *stream_new(void) {
  stream *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  s->bytes = malloc(STREAM_MAX);
  assert_non_null(s->bytes);
  return s;
}

static void stream_free(stream *s) {
  free(s->bytes);
  free(s);
}

/* Appends a frame whose body is |len| bytes of a pattern seeded by |seed|. */
static void add(stream *s, uint16_t msg_id, uint16_t flags, uint32_t len,
                bool with_crc, uint8_t seed) {
  assert_true(s->len + KITE__FRAME_HDR + len <= STREAM_MAX);
  uint8_t *body = s->bytes + s->len + KITE__FRAME_HDR;
  for (uint32_t i = 0; i < len; i++)
    body[i] = (uint8_t)(seed + i * 7);
  kite__frame_header(s->bytes + s->len, msg_id, flags, body, len, with_crc);
  got *w = &s->want;
  kite__frame_hdr_decode(s->bytes + s->len, &w->h[w->n]);
  w->body_off[w->n] = w->body_len;
  memcpy(w->bodies + w->body_len, body, len);
  w->body_len += len;
  w->n++;
  s->len += KITE__FRAME_HDR + len;
}

/* A mix: empty bodies, pings, pongs, reserved ids and flag bits, bodies
 * that fit inline and bodies that need the heap, with and without CRC. */
static stream *mixed_stream(void) {
  stream *s = stream_new();
  add(s, 7, 0, 0, false, 0);
  add(s, KITE__MSG_PING, 0, 8, false, 1);
  add(s, KITE__MSG_PING, KITE__FRAME_F_PONG, 8, true, 1);
  add(s, 100, 0, 1, true, 2);
  add(s, 101, 0xFFFC, 33, true, 3); /* reserved bits set: ignored */
  add(s, 0xFF00, 0, 500, false, 4);
  add(s, 0xFFFF, 0, 0, true, 5);
  add(s, 102, 0, KITE__FRAME_INLINE, false, 6);
  add(s, 103, 0, KITE__FRAME_INLINE + 1, true, 7);
  add(s, 104, 0, 3000, true, 8);
  add(s, KITE__MSG_PING, 0, KITE__PING_BODY_MAX, true, 9);
  add(s, 105, 0, 0, false, 10);
  return s;
}

#define MAX_FRAME 4096

/* Feeds |s| cut at the |ncuts| sorted offsets in |cuts|, resuming after any
 * stop, and checks the result against what was written. */
static void feed_cut(const stream *s, uint32_t max_frame, const size_t *cuts,
                     size_t ncuts, int stop_after) {
  kite__frame_reader r;
  kite__frame_reader_init(&r, max_frame);
  got *g = got_new(&r);
  g->stop_after = stop_after;
  size_t from = 0;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t to = i < ncuts ? cuts[i] : s->len;
    while (from < to) {
      int why = -1;
      ptrdiff_t n = kite__frame_reader_feed(&r, s->bytes + from, to - from,
                                            collect, g, &why);
      assert_true(n >= 0);
      assert_int_equal(why, -1); /* untouched on success */
      assert_true((size_t)n <= to - from);
      if (!stop_after)
        assert_int_equal(n, to - from);
      from += (size_t)n;
      assert_true(kite__frame_reader_buffered(&r) <=
                  KITE__FRAME_HDR + (size_t)max_frame);
      if (kite__frame_reader_buffered(&r) == 0)
        assert_int_equal(kite__frame_reader_heap(&r), 0);
    }
  }
  assert_int_equal(kite__frame_reader_buffered(&r), 0);
  assert_int_equal(kite__frame_reader_heap(&r), 0);
  assert_false(g->null_body);
  assert_false(g->buffered_in_cb);
  assert_same_frames(g, &s->want);
  kite__frame_reader_free(&r);
  free(g);
}

/* ---- the header ---- */

/* The byte layout of PROTOCOL.md section 4, written out by hand. */
static void header_layout_is_exact(void **state) {
  (void)state;
  kite__frame_hdr h = {.len = 0x04030201, .msg_id = 0x0605,
                       .flags = 0x0807, .crc32 = 0x0C0B0A09};
  const uint8_t want[KITE__FRAME_HDR] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                         0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C};
  uint8_t buf[KITE__FRAME_HDR + 1];
  buf[KITE__FRAME_HDR] = 0xEE;
  kite__frame_hdr_encode(buf, &h);
  assert_memory_equal(buf, want, sizeof(want));
  assert_int_equal(buf[KITE__FRAME_HDR], 0xEE); /* nothing written past */
  kite__frame_hdr back;
  kite__frame_hdr_decode(want, &back);
  assert_int_equal(back.len, 0x04030201);
  assert_int_equal(back.msg_id, 0x0605);
  assert_int_equal(back.flags, 0x0807);
  assert_int_equal(back.crc32, 0x0C0B0A09);
}

/* The CRC-32 check value of "123456789" (IEEE 802.3, as zlib computes it). */
static void crc_of_known_vector(void **state) {
  (void)state;
  const char *v = "123456789";
  uint8_t buf[KITE__FRAME_HDR];
  kite__frame_header(buf, 0x1234, 0, v, 9, true);
  const uint8_t want[KITE__FRAME_HDR] = {9,    0,    0,    0,    0x34, 0x12,
                                         0x01, 0x00, 0x26, 0x39, 0xF4, 0xCB};
  assert_memory_equal(buf, want, sizeof(want));
  kite__frame_hdr h;
  kite__frame_hdr_decode(buf, &h);
  assert_int_equal(h.crc32, 0xCBF43926u);
  assert_int_equal(kite__frame_check_body(&h, (const uint8_t *)v), 0);

  /* Without CRC: flag and field are both cleared, even if asked for. */
  kite__frame_header(buf, 0x1234, KITE__FRAME_F_CRC | KITE__FRAME_F_PONG, v, 9,
                     false);
  const uint8_t plain[KITE__FRAME_HDR] = {9, 0, 0, 0, 0x34, 0x12,
                                          0x02, 0, 0, 0, 0, 0};
  assert_memory_equal(buf, plain, sizeof(plain));

  /* An empty body's CRC is 0, with or without a buffer. */
  kite__frame_header(buf, 1, 0, NULL, 0, true);
  kite__frame_hdr_decode(buf, &h);
  assert_int_equal(h.flags, KITE__FRAME_F_CRC);
  assert_int_equal(h.crc32, 0);
  assert_int_equal(kite__frame_check_body(&h, NULL), 0);
}

static void header_checks(void **state) {
  (void)state;
  kite__frame_hdr h = {.len = 100, .msg_id = 5};
  assert_int_equal(kite__frame_check_hdr(&h, 100), KITE__FRAME_OK);
  assert_int_equal(kite__frame_check_hdr(&h, 99), KITE__FRAME_ETOO_LONG);
  h.flags = KITE__FRAME_F_PONG;
  assert_int_equal(kite__frame_check_hdr(&h, 100), KITE__FRAME_EPONG);
  h.msg_id = 0xFF00; /* reserved ids are no exception */
  assert_int_equal(kite__frame_check_hdr(&h, 100), KITE__FRAME_EPONG);
  h.flags = 0;
  assert_int_equal(kite__frame_check_hdr(&h, 100), KITE__FRAME_OK);

  /* Ping and pong: 32 bytes allowed, 33 not. */
  h.msg_id = KITE__MSG_PING;
  for (uint16_t f = 0; f <= KITE__FRAME_F_PONG; f += KITE__FRAME_F_PONG) {
    h.flags = f;
    h.len = KITE__PING_BODY_MAX;
    assert_int_equal(kite__frame_check_hdr(&h, 100), KITE__FRAME_OK);
    h.len = KITE__PING_BODY_MAX + 1;
    assert_int_equal(kite__frame_check_hdr(&h, 100), KITE__FRAME_EPING_LONG);
  }
  /* Length is checked first. */
  assert_int_equal(kite__frame_check_hdr(&h, 10), KITE__FRAME_ETOO_LONG);

  /* Reserved flag bits change nothing. */
  h = (kite__frame_hdr){.len = 10, .msg_id = 0, .flags = 0xFFFC};
  assert_int_equal(kite__frame_check_hdr(&h, 10), KITE__FRAME_OK);
  h.msg_id = 9;
  assert_int_equal(kite__frame_check_hdr(&h, 10), KITE__FRAME_OK);

  /* Body: a flipped bit fails only when the CRC flag is set. */
  uint8_t body[10] = "abcdefghi";
  uint8_t buf[KITE__FRAME_HDR];
  kite__frame_header(buf, 9, 0, body, 10, true);
  kite__frame_hdr_decode(buf, &h);
  assert_int_equal(kite__frame_check_body(&h, body), KITE__FRAME_OK);
  body[3] ^= 0x10;
  assert_int_equal(kite__frame_check_body(&h, body), KITE__FRAME_ECRC);
  h.flags = 0; /* a leftover crc32 without the flag is ignored */
  assert_int_equal(kite__frame_check_body(&h, body), KITE__FRAME_OK);

  for (int e = KITE__FRAME_OK; e <= KITE__FRAME_EPING_LONG + 1; e++)
    assert_non_null(kite__frame_strerror(e));
  assert_string_not_equal(kite__frame_strerror(KITE__FRAME_ECRC),
                          kite__frame_strerror(KITE__FRAME_EPONG));
}

/* ---- the reader ---- */

/* Feeds |bytes| to a fresh reader, in one piece or one byte at a time, and
 * expects KITE_EPROTO for |want_why| after |want_frames| good frames. */
static void expect_error(const uint8_t *bytes, size_t len, uint32_t max_frame,
                         int want_why, int want_frames) {
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    kite__frame_reader r;
    kite__frame_reader_init(&r, max_frame);
    got *g = got_new(&r);
    int why = 0;
    ptrdiff_t n = 0;
    if (bytewise) {
      for (size_t i = 0; i < len && n >= 0; i++)
        n = kite__frame_reader_feed(&r, bytes + i, 1, collect, g, &why);
    } else {
      n = kite__frame_reader_feed(&r, bytes, len, collect, g, &why);
    }
    assert_int_equal(n, KITE_EPROTO);
    assert_int_equal(why, want_why);
    assert_int_equal(g->n, want_frames);
    assert_int_equal(kite__frame_reader_heap(&r), 0);
    /* Sticky: the stream is unusable from here on. */
    why = 0;
    uint8_t ok[KITE__FRAME_HDR];
    kite__frame_header(ok, 1, 0, NULL, 0, false);
    assert_int_equal(kite__frame_reader_feed(&r, ok, sizeof(ok), collect, g,
                                             &why),
                     KITE_EPROTO);
    assert_int_equal(why, want_why);
    assert_int_equal(g->n, want_frames);
    kite__frame_reader_free(&r);
    free(g);
  }
}

static void every_error_is_refused(void **state) {
  (void)state;
  stream *s = stream_new();
  add(s, 1, 0, 5, true, 0); /* one good frame first */
  size_t good = s->len;

  /* Too long. */
  add(s, 2, 0, 101, false, 1);
  expect_error(s->bytes, s->len, 100, KITE__FRAME_ETOO_LONG, 1);
  /* CRC mismatch, with the body whole in one feed (zero-copy) and split. */
  s->len = good;
  add(s, 2, 0, 60, true, 1);
  s->bytes[s->len - 1] ^= 1;
  expect_error(s->bytes, s->len, 100, KITE__FRAME_ECRC, 1);
  /* A corrupted crc32 field is a mismatch too. */
  s->len = good;
  add(s, 2, 0, 60, true, 1);
  s->bytes[good + 8] ^= 0x80;
  expect_error(s->bytes, s->len, 100, KITE__FRAME_ECRC, 1);
  /* Pong on a msg_id other than 0. */
  s->len = good;
  add(s, 2, KITE__FRAME_F_PONG, 0, false, 1);
  expect_error(s->bytes, s->len, 100, KITE__FRAME_EPONG, 1);
  /* Ping and pong over 32 bytes. */
  s->len = good;
  add(s, KITE__MSG_PING, 0, KITE__PING_BODY_MAX + 1, false, 1);
  expect_error(s->bytes, s->len, 100, KITE__FRAME_EPING_LONG, 1);
  s->len = good;
  add(s, KITE__MSG_PING, KITE__FRAME_F_PONG, KITE__PING_BODY_MAX + 1, true, 1);
  expect_error(s->bytes, s->len, 100, KITE__FRAME_EPING_LONG, 1);
  stream_free(s);
}

static void many_frames_in_one_feed(void **state) {
  (void)state;
  stream *s = mixed_stream();
  feed_cut(s, MAX_FRAME, NULL, 0, 0);
  stream_free(s);
}

static void every_split_delivers_the_same_frames(void **state) {
  (void)state;
  stream *s = mixed_stream();
  /* One byte at a time. */
  size_t *cuts = malloc(s->len * sizeof(*cuts));
  assert_non_null(cuts);
  for (size_t i = 0; i + 1 < s->len; i++)
    cuts[i] = i + 1;
  feed_cut(s, MAX_FRAME, cuts, s->len - 1, 0);
  /* Two pieces, cut at every offset. */
  for (size_t at = 0; at <= s->len; at++)
    feed_cut(s, MAX_FRAME, &at, 1, 0);
  free(cuts);
  stream_free(s);
}

static uint32_t xorshift(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static void random_splits_deliver_the_same_frames(void **state) {
  (void)state;
  stream *s = mixed_stream();
  size_t cuts[40];
  for (uint32_t seed = 1; seed <= 500; seed++) {
    uint32_t x = seed * 2654435761u;
    size_t ncuts = xorshift(&x) % 40;
    for (size_t i = 0; i < ncuts; i++)
      cuts[i] = xorshift(&x) % (s->len + 1);
    qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);
    /* Also stop now and then, so resuming meets every kind of split. */
    feed_cut(s, MAX_FRAME, cuts, ncuts, (int)(seed % 4));
  }
  stream_free(s);
}

static void stop_mid_feed_and_resume(void **state) {
  (void)state;
  stream *s = stream_new();
  add(s, 1, 0, 10, true, 1);
  add(s, 2, 0, 0, false, 2);
  add(s, 3, 0, 40, true, 3);
  add(s, 4, 0, 3, false, 4);
  kite__frame_reader r;
  kite__frame_reader_init(&r, 100);
  got *g = got_new(&r);
  g->stop_after = 1;
  /* Each feed delivers exactly one frame and consumes exactly its bytes. */
  size_t from = 0;
  const size_t sizes[4] = {22, 12, 52, 15};
  for (int i = 0; i < 4; i++) {
    ptrdiff_t n = kite__frame_reader_feed(&r, s->bytes + from, s->len - from,
                                          collect, g, NULL);
    assert_int_equal(n, sizes[i]);
    assert_int_equal(g->n, i + 1);
    assert_int_equal(kite__frame_reader_buffered(&r), 0);
    from += (size_t)n;
  }
  assert_int_equal(from, s->len);
  assert_same_frames(g, &s->want);

  /* A stop on a frame completed from buffered bytes: the rest of that feed
   * stays with the caller too. */
  kite__frame_reader_init(&r, 100);
  memset(g, 0, sizeof(*g));
  g->stop_after = 1;
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes, 5, collect, g, NULL),
                   5);
  assert_int_equal(kite__frame_reader_buffered(&r), 5);
  ptrdiff_t n = kite__frame_reader_feed(&r, s->bytes + 5, s->len - 5, collect,
                                        g, NULL);
  assert_int_equal(n, 22 - 5);
  assert_int_equal(g->n, 1);
  g->stop_after = 0;
  n = kite__frame_reader_feed(&r, s->bytes + 22, s->len - 22, collect, g, NULL);
  assert_int_equal(n, s->len - 22);
  assert_same_frames(g, &s->want);
  kite__frame_reader_free(&r);
  free(g);
  stream_free(s);
}

static void max_frame_is_the_limit(void **state) {
  (void)state;
  const uint32_t max = 1000;
  stream *s = stream_new();
  add(s, 1, 0, max, true, 1);
  /* Exactly max_frame: accepted, whole and split. */
  feed_cut(s, max, NULL, 0, 0);
  size_t at = 500;
  feed_cut(s, max, &at, 1, 0);

  /* max_frame + 1: refused on the header alone, with nothing held. */
  s->len = 0;
  s->want.n = 0;
  s->want.body_len = 0;
  add(s, 1, 0, max + 1, false, 1);
  kite__frame_reader r;
  kite__frame_reader_init(&r, max);
  got *g = got_new(&r);
  int why = 0;
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes, KITE__FRAME_HDR - 1,
                                           collect, g, &why),
                   KITE__FRAME_HDR - 1);
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes + KITE__FRAME_HDR - 1,
                                           1, collect, g, &why),
                   KITE_EPROTO);
  assert_int_equal(why, KITE__FRAME_ETOO_LONG);
  assert_int_equal(kite__frame_reader_buffered(&r), 0);
  assert_int_equal(kite__frame_reader_heap(&r), 0);
  kite__frame_reader_free(&r);

  /* And so when the header and part of the body come together. */
  kite__frame_reader_init(&r, max);
  why = 0;
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes, KITE__FRAME_HDR + 100,
                                           collect, g, &why),
                   KITE_EPROTO);
  assert_int_equal(why, KITE__FRAME_ETOO_LONG);
  assert_int_equal(kite__frame_reader_heap(&r), 0);
  assert_int_equal(g->n, 0);
  kite__frame_reader_free(&r);
  free(g);
  stream_free(s);
}

static void no_buffer_after_a_spanning_frame(void **state) {
  (void)state;
  stream *s = stream_new();
  add(s, 1, 0, 2000, true, 1);
  add(s, 2, 0, 20, true, 2); /* fits inline */
  kite__frame_reader r;
  kite__frame_reader_init(&r, 4096);
  got *g = got_new(&r);
  assert_int_equal(kite__frame_reader_heap(&r), 0);

  /* The big frame spans two feeds: its exact size is held, then dropped. */
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes, 700, collect, g, NULL),
                   700);
  assert_int_equal(kite__frame_reader_buffered(&r), 700);
  assert_int_equal(kite__frame_reader_heap(&r), 2000);
  assert_int_equal(g->n, 0);
  assert_int_equal(
      kite__frame_reader_feed(&r, s->bytes + 700, 2012 - 700 + 3, collect, g,
                              NULL),
      2012 - 700 + 3);
  assert_int_equal(g->n, 1);
  assert_int_equal(kite__frame_reader_buffered(&r), 3);
  assert_int_equal(kite__frame_reader_heap(&r), 0);

  /* The small one spans feeds without touching the heap. */
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes + 2015, 20, collect, g,
                                           NULL),
                   20);
  assert_int_equal(kite__frame_reader_heap(&r), 0);
  assert_int_equal(kite__frame_reader_buffered(&r), 23);
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes + 2035,
                                           s->len - 2035, collect, g, NULL),
                   s->len - 2035);
  assert_int_equal(kite__frame_reader_buffered(&r), 0);
  assert_int_equal(kite__frame_reader_heap(&r), 0);
  assert_same_frames(g, &s->want);

  /* Freed mid-frame: ASan checks that nothing leaks. */
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes, 100, collect, g, NULL),
                   100);
  assert_int_equal(kite__frame_reader_heap(&r), 2000);
  kite__frame_reader_free(&r);
  assert_int_equal(kite__frame_reader_heap(&r), 0);
  assert_int_equal(kite__frame_reader_buffered(&r), 0);
  free(g);
  stream_free(s);
}

static void reserved_flag_bits_are_ignored(void **state) {
  (void)state;
  stream *s = stream_new();
  add(s, 9, 0xFFFC, 40, true, 1);
  add(s, 9, 0x8000, 40, false, 2);
  add(s, KITE__MSG_PING, 0xFFFC, 4, false, 3); /* still a ping */
  add(s, KITE__MSG_PING, 0xFFFE, 4, true, 3);  /* a pong */
  add(s, 0xFF42, 0x0100, 0, false, 4);         /* reserved id: delivered */
  feed_cut(s, MAX_FRAME, NULL, 0, 0);
  size_t at = 30;
  feed_cut(s, MAX_FRAME, &at, 1, 0);
  /* Delivered as they came, reserved bits included. */
  assert_int_equal(s->want.h[0].flags, 0xFFFD);
  assert_int_equal(s->want.h[1].flags, 0x8000);
  assert_int_equal(s->want.h[3].flags, 0xFFFF);
  stream_free(s);
}

static void empty_bodies(void **state) {
  (void)state;
  stream *s = stream_new();
  add(s, 1, 0, 0, false, 0);
  add(s, 2, 0, 0, true, 0);
  add(s, KITE__MSG_PING, 0, 0, false, 0);
  add(s, KITE__MSG_PING, KITE__FRAME_F_PONG, 0, true, 0);
  feed_cut(s, MAX_FRAME, NULL, 0, 0);

  /* A frame with no body goes out with its header's last byte, not with
   * the next feed. */
  kite__frame_reader r;
  kite__frame_reader_init(&r, 0); /* max_frame 0: only empty bodies */
  got *g = got_new(&r);
  for (size_t i = 0; i < s->len; i++) {
    assert_int_equal(
        kite__frame_reader_feed(&r, s->bytes + i, 1, collect, g, NULL), 1);
    assert_int_equal(g->n, (int)((i + 1) / KITE__FRAME_HDR));
  }
  assert_false(g->null_body);
  assert_same_frames(g, &s->want);
  /* Empty feeds are fine, NULL included. */
  assert_int_equal(kite__frame_reader_feed(&r, NULL, 0, collect, g, NULL), 0);
  assert_int_equal(kite__frame_reader_feed(&r, s->bytes, 5, collect, g, NULL),
                   5);
  assert_int_equal(kite__frame_reader_feed(&r, NULL, 0, collect, g, NULL), 0);
  assert_int_equal(kite__frame_reader_buffered(&r), 5);
  kite__frame_reader_free(&r);
  free(g);
  stream_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(header_layout_is_exact),
      cmocka_unit_test(crc_of_known_vector),
      cmocka_unit_test(header_checks),
      cmocka_unit_test(every_error_is_refused),
      cmocka_unit_test(many_frames_in_one_feed),
      cmocka_unit_test(every_split_delivers_the_same_frames),
      cmocka_unit_test(random_splits_deliver_the_same_frames),
      cmocka_unit_test(stop_mid_feed_and_resume),
      cmocka_unit_test(max_frame_is_the_limit),
      cmocka_unit_test(no_buffer_after_a_spanning_frame),
      cmocka_unit_test(reserved_flag_bits_are_ignored),
      cmocka_unit_test(empty_bodies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
