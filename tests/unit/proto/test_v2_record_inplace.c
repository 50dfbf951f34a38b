/*
 * TCP records, version 2: where the reader opens them. A record whole in
 * the bytes given is opened straight into the caller's |out|, the reader
 * allocating nothing; only a record that spans calls goes through its
 * buffer, allocated then, sized to it and kept (no allocation per record
 * in steady state, at most 18 + 16384 bytes). Records split at every byte,
 * several in one call, one that spans then one whole, a bad tag on each
 * path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kite/error.h"
#include "proto/v2.h"
#include "proto/v2rec.h"
#include "v2_vectors.h"

static uint8_t key[32];
static uint8_t wire[4096], plain[4096], got[4096];
static uint8_t out[KITE__V2REC_MAX];
static size_t ends[8]; /* where each record of the stream ends */

static int setup(void **state) {
  (void)state;
  vec_seq(key, 0x5a, 32);
  return kite__v2_init();
}

/* Records of the sizes in |sizes| (0 ends), numbered from 0. */
static size_t stream(const size_t *sizes, size_t *plain_len, int *count) {
  size_t len = 0;
  *plain_len = 0;
  int i = 0;
  for (; sizes[i]; i++) {
    for (size_t j = 0; j < sizes[i]; j++)
      plain[*plain_len + j] = (uint8_t)(i * 31 + j);
    int k = kite__v2rec_seal(wire + len, sizeof(wire) - len, (uint64_t)i, key,
                             plain + *plain_len, sizes[i]);
    assert_int_equal(k, (int)(sizes[i] + 18));
    len += (size_t)k;
    ends[i] = len;
    *plain_len += sizes[i];
  }
  *count = i;
  return len;
}

/* Reads all of |len| bytes at |p|; appends plaintexts to |got| at *got_len.
 * Counts records opened into |out| and in the reader's buffer. */
static ptrdiff_t read_all(kite__v2rec_reader *r, const uint8_t *p, size_t len,
                          size_t *got_len, int *whole, int *spanned) {
  size_t off = 0;
  while (off < len) {
    const uint8_t *pt;
    size_t n;
    ptrdiff_t k = kite__v2rec_read_to(r, p + off, len - off, out, &pt, &n);
    if (k < 0)
      return k;
    assert_true(k > 0);
    off += (size_t)k;
    if (pt == NULL)
      continue;
    if (pt == out)
      (*whole)++;
    else
      (*spanned)++;
    memcpy(got + *got_len, pt, n);
    *got_len += n;
  }
  return 0;
}

static void split_at_every_byte(void **state) {
  (void)state;
  const size_t sizes[] = {1, 64, 300, 0};
  size_t plain_len;
  int count;
  size_t len = stream(sizes, &plain_len, &count);
  for (size_t cut = 0; cut <= len; cut++) {
    kite__v2rec_reader r;
    assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
    assert_int_equal(kite__v2rec_reader_cap(&r), 0);
    size_t got_len = 0;
    int whole = 0, spanned = 0;
    assert_int_equal(read_all(&r, wire, cut, &got_len, &whole, &spanned), 0);
    assert_int_equal(read_all(&r, wire + cut, len - cut, &got_len, &whole,
                              &spanned),
                     0);
    assert_int_equal(got_len, plain_len);
    assert_memory_equal(got, plain, plain_len);
    assert_int_equal(kite__v2rec_buffered(&r), 0);
    bool boundary = cut == 0 || cut == len;
    for (int i = 0; i < count; i++)
      boundary = boundary || cut == ends[i];
    if (boundary) { /* every record whole in a call: no buffer at all */
      assert_int_equal(whole, count);
      assert_int_equal(spanned, 0);
      assert_int_equal(kite__v2rec_reader_cap(&r), 0);
    } else { /* one spanned, sized to it (a power of two from 64) */
      assert_int_equal(whole, count - 1);
      assert_int_equal(spanned, 1);
      size_t cap = kite__v2rec_reader_cap(&r);
      assert_true(cap >= 19 && cap <= 512);
    }
    kite__v2rec_reader_free(&r);
  }
}

static void several_records_in_one_call(void **state) {
  (void)state;
  const size_t sizes[] = {5, 64, 64, 1, 200, 64, 0};
  size_t plain_len;
  int count;
  size_t len = stream(sizes, &plain_len, &count);
  kite__v2rec_reader r;
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  size_t off = 0, got_len = 0;
  for (int i = 0; i < count; i++) { /* one record a call, each in |out| */
    const uint8_t *pt;
    size_t n;
    ptrdiff_t k = kite__v2rec_read_to(&r, wire + off, len - off, out, &pt, &n);
    assert_int_equal(k, (ptrdiff_t)(sizes[i] + 18));
    assert_ptr_equal(pt, out);
    assert_int_equal(n, sizes[i]);
    assert_memory_equal(pt, plain + got_len, n);
    got_len += n;
    off += (size_t)k;
  }
  assert_int_equal(off, len);
  assert_int_equal(kite__v2rec_reader_cap(&r), 0);
  kite__v2rec_reader_free(&r);
}

