/*
 * TCP records, version 2 (PROTOCOL-v2.md section 8): sealing, a reader fed
 * in any cuts, and each refusal (bad len before the body, a flipped bit,
 * records reordered, the number limit), all sticky.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "proto/v2.h"
#include "proto/v2pkt.h"
#include "proto/v2rec.h"
#include "v2_vectors.h"

static uint8_t key[32];

static int setup(void **state) {
  (void)state;
  vec_seq(key, 0x33, 32);
  return kite__v2_init();
}

/* A stream of |n| records of sizes 1, 2, ... n (and one of 16384). */
static size_t stream(uint8_t *out, size_t cap, int n, uint8_t *plain,
                     size_t *plain_len) {
  size_t len = 0;
  *plain_len = 0;
  for (int i = 0; i < n; i++) {
    size_t sz = i == n - 1 ? KITE__V2REC_MAX : (size_t)i + 1;
    for (size_t j = 0; j < sz; j++)
      plain[*plain_len + j] = (uint8_t)(i * 7 + j);
    int k = kite__v2rec_seal(out + len, cap - len, (uint64_t)i, key,
                             plain + *plain_len, sz);
    assert_int_equal(k, (int)(sz + 18));
    len += (size_t)k;
    *plain_len += sz;
  }
  return len;
}

static uint8_t wire[64 * 1024], plain[64 * 1024], got[64 * 1024];

/* Feeds |len| bytes in pieces of |step| (0: random pieces); returns the
 * plaintext bytes read back into |got|, or the refusal. */
static long feed(kite__v2rec_reader *r, const uint8_t *p, size_t len,
                 size_t step) {
  size_t off = 0, out = 0;
  while (off < len) {
    size_t piece = step ? step : 1 + (size_t)rand() % 700;
    if (piece > len - off)
      piece = len - off;
    size_t done = 0;
    while (done < piece) {
      const uint8_t *pt;
      size_t n;
      ptrdiff_t used = kite__v2rec_read(r, p + off + done, piece - done, &pt, &n);
      if (used < 0)
        return (long)used;
      done += (size_t)used;
      if (pt != NULL) {
        memcpy(got + out, pt, n);
        out += n;
      }
    }
    off += piece;
  }
  return (long)out;
}

static void records_in_any_cuts(void **state) {
  (void)state;
  size_t plain_len;
  size_t len = stream(wire, sizeof(wire), 40, plain, &plain_len);
  size_t steps[] = {1, 2, 17, 18, 19, 4096, len, 0, 0};
  srand(8);
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    kite__v2rec_reader r;
    assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
    assert_int_equal(feed(&r, wire, len, steps[i]), (long)plain_len);
    assert_memory_equal(got, plain, plain_len);
    assert_int_equal(kite__v2rec_buffered(&r), 0);
    kite__v2rec_reader_free(&r);
  }
}

static void one_record_per_call(void **state) {
  (void)state;
  uint8_t two[64];
  int a = kite__v2rec_seal(two, sizeof(two), 0, key, (const uint8_t *)"ab", 2);
  int b = kite__v2rec_seal(two + a, sizeof(two) - (size_t)a, 1, key,
                           (const uint8_t *)"cde", 3);
  kite__v2rec_reader r;
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  const uint8_t *pt;
  size_t n;
  assert_int_equal(kite__v2rec_read(&r, two, (size_t)(a + b), &pt, &n), a);
  assert_int_equal(n, 2);
  assert_memory_equal(pt, "ab", 2);
  assert_int_equal(kite__v2rec_read(&r, two + a, (size_t)b - 1, &pt, &n), b - 1);
  assert_null(pt);
  assert_int_equal(kite__v2rec_buffered(&r), (size_t)b - 1);
  assert_int_equal(kite__v2rec_read(&r, two + a + b - 1, 1, &pt, &n), 1);
  assert_memory_equal(pt, "cde", 3);
  assert_int_equal(kite__v2rec_read(&r, NULL, 0, &pt, &n), 0);
  kite__v2rec_reader_free(&r);
}

static void bad_len_refused_before_the_body(void **state) {
  (void)state;
  kite__v2rec_reader r;
  const uint8_t *pt;
  size_t n;
  static const uint8_t zero_len[2] = {0, 0};
  static const uint8_t too_long[2] = {0x01, 0x40}; /* 16385 */
  static const uint8_t max_len[2] = {0x00, 0x40};  /* 16384 */
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  assert_int_equal(kite__v2rec_read(&r, zero_len, 2, &pt, &n), KITE__V2_EPROTO);
  assert_int_equal(kite__v2rec_read(&r, max_len, 2, &pt, &n), KITE__V2_EPROTO);
  kite__v2rec_reader_free(&r);
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  assert_int_equal(kite__v2rec_read(&r, too_long, 1, &pt, &n), 1);
  assert_int_equal(kite__v2rec_read(&r, too_long + 1, 1, &pt, &n),
                   KITE__V2_EPROTO);
  kite__v2rec_reader_free(&r);
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  assert_int_equal(kite__v2rec_read(&r, max_len, 2, &pt, &n), 2);
  assert_null(pt);
  kite__v2rec_reader_free(&r);
}

