/*
 * libFuzzer target: the frame reader (proto/frame.h) cutting an arbitrary
 * byte stream into frames, fed in arbitrary pieces, with a callback that
 * stops now and then and is resumed.
 *
 * Input: max_frame u16 LE, stop_every u8 (the callback stops after every
 * that many frames; 0 never), nsizes u8, nsizes chunk sizes u8 (used in
 * turn, cycling; none or all zero: the stream in one piece), then the
 * stream itself. Keeping the stream in one run of bytes lets seeds and
 * mutations hold valid frames whatever the cut.
 *
 * Checked besides ASan/UBSan, after every feed and at the end:
 * - buffered() <= 12 + max_frame, and an empty reader holds no heap;
 * - a feed consumes all it is given unless the callback stopped it;
 * - every delivered frame passes kite__frame_check_hdr/_body;
 * - the delivered frames re-encoded are exactly the stream's first bytes,
 *   and fed to a fresh reader in one piece give the same frames;
 * - the whole stream fed in one piece gives the same frames and the same
 *   outcome (error and reason, or bytes left held) as the cut feeding;
 * - so does model(), section 4 written out again as plainly as possible,
 *   so that a mistake shared by the reader and the check functions shows.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "kite/error.h"
#include "proto/frame.h"

typedef struct frames {
  size_t n, cap;
  kite__frame_hdr *h;
  uint8_t *bodies; /* back to back; never more than the stream's bytes */
  size_t body_len;
  uint32_t max_frame;
  unsigned stop_every, since_stop;
  bool stopped; /* the last callback asked to stop */
  const kite__frame_reader *r;
} frames;

static void frames_init(frames *f, size_t stream_len, uint32_t max_frame,
                        const kite__frame_reader *r) {
  memset(f, 0, sizeof(*f));
  f->cap = stream_len / KITE__FRAME_HDR + 1;
  f->h = malloc(f->cap * sizeof(*f->h));
  f->bodies = malloc(stream_len + 1);
  if (!f->h || !f->bodies)
    abort();
  f->max_frame = max_frame;
  f->r = r;
}

static void frames_free(frames *f) {
  free(f->h);
  free(f->bodies);
}

static int on_frame(void *user, const kite__frame_hdr *h, const uint8_t *body) {
  frames *f = user;
  if (!body || f->n == f->cap || f->stopped)
    abort(); /* after a stop, no frame until the next feed */
  if (kite__frame_check_hdr(h, f->max_frame) != KITE__FRAME_OK ||
      kite__frame_check_body(h, body) != KITE__FRAME_OK)
    abort();
  if (kite__frame_reader_buffered(f->r) != 0)
    abort();
  f->h[f->n++] = *h;
  memcpy(f->bodies + f->body_len, body, h->len);
  f->body_len += h->len;
  f->stopped = f->stop_every && ++f->since_stop == f->stop_every;
  if (f->stopped)
    f->since_stop = 0;
  return f->stopped;
}

static void same_frames(const frames *a, const frames *b) {
  if (a->n != b->n || a->body_len != b->body_len ||
      memcmp(a->bodies, b->bodies, a->body_len) != 0)
    abort();
  for (size_t i = 0; i < a->n; i++)
    if (a->h[i].len != b->h[i].len || a->h[i].msg_id != b->h[i].msg_id ||
        a->h[i].flags != b->h[i].flags || a->h[i].crc32 != b->h[i].crc32)
      abort();
}

static void check_reader(const kite__frame_reader *r, uint32_t max_frame) {
  size_t held = kite__frame_reader_buffered(r);
  if (held > KITE__FRAME_HDR + (size_t)max_frame)
    abort();
  if (held == 0 && kite__frame_reader_heap(r) != 0)
    abort();
}

/* Feeds |len| bytes in one piece, no stops. Returns the feed's result. */
static ptrdiff_t feed_whole(const uint8_t *data, size_t len, uint32_t max_frame,
                            frames *out, int *why, size_t *held) {
  kite__frame_reader r;
  kite__frame_reader_init(&r, max_frame);
  frames_init(out, len, max_frame, &r);
  ptrdiff_t n = kite__frame_reader_feed(&r, data, len, on_frame, out, why);
  check_reader(&r, max_frame);
  *held = kite__frame_reader_buffered(&r);
  kite__frame_reader_free(&r);
  return n;
}

/* PROTOCOL.md section 4 read straight off the page, sharing no code with
 * frame.c: appends the frames of |s| to |out| and returns 0 with *held set
 * to the bytes of an incomplete last frame, or the reason of the first
 * protocol error (which a reader reports as soon as the header is in). */
