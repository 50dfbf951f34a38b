#include "proto/v2item.h"

#include "base/le.h"

#include <string.h>

#include "kcp/kcp_codec.h"
#include "kite/error.h"
#include "proto/frame.h"
#include "proto/v2.h"

/* KCP's value: whole segments of |conv| with cmd 81..84, filling it. */
static bool kcp_ok(const uint8_t *p, size_t len, uint32_t conv) {
  if (len < KITE_KCP_OVERHEAD)
    return false;
  while (len > 0) {
    if (len < KITE_KCP_OVERHEAD)
      return false;
    kite__kcp_hdr h;
    kite__kcp_hdr_decode(p, &h);
    if (h.conv != conv || h.cmd < KITE_KCP_CMD_PUSH ||
        h.cmd > KITE_KCP_CMD_WINS ||
        h.len > len - KITE_KCP_OVERHEAD)
      return false;
    p += KITE_KCP_OVERHEAD + h.len;
    len -= KITE_KCP_OVERHEAD + h.len;
  }
  return true;
}

static bool wrong_way(uint8_t type, bool from_server) {
  return (type == KITE__V2ITEM_PATH_CHALLENGE && !from_server) ||
         (type == KITE__V2ITEM_PATH_RESPONSE && from_server);
}

/* 0 or a kite__v2item_err for the value of one item. */
static uint8_t item_ok(uint8_t type, const uint8_t *v, size_t len,
                       const kite__v2item_rules *r) {
  switch (type) {
  case KITE__V2ITEM_KCP:
    return kcp_ok(v, len, r->conv) ? 0 : KITE__V2ITEM_EKCP;
  case KITE__V2ITEM_UNRELIABLE: {
    if (len < KITE__V2U_HDR)
      return KITE__V2ITEM_ELEN;
    uint16_t msg_id = kite__get_le16(v);
    size_t body = len - KITE__V2U_HDR;
    if ((v[2] & KITE__V2U_F_PONG) && msg_id != KITE__MSG_PING)
      return KITE__V2ITEM_EPONG;
    if (body > r->max_unreliable)
      return KITE__V2ITEM_EBODY;
    if (msg_id == KITE__MSG_PING && body > KITE__PING_BODY_MAX)
      return KITE__V2ITEM_EPING;
    return 0;
  }
  case KITE__V2ITEM_CLOSE:
    return len == 1 ? 0 : KITE__V2ITEM_ELEN;
  case KITE__V2ITEM_PATH_CHALLENGE:
  case KITE__V2ITEM_PATH_RESPONSE:
    return len == KITE__V2_PATH_DATA ? 0 : KITE__V2ITEM_ELEN;
  }
  return 0; /* PADDING and reserved types: any len */
}

int kite__v2item_check(const uint8_t *p, size_t len,
                       const kite__v2item_rules *r, kite__v2item_scan *out) {
  memset(out, 0, sizeof(*out));
  size_t off = 0;
  while (off < len) {
    if (len - off < KITE__V2ITEM_HDR) {
      out->why = KITE__V2ITEM_ETRUNC;
      return KITE__V2_EPROTO;
    }
    uint8_t type = p[off];
    size_t vlen = kite__get_le16(p + off + 1);
    const uint8_t *v = p + off + KITE__V2ITEM_HDR;
    if (vlen > len - off - KITE__V2ITEM_HDR) {
      out->why = KITE__V2ITEM_ETRUNC;
      return KITE__V2_EPROTO;
    }
    uint8_t why = item_ok(type, v, vlen, r);
    if (why != 0) {
      out->why = why;
      return KITE__V2_EPROTO;
    }
    off += KITE__V2ITEM_HDR + vlen;
    if (type > KITE__V2ITEM_PATH_RESPONSE)
      out->reserved++;
    else if (wrong_way(type, r->from_server))
      out->wrong_way++;
    else if (type == KITE__V2ITEM_CLOSE) {
      out->close = true;
      break; /* bytes after a CLOSE are not read */
    }
  }
  out->end = off;
  return 0;
}

void kite__v2item_iter_init(kite__v2item_iter *it, const uint8_t *p,
                            size_t end, bool from_server) {
  it->p = p;
  it->end = p + end;
  it->from_server = from_server;
}