static void any_flip_and_any_reorder_is_refused(void **state) {
  (void)state;
  uint8_t rec[64];
  int len = kite__v2rec_seal(rec, sizeof(rec), 0, key,
                             (const uint8_t *)"0123456789", 10);
  assert_int_equal(len, 28);
  for (size_t bit = 16; bit < (size_t)len * 8; bit++) { /* past len */
    uint8_t bad[64];
    memcpy(bad, rec, (size_t)len);
    bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    kite__v2rec_reader r;
    assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
    assert_int_equal(feed(&r, bad, (size_t)len, (size_t)len), KITE__V2_EAUTH);
    const uint8_t *pt;
    size_t n;
    assert_int_equal(kite__v2rec_read(&r, rec, (size_t)len, &pt, &n),
                     KITE__V2_EAUTH); /* sticky */
    kite__v2rec_reader_free(&r);
  }
  /* A flipped len: another size, so the tag fails or the body never ends. */
  uint8_t bad[64];
  memcpy(bad, rec, (size_t)len);
  bad[0] ^= 1; /* 11 */
  kite__v2rec_reader r;
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  uint8_t more[64];
  memcpy(more, bad, (size_t)len);
  more[len] = 0;
  assert_int_equal(feed(&r, more, (size_t)len + 1, (size_t)len + 1),
                   KITE__V2_EAUTH);
  kite__v2rec_reader_free(&r);

  /* Record 1 where 0 is expected; the other direction's key. */
  len = kite__v2rec_seal(rec, sizeof(rec), 1, key, (const uint8_t *)"x", 1);
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  assert_int_equal(feed(&r, rec, (size_t)len, (size_t)len), KITE__V2_EAUTH);
  kite__v2rec_reader_free(&r);
  uint8_t other[32];
  memcpy(other, key, 32);
  other[0] ^= 0x80;
  len = kite__v2rec_seal(rec, sizeof(rec), 0, other, (const uint8_t *)"x", 1);
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  assert_int_equal(feed(&r, rec, (size_t)len, (size_t)len), KITE__V2_EAUTH);
  kite__v2rec_reader_free(&r);
}

static void seal_refusals_and_the_number_limit(void **state) {
  (void)state;
  static uint8_t big[KITE__V2REC_MAX + 64];
  assert_int_equal(kite__v2rec_seal(big, sizeof(big), 0, key, big, 0),
                   KITE_EINVAL);
  assert_int_equal(kite__v2rec_seal(big, sizeof(big), 0, key, big + 2,
                                    KITE__V2REC_MAX + 1),
                   KITE_EINVAL);
  assert_int_equal(kite__v2rec_seal(big, 20, 0, key, big + 2, 3),
                   KITE_EMSGSIZE);
  assert_int_equal(kite__v2rec_seal(big, 21, 0, key, big + 2, 3), 21);
  assert_int_equal(kite__v2rec_seal(big, sizeof(big), KITE__V2_PN_LIMIT, key,
                                    big + 2, 3),
                   KITE__V2_ELIMIT);

  /* The last records a sender may send, read by a reader that got there:
   * 2^48 - 3 carries the close and is the last; past 2^48 nothing opens. */
  kite__v2pn s = {.next = KITE__V2_PN_CLOSING};
  uint64_t rn;
  assert_int_equal(kite__v2pn_take(&s, &rn), KITE__V2PN_CLOSING);
  int len = kite__v2rec_seal(big, sizeof(big), rn, key, (const uint8_t *)"c", 1);
  kite__v2rec_reader r;
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  r.next = rn;
  const uint8_t *pt;
  size_t n;
  assert_int_equal(kite__v2rec_read(&r, big, (size_t)len, &pt, &n), len);
  assert_non_null(pt);
  r.next = KITE__V2_PN_LIMIT;
  assert_int_equal(kite__v2rec_read(&r, big, (size_t)len, &pt, &n),
                   KITE__V2_ELIMIT);
  kite__v2rec_reader_free(&r);
}

static void v2_frame_rules(void **state) {
  (void)state;
  kite__frame_hdr h = {.len = 100, .msg_id = 9, .flags = 0};
  assert_int_equal(kite__v2_frame_check(&h, 50), 0); /* reliable: max_frame */
  h.flags = KITE__FRAME_F_UNRELIABLE;
  assert_int_equal(kite__v2_frame_check(&h, 100), 0);
  assert_int_equal(kite__v2_frame_check(&h, 99), KITE__V2_EPROTO);
  static const uint8_t seven = 7, eight = 8;
  assert_int_equal(kite__v2_close_frame_reason(&seven, 1), 7);
  assert_int_equal(kite__v2_close_frame_reason(&eight, 1), 0);
  assert_int_equal(kite__v2_close_frame_reason(NULL, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(records_in_any_cuts),
      cmocka_unit_test(one_record_per_call),
      cmocka_unit_test(bad_len_refused_before_the_body),
      cmocka_unit_test(any_flip_and_any_reorder_is_refused),
      cmocka_unit_test(seal_refusals_and_the_number_limit),
      cmocka_unit_test(v2_frame_rules),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
