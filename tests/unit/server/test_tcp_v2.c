/*
 * The v2 TCP layer's sealing (server/tcp_v2.h) on a bare shard: a frame
 * cut into whole records that a reader opens back in order, the room
 * check that takes no number, and the key limit: nothing but the CLOSE
 * frame takes 2^48 - 3, and nothing is sealed after it; OPEN's bytes
 * freed once it is answered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/server_internal.h"

#include <stdlib.h>
#include <string.h>

static kite_server srv; /* large: not on the stack */
static kite__shard sh;
static kite__tv2 v;
static uint8_t frame[KITE__FRAME_HDR + 40000];

static int setup(void **state) {
  (void)state;
  memset(&srv, 0, sizeof(srv));
  memset(&sh, 0, sizeof(sh));
  memset(&v, 0, sizeof(v));
  srv.cfg.max_frame = 40000;
  sh.srv = &srv;
  sh.seal = malloc(kite__tv2_shard_bytes(srv.cfg.max_frame));
  assert_non_null(sh.seal);
  memset(v.s2c, 0x5c, sizeof(v.s2c));
  v.keyed = true;
  for (size_t i = 0; i < sizeof(frame); i++)
    frame[i] = (uint8_t)(i * 31 + 7);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(sh.seal);
  return 0;
}

/* Opens the |n| sealed bytes at |b| as records numbered from |first| into
 * |out|; returns the plaintext bytes, or -1. */
static long open_all(const uint8_t *b, size_t n, uint64_t first, uint8_t *out,
                     int *records) {
  kite__v2rec_reader r;
  assert_int_equal(kite__v2rec_reader_init(&r, v.s2c), 0);
  r.next = first;
  long got = 0;
  *records = 0;
  for (size_t at = 0; at < n;) {
    const uint8_t *pt;
    size_t len;
    ptrdiff_t k = kite__v2rec_read(&r, b + at, n - at, &pt, &len);
    if (k < 0) {
      kite__v2rec_reader_free(&r);
      return -1;
    }
    at += (size_t)k;
    if (pt) {
      memcpy(out + got, pt, len);
      got += (long)len;
      (*records)++;
    }
  }
  bool whole = kite__v2rec_buffered(&r) == 0;
  kite__v2rec_reader_free(&r);
  return whole ? got : -1;
}

static void a_frame_in_whole_records(void **state) {
  (void)state;
  static uint8_t back[sizeof(frame)];
  /* Header and body in two buffers, as a session sends them. */
  struct iovec iov[2] = {{frame, KITE__FRAME_HDR},
                         {frame + KITE__FRAME_HDR, sizeof(frame) - KITE__FRAME_HDR}};
  const uint8_t *out;
  ptrdiff_t n = kite__tv2_seal(&sh, &v, iov, 2, SIZE_MAX, &out);
  assert_int_equal(n, sizeof(frame) + 3 * KITE__V2REC_OVERHEAD);
  assert_ptr_equal(out, sh.seal);
  assert_true((size_t)n <= kite__tv2_seal_cap(srv.cfg.max_frame));
  assert_int_equal(v.pn.next, 3);
  int recs;
  assert_int_equal(open_all(out, (size_t)n, 0, back, &recs), sizeof(frame));
  assert_int_equal(recs, 3);
  assert_memory_equal(back, frame, sizeof(frame));
  /* The next frame goes on from record 3. */
  iov[1].iov_len = 5;
  n = kite__tv2_seal(&sh, &v, iov, 2, SIZE_MAX, &out);
  assert_int_equal(n, KITE__FRAME_HDR + 5 + KITE__V2REC_OVERHEAD);
  assert_int_equal(open_all(out, (size_t)n, 3, back, &recs), KITE__FRAME_HDR + 5);
  assert_int_equal(v.pn.next, 4);
}

