#include "kcp/kcp_codec.h"

#include "base/le.h"

uint8_t *kite__kcp_hdr_encode(uint8_t *p, const kite__kcp_hdr *h) {
  p = kite__put_le32(p, h->conv);
  *p++ = h->cmd;
  *p++ = h->frg;
  p = kite__put_le16(p, h->wnd);
  p = kite__put_le32(p, h->ts);
  p = kite__put_le32(p, h->sn);
  p = kite__put_le32(p, h->una);
  return kite__put_le32(p, h->len);
}

void kite__kcp_hdr_decode(const uint8_t *p, kite__kcp_hdr *h) {
  h->conv = kite__get_le32(p);
  h->cmd = p[4];
  h->frg = p[5];
  h->wnd = kite__get_le16(p + 6);
  h->ts = kite__get_le32(p + 8);
  h->sn = kite__get_le32(p + 12);
  h->una = kite__get_le32(p + 16);
  h->len = kite__get_le32(p + 20);
}
