#include "proto/frame.h"

#include "base/le.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "kite/error.h"

void kite__frame_hdr_encode(uint8_t out[KITE__FRAME_HDR],
                            const kite__frame_hdr *h) {
  kite__put_le32(out, h->len);
  kite__put_le16(out + 4, h->msg_id);
  kite__put_le16(out + 6, h->flags);
  kite__put_le32(out + 8, h->crc32);
}

void kite__frame_hdr_decode(const uint8_t in[KITE__FRAME_HDR],
                            kite__frame_hdr *h) {
  h->len = kite__get_le32(in);
  h->msg_id = kite__get_le16(in + 4);
  h->flags = kite__get_le16(in + 6);
  h->crc32 = kite__get_le32(in + 8);
}

/* zlib's crc32 of |len| bytes; an empty body has CRC 0, and zlib returns
 * exactly that for a NULL buffer, so a 0-length body may be NULL. */
static uint32_t body_crc(const void *body, uint32_t len) {
  if (len == 0)
    return (uint32_t)crc32(0L, Z_NULL, 0);
  return (uint32_t)crc32(0L, body, (uInt)len);
}

void kite__frame_header(uint8_t out[KITE__FRAME_HDR], uint16_t msg_id,
                        uint16_t flags, const void *body, uint32_t len,
                        bool with_crc) {
  kite__frame_hdr h = {.len = len, .msg_id = msg_id};
  if (with_crc) {
    h.flags = (uint16_t)(flags | KITE__FRAME_F_CRC);
    h.crc32 = body_crc(body, len);
  } else {
    /* The protocol says crc32 is 0 without the flag; never send a stale one. */
    h.flags = (uint16_t)(flags & ~KITE__FRAME_F_CRC);
  }
  kite__frame_hdr_encode(out, &h);
}

int kite__frame_check_hdr(const kite__frame_hdr *h, uint32_t max_frame) {
  /* Length first: it is what bounds the memory a peer can make us hold. */
  if (h->len > max_frame)
    return KITE__FRAME_ETOO_LONG;
  if ((h->flags & KITE__FRAME_F_PONG) && h->msg_id != KITE__MSG_PING)
    return KITE__FRAME_EPONG;
  /* A pong echoes a ping's body, so the ping's limit binds it too. */
  if (h->msg_id == KITE__MSG_PING && h->len > KITE__PING_BODY_MAX)
    return KITE__FRAME_EPING_LONG;
  return KITE__FRAME_OK;
}

int kite__frame_check_body(const kite__frame_hdr *h, const uint8_t *body) {
  if ((h->flags & KITE__FRAME_F_CRC) && body_crc(body, h->len) != h->crc32)
    return KITE__FRAME_ECRC;
  return KITE__FRAME_OK;
}

const char *kite__frame_strerror(int err) {
  switch (err) {
  case KITE__FRAME_OK: return "frame ok";
  case KITE__FRAME_ETOO_LONG: return "frame body longer than max_frame";
  case KITE__FRAME_ECRC: return "frame body does not match its crc32";
  case KITE__FRAME_EPONG: return "pong flag on a msg_id other than 0";
  case KITE__FRAME_EPING_LONG: return "ping or pong body over 32 bytes";
  }
  return "unknown frame error";
}

void kite__frame_reader_init(kite__frame_reader *r, uint32_t max_frame) {
  memset(r, 0, sizeof(*r));
  r->max_frame = max_frame;
}

/* Drops the frame in progress (delivered, or the reader is being freed). */
static void release(kite__frame_reader *r) {
  if (r->body != r->small)
    free(r->body);
  r->body = NULL;
  r->hdr_have = 0;
  r->body_have = 0;
}

void kite__frame_reader_free(kite__frame_reader *r) {
  release(r);
}

size_t kite__frame_reader_buffered(const kite__frame_reader *r) {
  return (size_t)r->hdr_have + r->body_have;
}

size_t kite__frame_reader_heap(const kite__frame_reader *r) {
  return r->body && r->body != r->small ? r->h.len : 0;
}

/* Makes the stream unusable: the bytes already consumed belong to no frame
 * we could resume from, so every later feed gets the same answer. */
static ptrdiff_t fail(kite__frame_reader *r, int err, int why, int *why_out) {
  release(r);
  r->err = err;
  r->why = (uint8_t)why;
  if (why_out && err == KITE_EPROTO)
    *why_out = why;
  return err;
}

ptrdiff_t kite__frame_reader_feed(kite__frame_reader *r, const uint8_t *data,
                                  size_t len, kite__frame_fn fn, void *user,
                                  int *why) {
  if (r->err)
    return fail(r, r->err, r->why, why);
  size_t off = 0;
  for (;;) {
    size_t avail = len - off;
    int e;
    if (r->hdr_have < KITE__FRAME_HDR) {
      if (r->hdr_have == 0 && avail >= KITE__FRAME_HDR) {
        kite__frame_hdr_decode(data + off, &r->h);
        off += KITE__FRAME_HDR;
        r->hdr_have = KITE__FRAME_HDR;
      } else {
        if (avail == 0)
          break;
        size_t n = KITE__FRAME_HDR - r->hdr_have;
        if (n > avail)
          n = avail;
        memcpy(r->hdr + r->hdr_have, data + off, n);
        off += n;
        r->hdr_have = (uint8_t)(r->hdr_have + n);
        if (r->hdr_have < KITE__FRAME_HDR)
          break;
        kite__frame_hdr_decode(r->hdr, &r->h);
      }
      /* Before any body byte is held: an oversized frame costs us nothing. */
      if ((e = kite__frame_check_hdr(&r->h, r->max_frame)) != 0)
        return fail(r, KITE_EPROTO, e, why);
    }

    const uint8_t *body;
    avail = len - off;
    if (r->body_have == 0 && avail >= r->h.len) {
      /* The whole body is in the caller's bytes (always so for len 0, which
       * is why a frame completed by its header's last byte goes out now). */
      body = data + off;
      off += r->h.len;
    } else {
      if (avail == 0)
        break;
      if (!r->body) {
        /* Exactly this frame's size, not max_frame: a reader allowed 1 MB
         * frames that sees a 2 KB one spanning feeds holds 2 KB. */
        r->body = r->h.len <= KITE__FRAME_INLINE ? r->small : malloc(r->h.len);
        if (!r->body)
          return fail(r, KITE_ENOMEM, 0, why);
      }
      size_t n = r->h.len - r->body_have;
      if (n > avail)
        n = avail;
      memcpy(r->body + r->body_have, data + off, n);
      off += n;
      r->body_have += (uint32_t)n;
      if (r->body_have < r->h.len)
        break;
      body = r->body;
    }
    if ((e = kite__frame_check_body(&r->h, body)) != 0)
      return fail(r, KITE_EPROTO, e, why);

    /* Between frames for the callback's sake; the buffer goes after it. */
    r->hdr_have = 0;
    r->body_have = 0;
    int stop = fn(user, &r->h, body);
    release(r);
    if (stop)
      break;
  }
  return (ptrdiff_t)off;
}