static void over_the_room_takes_no_number(void **state) {
  (void)state;
  struct iovec iov = {frame, 100};
  const uint8_t *out;
  assert_int_equal(kite__tv2_seal(&sh, &v, &iov, 1, 100 + 17, &out), KITE_EFULL);
  assert_int_equal(v.pn.next, 0);
  assert_int_equal(kite__tv2_seal(&sh, &v, &iov, 1, 100 + 18, &out), 118);
  assert_int_equal(v.pn.next, 1);
}

static void the_close_frame_is_the_last_record(void **state) {
  (void)state;
  static uint8_t back[256];
  v.pn.next = KITE__V2_PN_CLOSING - 1;
  struct iovec iov = {frame, 40};
  const uint8_t *out;
  /* The last ordinary number. */
  assert_int_equal(kite__tv2_seal(&sh, &v, &iov, 1, SIZE_MAX, &out), 58);
  int recs;
  assert_int_equal(open_all(out, 58, KITE__V2_PN_CLOSING - 1, back, &recs), 40);
  /* 2^48 - 3 is the CLOSE frame's alone. */
  assert_int_equal(kite__tv2_seal(&sh, &v, &iov, 1, SIZE_MAX, &out),
                   KITE__V2_ELIMIT);
  assert_int_equal(v.pn.next, KITE__V2_PN_CLOSING);
  size_t k = kite__tv2_seal_close(&sh, &v, KITE__CLOSE_KEY_EXHAUSTED, &out);
  assert_int_equal(k, KITE__FRAME_HDR + 1 + KITE__V2REC_OVERHEAD);
  assert_int_equal(open_all(out, k, KITE__V2_PN_CLOSING, back, &recs),
                   KITE__FRAME_HDR + 1);
  kite__frame_hdr h;
  kite__frame_hdr_decode(back, &h);
  assert_int_equal(h.msg_id, KITE__MSG_CLOSE_NOTICE);
  assert_int_equal(back[KITE__FRAME_HDR], KITE__CLOSE_KEY_EXHAUSTED);
  /* Nothing after it. */
  assert_int_equal(kite__tv2_seal_close(&sh, &v, 0, &out), 0);
  assert_int_equal(kite__tv2_seal(&sh, &v, &iov, 1, SIZE_MAX, &out),
                   KITE__V2_ELIMIT);
}

/* A record from the peer failed: not a byte more, the CLOSE frame too. */
static void muted_sends_nothing(void **state) {
  (void)state;
  v.mute = true;
  const uint8_t *out;
  struct iovec iov = {frame, 40};
  assert_int_equal(kite__tv2_seal_close(&sh, &v, 2, &out), 0);
  assert_int_equal(kite__tv2_seal(&sh, &v, &iov, 1, SIZE_MAX, &out),
                   KITE__V2_ELIMIT);
  assert_int_equal(v.pn.next, 0);
}

/* OPEN's 552 bytes are kept only until OPEN is answered (here refused: it
 * does not decode), not for the connection's life. */
static void open_is_freed_once_answered(void **state) {
  (void)state;
  kite__tconn c;
  memset(&c, 0, sizeof(c));
  c.fd = -1;
  static const uint8_t hdr[KITE__CTRL_HDR];
  static const uint8_t rest[KITE__V2_OPEN_BYTES - KITE__CTRL_HDR];
  assert_true(kite__tv2_begin(&c, hdr));
  assert_non_null(c.v2->open);
  assert_int_equal(kite__tv2_collect(&c, rest, sizeof(rest)), sizeof(rest));
  assert_int_equal(c.v2->open_have, KITE__V2_OPEN_BYTES);
  uint8_t reply[KITE__V2CTL_OPENED];
  size_t len = 1;
  assert_null(kite__tv2_open(&sh, &c, NULL, reply, &len));
  assert_int_equal(len, 0);
  assert_null(c.v2->open);
  assert_int_equal(kite__tv2_collect(&c, rest, 1), 0); /* whole: no more */
  kite__tv2_free(c.v2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_frame_in_whole_records, setup, teardown),
      cmocka_unit_test_setup_teardown(over_the_room_takes_no_number, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(the_close_frame_is_the_last_record, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(muted_sends_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(open_is_freed_once_answered, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