bool kite__v2item_next(kite__v2item_iter *it, kite__v2item *out) {
  while ((size_t)(it->end - it->p) >= KITE__V2ITEM_HDR) {
    memset(out, 0, sizeof(*out));
    out->type = it->p[0];
    out->len = kite__get_le16(it->p + 1);
    out->value = it->p + KITE__V2ITEM_HDR;
    if ((size_t)(it->end - out->value) < out->len)
      return false; /* not a checked datagram: stop rather than overrun */
    it->p = out->value + out->len;
    switch (out->type) {
    case KITE__V2ITEM_KCP:
      return true;
    case KITE__V2ITEM_UNRELIABLE:
      out->msg_id = kite__get_le16(out->value);
      out->flags = out->value[2];
      out->seq = kite__get_le16(out->value + 3);
      out->body = out->value + KITE__V2U_HDR;
      out->body_len = (uint16_t)(out->len - KITE__V2U_HDR);
      return true;
    case KITE__V2ITEM_CLOSE:
      out->reason =
          out->value[0] <= KITE__CLOSE_MAX ? out->value[0] : 0;
      it->p = it->end; /* nothing after a CLOSE */
      return true;
    case KITE__V2ITEM_PATH_CHALLENGE:
    case KITE__V2ITEM_PATH_RESPONSE:
      if (!wrong_way(out->type, it->from_server))
        return true;
      break;
    }
  }
  return false;
}

int kite__v2item_put(uint8_t *out, size_t cap, uint8_t type,
                     const void *value, size_t len) {
  if (len > KITE__V2ITEM_MAX || cap < KITE__V2ITEM_HDR ||
      len > cap - KITE__V2ITEM_HDR)
    return KITE_EMSGSIZE;
  out[0] = type;
  kite__put_le16(out + 1, (uint16_t)len);
  if (len > 0)
    memmove(out + KITE__V2ITEM_HDR, value, len);
  return (int)(KITE__V2ITEM_HDR + len);
}

int kite__v2item_put_padding(uint8_t *out, size_t cap, size_t n) {
  if (n < KITE__V2ITEM_HDR)
    return KITE_EINVAL;
  size_t len = n - KITE__V2ITEM_HDR;
  if (len > KITE__V2ITEM_MAX || cap < n)
    return KITE_EMSGSIZE;
  out[0] = KITE__V2ITEM_PADDING;
  kite__put_le16(out + 1, (uint16_t)len);
  memset(out + KITE__V2ITEM_HDR, 0, len);
  return (int)n;
}

int kite__v2item_put_unreliable(uint8_t *out, size_t cap, uint16_t msg_id,
                                uint8_t flags, uint16_t seq, const void *body,
                                size_t len, uint16_t max_unreliable) {
  size_t total = KITE__V2ITEM_HDR + KITE__V2U_HDR + len;
  if (len > max_unreliable || len > KITE__V2ITEM_MAX - KITE__V2U_HDR ||
      cap < total)
    return KITE_EMSGSIZE;
  out[0] = KITE__V2ITEM_UNRELIABLE;
  uint8_t *p = kite__put_le16(out + 1, (uint16_t)(KITE__V2U_HDR + len));
  p = kite__put_le16(p, msg_id);
  *p++ = flags;
  p = kite__put_le16(p, seq);
  if (len > 0)
    memmove(p, body, len);
  return (int)total;
}

int kite__v2item_put_close(uint8_t *out, size_t cap, uint8_t reason) {
  return kite__v2item_put(out, cap, KITE__V2ITEM_CLOSE, &reason, 1);
}

int kite__v2item_put_path(uint8_t *out, size_t cap, uint8_t type,
                          const uint8_t data[KITE__V2_PATH_DATA]) {
  if (type != KITE__V2ITEM_PATH_CHALLENGE &&
      type != KITE__V2ITEM_PATH_RESPONSE)
    return KITE_EINVAL;
  return kite__v2item_put(out, cap, type, data, KITE__V2_PATH_DATA);
}

const char *kite__v2item_strerror(int why) {
  switch (why) {
  case KITE__V2ITEM_OK: return "ok";
  case KITE__V2ITEM_ETRUNC: return "item runs past the datagram";
  case KITE__V2ITEM_ELEN: return "item length not allowed for its type";
  case KITE__V2ITEM_EKCP: return "KCP item not whole segments of this conv";
  case KITE__V2ITEM_EPONG: return "pong flag on a msg_id other than 0";
  case KITE__V2ITEM_EPING: return "ping or pong body over 32 bytes";
  case KITE__V2ITEM_EBODY: return "unreliable body over max_unreliable";
  }
  return "unknown";
}
