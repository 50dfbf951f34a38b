#include "kcp/kcp_codec.h"

static inline uint8_t *put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  return p + 2;
}

static inline uint8_t *put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
  return p + 4;
}

static inline uint16_t get16(const uint8_t *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

uint8_t *kite__kcp_hdr_encode(uint8_t *p, const kite__kcp_hdr *h) {
  p = put32(p, h->conv);
  *p++ = h->cmd;
  *p++ = h->frg;
  p = put16(p, h->wnd);
  p = put32(p, h->ts);
  p = put32(p, h->sn);
  p = put32(p, h->una);
  return put32(p, h->len);
}

void kite__kcp_hdr_decode(const uint8_t *p, kite__kcp_hdr *h) {
  h->conv = get32(p);
  h->cmd = p[4];
  h->frg = p[5];
  h->wnd = get16(p + 6);
  h->ts = get32(p + 8);
  h->sn = get32(p + 12);
  h->una = get32(p + 16);
  h->len = get32(p + 20);
}