static int model(const uint8_t *s, size_t len, uint32_t max_frame,
                 frames *out, size_t *held) {
  size_t off = 0;
  while (len - off >= 12) {
    const uint8_t *p = s + off;
    uint32_t blen = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
    uint16_t id = (uint16_t)(p[4] | p[5] << 8);
    uint16_t flags = (uint16_t)(p[6] | p[7] << 8);
    uint32_t crc = p[8] | p[9] << 8 | p[10] << 16 | (uint32_t)p[11] << 24;
    if (blen > max_frame)
      return KITE__FRAME_ETOO_LONG;
    if ((flags & 2) && id != 0)
      return KITE__FRAME_EPONG;
    if (id == 0 && blen > 32)
      return KITE__FRAME_EPING_LONG;
    if (len - off - 12 < blen)
      break;
    if ((flags & 1) && crc32(crc32(0L, Z_NULL, 0), p + 12, blen) != crc)
      return KITE__FRAME_ECRC;
    out->h[out->n++] = (kite__frame_hdr){blen, id, flags, crc};
    memcpy(out->bodies + out->body_len, p + 12, blen);
    out->body_len += blen;
    off += 12 + blen;
  }
  *held = len - off;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4)
    return 0;
  uint32_t max_frame = (uint32_t)data[0] | (uint32_t)data[1] << 8;
  unsigned stop_every = data[2];
  size_t nsizes = data[3];
  data += 4;
  size -= 4;
  if (nsizes > size)
    nsizes = size;
  const uint8_t *sizes = data;
  size_t sizes_sum = 0;
  for (size_t i = 0; i < nsizes; i++)
    sizes_sum += sizes[i];
  const uint8_t *stream = data + nsizes;
  size_t len = size - nsizes;

  /* Cut feeding. */
  kite__frame_reader r;
  kite__frame_reader_init(&r, max_frame);
  frames got;
  frames_init(&got, len, max_frame, &r);
  got.stop_every = stop_every;
  size_t off = 0, turn = 0;
  ptrdiff_t err = 0;
  int why = 0;
  while (off < len) {
    size_t chunk = sizes_sum ? sizes[turn++ % nsizes] : len - off;
    if (chunk > len - off)
      chunk = len - off;
    size_t done = 0;
    do { /* resume after each stop until the chunk is used up */
      got.stopped = false;
      ptrdiff_t n = kite__frame_reader_feed(&r, stream + off + done,
                                            chunk - done, on_frame, &got, &why);
      check_reader(&r, max_frame);
      if (n < 0) {
        err = n;
        break;
      }
      if ((size_t)n > chunk - done || (!got.stopped && (size_t)n != chunk - done))
        abort();
      done += (size_t)n;
    } while (done < chunk);
    if (err)
      break;
    off += chunk;
  }
  size_t held = kite__frame_reader_buffered(&r);
  if (err) {
    if (err != KITE_EPROTO || why < KITE__FRAME_ETOO_LONG ||
        why > KITE__FRAME_EPING_LONG)
      abort(); /* ENOMEM cannot happen with max_frame < 64 KB */
    /* Sticky. */
    int why2 = 0;
    if (kite__frame_reader_feed(&r, stream, len, on_frame, &got, &why2) != err ||
        why2 != why)
      abort();
  }
  kite__frame_reader_free(&r);

  /* The delivered frames are exactly the stream's first bytes. */
  size_t enc_len = got.n * KITE__FRAME_HDR + got.body_len;
  uint8_t *enc = malloc(enc_len + 1);
  if (!enc || enc_len > len)
    abort();
  size_t p = 0, b = 0;
  for (size_t i = 0; i < got.n; i++) {
    kite__frame_hdr_encode(enc + p, &got.h[i]);
    p += KITE__FRAME_HDR;
    memcpy(enc + p, got.bodies + b, got.h[i].len);
    p += got.h[i].len;
    b += got.h[i].len;
  }
  if (memcmp(enc, stream, enc_len) != 0)
    abort();
  if (!err && enc_len + held != len)
    abort(); /* whatever is not delivered is held, nothing is lost */

  /* Re-encoded, in one piece: the same frames, nothing left over. */
  frames again;
  int why_again = 0;
  size_t held_again;
  if (feed_whole(enc, enc_len, max_frame, &again, &why_again, &held_again) !=
          (ptrdiff_t)enc_len ||
      held_again != 0)
    abort();
  same_frames(&got, &again);
  frames_free(&again);
  free(enc);

  /* The original stream in one piece: the same frames, the same outcome. */
  frames whole;
  int why_whole = 0;
  size_t held_whole;
  ptrdiff_t n = feed_whole(stream, len, max_frame, &whole, &why_whole,
                           &held_whole);
  same_frames(&got, &whole);
  if (err ? (n != err || why_whole != why)
          : (n != (ptrdiff_t)len || held_whole != held))
    abort();
  frames_free(&whole);

  frames want;
  frames_init(&want, len, max_frame, NULL);
  size_t held_want = 0;
  int why_want = model(stream, len, max_frame, &want, &held_want);
  same_frames(&got, &want);
  if (err ? why_want != why : (why_want != 0 || held_want != held))
    abort();
  frames_free(&want);
  frames_free(&got);
  return 0;
}