static void spans_then_whole_keeps_its_buffer(void **state) {
  (void)state;
  const size_t sizes[] = {100, 64, 100, 64, 100, 64, 0};
  size_t plain_len;
  int count;
  size_t len = stream(sizes, &plain_len, &count);
  kite__v2rec_reader r;
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  size_t got_len = 0;
  const uint8_t *buf = NULL;
  for (int i = 0; i < count; i += 2) {
    /* Reads: the first 50 bytes of record i, then its rest with the whole
     * record i + 1. */
    size_t start = i ? ends[i - 1] : 0;
    int whole = 0, spanned = 0;
    assert_int_equal(read_all(&r, wire + start, 50, &got_len, &whole,
                              &spanned),
                     0);
    assert_int_equal(kite__v2rec_buffered(&r), 50);
    assert_int_equal(read_all(&r, wire + start + 50, ends[i + 1] - start - 50,
                              &got_len, &whole, &spanned),
                     0);
    assert_int_equal(spanned, 1);
    assert_int_equal(whole, 1);
    assert_int_equal(kite__v2rec_reader_cap(&r), 128); /* 118, rounded */
    if (buf == NULL)
      buf = r.buf;
    assert_ptr_equal(r.buf, buf); /* kept: not allocated again */
  }
  assert_int_equal(got_len, plain_len);
  assert_memory_equal(got, plain, plain_len);
  kite__v2rec_reader_free(&r);
  (void)len;
}

static void the_buffer_is_bounded(void **state) {
  (void)state;
  static uint8_t big[KITE__V2REC_MAX + 18], pt_in[KITE__V2REC_MAX];
  memset(pt_in, 0x42, sizeof(pt_in));
  int len = kite__v2rec_seal(big, sizeof(big), 0, key, pt_in, sizeof(pt_in));
  assert_int_equal(len, (int)sizeof(big));
  kite__v2rec_reader r;
  assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
  const uint8_t *pt;
  size_t n;
  assert_int_equal(kite__v2rec_read_to(&r, big, 1, out, &pt, &n), 1);
  assert_int_equal(kite__v2rec_read_to(&r, big + 1, sizeof(big) - 1, out, &pt,
                                       &n),
                   (ptrdiff_t)sizeof(big) - 1);
  assert_int_equal(n, KITE__V2REC_MAX);
  assert_memory_equal(pt, pt_in, n);
  assert_int_equal(kite__v2rec_reader_cap(&r), KITE__V2REC_MAX + 18);
  kite__v2rec_reader_free(&r);
}

/* A tag bit flipped in record 1 of 3, read (a) whole into |out|, (b) split
 * inside it, (c) whole with |out| NULL: refused, sticky; record 0 read. */
static void a_bad_tag_on_each_path(void **state) {
  (void)state;
  const size_t sizes[] = {64, 64, 64, 0};
  size_t plain_len;
  int count;
  size_t len = stream(sizes, &plain_len, &count);
  wire[ends[1] - 1] ^= 0x01;
  for (int path = 0; path < 3; path++) {
    kite__v2rec_reader r;
    assert_int_equal(kite__v2rec_reader_init(&r, key), 0);
    const uint8_t *pt;
    size_t n;
    uint8_t *o = path == 2 ? NULL : out;
    assert_int_equal(kite__v2rec_read_to(&r, wire, len, o, &pt, &n),
                     (ptrdiff_t)ends[0]);
    assert_non_null(pt);
    ptrdiff_t k;
    if (path == 1) {
      assert_int_equal(kite__v2rec_read_to(&r, wire + ends[0], 30, o, &pt, &n),
                       30);
      assert_null(pt);
      k = kite__v2rec_read_to(&r, wire + ends[0] + 30, len - ends[0] - 30, o,
                              &pt, &n);
    } else {
      k = kite__v2rec_read_to(&r, wire + ends[0], len - ends[0], o, &pt, &n);
    }
    assert_int_equal(k, KITE__V2_EAUTH);
    assert_null(pt);
    assert_int_equal(n, 0);
    assert_int_equal(kite__v2rec_read_to(&r, wire + ends[1], len - ends[1], o,
                                         &pt, &n),
                     KITE__V2_EAUTH); /* sticky */
    kite__v2rec_reader_free(&r);
  }
  wire[ends[1] - 1] ^= 0x01;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(split_at_every_byte),
      cmocka_unit_test(several_records_in_one_call),
      cmocka_unit_test(spans_then_whole_keeps_its_buffer),
      cmocka_unit_test(the_buffer_is_bounded),
      cmocka_unit_test(a_bad_tag_on_each_path),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
