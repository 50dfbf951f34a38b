/*
 * libFuzzer target: the TCP v2 record reader (proto/v2rec.h).
 *
 * Input: mode u8, then by mode:
 *   bit 0 clear: a list of plaintexts, each len u8 (+1) then that many
 *     bytes (the last one cut short if the input ends), sealed here as
 *     records 0, 1, ...; then the cut sizes are the input's bytes again,
 *     cycling. The reader must give back exactly the plaintexts, in order,
 *     one per record, and hold nothing at the end. With bit 1 set, one
 *     bit (picked by the input) of the sealed stream is flipped first: the
 *     reader must then refuse (EAUTH or EPROTO) or still be waiting for
 *     bytes of a record whose len grew, and never hand out a plaintext
 *     that differs from the sealed one.
 *   bit 0 set: the rest is fed raw, in the same cuts: no record opens (the
 *     key is this target's), refusals are sticky, every call consumes at
 *     most what it was given, and the reader never holds more than one
 *     record.
 *   bit 2 set: records read whole are opened into a buffer of this target's
 *     (kite__v2rec_read_to), else into the reader's (kite__v2rec_read);
 *     either way its buffer stays within 18 + 16384 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/v2.h"
#include "proto/v2rec.h"

static const uint8_t key[32] = {0x1b, 0x69, 0x0f};
static uint8_t wire[1 << 20], plain[1 << 20], out[KITE__V2REC_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (kite__v2_init() != 0)
    abort();
  if (size < 2 || size > 32768) /* keeps the sealed stream in |wire| */
    return 0;
  uint8_t mode = data[0];
  const uint8_t *in = data + 1;
  size_t in_len = size - 1;

  size_t wire_len = 0, plain_len = 0, records = 0;
  const uint8_t *feed = in;
  size_t feed_len = in_len;
  if (!(mode & 1)) {
    size_t off = 0;
    while (off < in_len) {
      size_t len = (size_t)in[off++] + 1;
      if (len > in_len - off)
        len = in_len - off;
      if (len == 0)
        break;
      int n = kite__v2rec_seal(wire + wire_len, sizeof(wire) - wire_len,
                               records, key, in + off, len);
      if (n != (int)len + 18)
        abort();
      memcpy(plain + plain_len, in + off, len);
      wire_len += (size_t)n;
      plain_len += len;
      records++;
      off += len;
    }
    if (mode & 2) {
      size_t bit = ((size_t)mode * 2654435761u) % (wire_len * 8 + 1);
      if (bit < wire_len * 8)
        wire[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    feed = wire;
    feed_len = wire_len;
  }

  kite__v2rec_reader r;
  if (kite__v2rec_reader_init(&r, key) != 0)
    abort();
  size_t off = 0, got = 0, cut_i = 0, delivered = 0;
  int err = 0;
  while (off < feed_len) {
    size_t cut = in[cut_i++ % in_len];
    if (cut == 0)
      cut = feed_len - off;
    if (cut > feed_len - off)
      cut = feed_len - off;
    const uint8_t *pt;
    size_t n;
    ptrdiff_t used = kite__v2rec_read_to(&r, feed + off, cut,
                                         (mode & 4) ? out : NULL, &pt, &n);
    if (used < 0) {
      err = (int)used;
      if (err != KITE__V2_EAUTH && err != KITE__V2_EPROTO)
        abort();
      if (kite__v2rec_read(&r, feed, feed_len, &pt, &n) != err)
        abort(); /* sticky */
      break;
    }
    if ((size_t)used > cut || kite__v2rec_buffered(&r) > 18 + KITE__V2REC_MAX ||
        kite__v2rec_reader_cap(&r) > 18 + KITE__V2REC_MAX)
      abort();
    if (pt != NULL) {
      if ((mode & 1) || n == 0 || n > KITE__V2REC_MAX ||
          got + n > plain_len || memcmp(pt, plain + got, n) != 0)
        abort();
      got += n;
      delivered++;
    }
    off += (size_t)used;
  }
  if (!(mode & 1) && !(mode & 2) &&
      (err != 0 || got != plain_len || delivered != records ||
       kite__v2rec_buffered(&r) != 0))
    abort();
  kite__v2rec_reader_free(&r);
  return 0;
}
