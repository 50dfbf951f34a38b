#include "proto/control.h"

#include "base/le.h"

#include <string.h>

#include "kite/error.h"

static inline uint8_t *put(uint8_t *p, const uint8_t *src, size_t n) {
  memcpy(p, src, n);
  return p + n;
}

size_t kite__ctrl_size(uint8_t type) {
  switch (type) {
  case KITE__CTRL_HELLO: return KITE__CTRL_REQ_MIN;
  case KITE__CTRL_CHALLENGE: return 32;
  case KITE__CTRL_CONNECT: return KITE__CTRL_REQ_MIN;
  case KITE__CTRL_ACCEPT: return 40;
  case KITE__CTRL_REJECT: return 17;
  case KITE__CTRL_CLOSE: return 21;
  case KITE__CTRL_OPEN: return KITE__CTRL_HDR;
  case KITE__CTRL_OPENED: return 16;
  }
  return 0;
}

int kite__ctrl_decode(const uint8_t *p, size_t len, kite__ctrl *out) {
  memset(out, 0, sizeof(*out));
  if (!kite__ctrl_is_control(p, len))
    return KITE__CTRL_EMAGIC;
  if (len < KITE__CTRL_HDR)
    return KITE__CTRL_ESHORT;
  out->type = p[4];
  out->version = p[5];
  /* p[6..7]: reserved, ignored. Every type but OPEN and OPENED has its nonce
   * at 8; taking it whenever present lets the EVERSION path answer. */
  if (len >= KITE__CTRL_HDR + KITE__CTRL_NONCE)
    memcpy(out->nonce, p + 8, KITE__CTRL_NONCE);
  if (out->version != KITE__PROTO_VERSION)
    return KITE__CTRL_EVERSION;
  size_t need = kite__ctrl_size(out->type);
  if (need == 0)
    return KITE__CTRL_ETYPE;
  if (len < need)
    return KITE__CTRL_ESHORT;

  const uint8_t *b = p + KITE__CTRL_HDR;
  switch (out->type) {
  case KITE__CTRL_HELLO:
    break; /* the nonce is taken; the padding is not looked at */
  case KITE__CTRL_CHALLENGE:
    memcpy(out->cookie, b + 8, KITE__CTRL_COOKIE);
    break;
  case KITE__CTRL_CONNECT:
    memcpy(out->cookie, b + 8, KITE__CTRL_COOKIE);
    out->mtu = kite__get_le16(b + 24);
    out->rcv_wnd = kite__get_le16(b + 26);
    break;
  case KITE__CTRL_ACCEPT:
    out->conv = kite__get_le32(b + 8);
    memcpy(out->token, b + 12, KITE__CTRL_TOKEN);
    out->mtu = kite__get_le16(b + 20);
    out->rcv_wnd = kite__get_le16(b + 22);
    out->idle_timeout_ms = kite__get_le32(b + 24);
    out->max_frame = kite__get_le32(b + 28);
    break;
  case KITE__CTRL_REJECT:
    out->reason = b[8];
    break;
  case KITE__CTRL_CLOSE:
    memset(out->nonce, 0, KITE__CTRL_NONCE); /* bytes 8..15 are conv, token */
    out->conv = kite__get_le32(b);
    memcpy(out->token, b + 4, KITE__CTRL_TOKEN);
    out->reason = b[12];
    break;
  case KITE__CTRL_OPEN:
    memset(out->nonce, 0, KITE__CTRL_NONCE); /* trailing bytes, if any */
    break;
  case KITE__CTRL_OPENED:
    memset(out->nonce, 0, KITE__CTRL_NONCE);
    out->idle_timeout_ms = kite__get_le32(b);
    out->max_frame = kite__get_le32(b + 4);
    break;
  }
  return 0;
}

int kite__ctrl_encode(uint8_t *out, size_t cap, const kite__ctrl *c) {
  size_t size = kite__ctrl_size(c->type);
  if (size == 0)
    return KITE_EINVAL;
  if (cap < size)
    return KITE_EMSGSIZE;

  uint8_t *p = kite__put_le32(out, KITE__CTRL_MAGIC);
  *p++ = c->type;
  /* A nonzero version is written as given: REJECT reason 2 carries the
   * server's own version (section 2), and tests forge other versions. */
  *p++ = c->version ? c->version : KITE__PROTO_VERSION;
  p = kite__put_le16(p, 0); /* reserved */

  switch (c->type) {
  case KITE__CTRL_HELLO:
    p = put(p, c->nonce, KITE__CTRL_NONCE);
    break;
  case KITE__CTRL_CHALLENGE:
    p = put(p, c->nonce, KITE__CTRL_NONCE);
    p = put(p, c->cookie, KITE__CTRL_COOKIE);
    break;
  case KITE__CTRL_CONNECT:
    p = put(p, c->nonce, KITE__CTRL_NONCE);
    p = put(p, c->cookie, KITE__CTRL_COOKIE);
    p = kite__put_le16(p, c->mtu);
    p = kite__put_le16(p, c->rcv_wnd);
    break;
  case KITE__CTRL_ACCEPT:
    p = put(p, c->nonce, KITE__CTRL_NONCE);
    p = kite__put_le32(p, c->conv);
    p = put(p, c->token, KITE__CTRL_TOKEN);
    p = kite__put_le16(p, c->mtu);
    p = kite__put_le16(p, c->rcv_wnd);
    p = kite__put_le32(p, c->idle_timeout_ms);
    p = kite__put_le32(p, c->max_frame);
    break;
  case KITE__CTRL_REJECT:
    p = put(p, c->nonce, KITE__CTRL_NONCE);
    *p++ = c->reason;
    break;
  case KITE__CTRL_CLOSE:
    p = kite__put_le32(p, c->conv);
    p = put(p, c->token, KITE__CTRL_TOKEN);
    *p++ = c->reason;
    break;
  case KITE__CTRL_OPEN:
    break;
  case KITE__CTRL_OPENED:
    p = kite__put_le32(p, c->idle_timeout_ms);
    p = kite__put_le32(p, c->max_frame);
    break;
  }
  /* HELLO and CONNECT: the padding that keeps replies from amplifying. */
  memset(p, 0, size - (size_t)(p - out));
  return (int)size;
}

const char *kite__ctrl_strerror(int err) {
  switch (err) {
  case KITE__CTRL_EMAGIC: return "not a control packet";
  case KITE__CTRL_ESHORT: return "control packet too short";
  case KITE__CTRL_EVERSION: return "control packet of another version";
  case KITE__CTRL_ETYPE: return "control packet of a reserved type";
  }
  return "unknown";
}
