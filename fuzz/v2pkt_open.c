/*
 * libFuzzer target: protected datagrams (proto/v2pkt.h) and the items
 * inside (proto/v2item.h).
 *
 * Input: flags u8 (bit 0: the datagram comes from the server), then
 * max_unreliable u16, pn u64 (taken below 2^48), then the items' plaintext.
 * The plaintext is sealed under a fixed key, so that the item parser sees
 * whatever the fuzzer makes, as it would after a tag verified:
 *   - seal then peek and open give back conv, pn and the plaintext; a
 *     flipped bit anywhere, or another pn, never opens; the raw input as a
 *     datagram never opens either;
 *   - kite__v2item_check() returns 0 or EPROTO with a reason; it agrees
 *     with model(), section 5 written out again as plainly as possible;
 *   - after a 0, the iterator hands out only items inside the checked
 *     bytes, of the types it should, a CLOSE last, and as many as the
 *     model counted.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "proto/v2.h"
#include "proto/v2item.h"
#include "proto/v2pkt.h"

#define CONV 0x12345601u

static const uint8_t key[32] = {0x24, 0x1b, 0x35};

typedef struct model_out {
  int rc;
  size_t end, handed; /* bytes read; items the iterator should hand out */
  uint32_t reserved, wrong_way;
} model_out;

static bool model_kcp(const uint8_t *v, size_t len) {
  if (len < 24)
    return false;
  size_t off = 0;
  while (off < len) {
    if (len - off < 24)
      return false;
    uint32_t seg_len = kite__get_le32(v + off + 20);
    if (kite__get_le32(v + off) != CONV || v[off + 4] < 81 ||
        v[off + 4] > 84 || seg_len > len - off - 24)
      return false;
    off += 24 + seg_len;
  }
  return true;
}

static model_out model(const uint8_t *p, size_t len, uint16_t max_u,
                       bool from_server) {
  model_out m = {0, 0, 0, 0, 0};
  size_t off = 0;
  while (off < len) {
    if (off + 3 > len) {
      m.rc = KITE__V2_EPROTO;
      return m;
    }
    uint8_t type = p[off];
    size_t vlen = (size_t)p[off + 1] | (size_t)p[off + 2] << 8;
    if (off + 3 + vlen > len) {
      m.rc = KITE__V2_EPROTO;
      return m;
    }
    const uint8_t *v = p + off + 3;
    bool ok = true;
    if (type == 1)
      ok = model_kcp(v, vlen);
    if (type == 2) {
      uint16_t id = vlen >= 5 ? (uint16_t)(v[0] | v[1] << 8) : 0;
      ok = vlen >= 5 && (!(v[2] & 2) || id == 0) && vlen - 5 <= max_u &&
           (id != 0 || vlen - 5 <= 32);
    }
    if (type == 3)
      ok = vlen == 1;
    if (type == 4 || type == 5)
      ok = vlen == 8;
    if (!ok) {
      m.rc = KITE__V2_EPROTO;
      return m;
    }
    off += 3 + vlen;
    if (type >= 6)
      m.reserved++;
    else if ((type == 4 && !from_server) || (type == 5 && from_server))
      m.wrong_way++;
    else if (type != 0)
      m.handed++;
    if (type == 3)
      break;
  }
  m.end = off;
  return m;
}

static uint8_t dg[70000], pt[70000];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (kite__v2_init() != 0)
    abort();
  /* The raw input as a datagram: at most a size refusal, never opens. */
  int raw = kite__v2pkt_open(pt, data, size, key);
  if (raw != KITE__V2_ESIZE && raw != KITE__V2_EAUTH)
    abort();
  if (size < 11)
    return 0;
  bool from_server = data[0] & 1;
  uint16_t max_u = kite__get_le16(data + 1);
  uint64_t pn = kite__get_le64(data + 3) & (KITE__V2_PN_LIMIT - 1);
  const uint8_t *items = data + 11;
  size_t len = size - 11;
  if (len < KITE__V2PKT_ITEMS_MIN || len > 65535)
    return 0;

  int n = kite__v2pkt_seal(dg, sizeof(dg), CONV, pn, key, items, len);
  if (n != (int)len + 28)
    abort();
  uint32_t conv;
  uint64_t got_pn;
  if (kite__v2pkt_peek(dg, (size_t)n, &conv, &got_pn) != 0 || conv != CONV ||
      got_pn != pn)
    abort();
  if (kite__v2pkt_open(pt, dg, (size_t)n, key) != (int)len ||
      memcmp(pt, items, len) != 0)
    abort();
  size_t bit = (size_t)(pn % ((uint64_t)n * 8));
  dg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  if (kite__v2pkt_open(pt, dg, (size_t)n, key) != KITE__V2_EAUTH)
    abort();
  dg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  kite__put_le64(dg + 4, pn ^ 1);
  if (kite__v2pkt_open(pt, dg, (size_t)n, key) != KITE__V2_EAUTH)
    abort();

  kite__v2item_rules r = {.conv = CONV, .max_unreliable = max_u,
                          .from_server = from_server};
  kite__v2item_scan s;
  int rc = kite__v2item_check(items, len, &r, &s);
  model_out m = model(items, len, max_u, from_server);
  if (rc != m.rc)
    abort();
  if (rc != 0) {
    if (s.why == 0)
      abort();
    return 0;
  }
  if (s.why != 0 || s.end != m.end || s.reserved != m.reserved ||
      s.wrong_way != m.wrong_way)
    abort();
  kite__v2item_iter it;
  kite__v2item item;
  kite__v2item_iter_init(&it, items, s.end, from_server);
  size_t handed = 0;
  bool closed = false;
  while (kite__v2item_next(&it, &item)) {
    if (closed || item.value < items + 3 ||
        item.value + item.len > items + s.end)
      abort();
    switch (item.type) {
    case KITE__V2ITEM_KCP:
      if (item.len < 24)
        abort();
      break;
    case KITE__V2ITEM_UNRELIABLE:
      if (item.body_len > max_u || item.body != item.value + 5 ||
          item.body_len + 5u != item.len)
        abort();
      break;
    case KITE__V2ITEM_CLOSE:
      if (item.reason > KITE__CLOSE_MAX || !s.close)
        abort();
      closed = true;
      break;
    case KITE__V2ITEM_PATH_CHALLENGE:
      if (!from_server)
        abort();
      break;
    case KITE__V2ITEM_PATH_RESPONSE:
      if (from_server)
        abort();
      break;
    default:
      abort();
    }
    handed++;
  }
  if (handed != m.handed || closed != s.close)
    abort();
  return 0;
}
