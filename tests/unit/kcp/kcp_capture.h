/*
 * Test helper: a control block whose output lands in a list the test can
 * read, drop, or hand to another block. Header-only, tests only.
 */
#ifndef KITE_TEST_KCP_CAPTURE_H
#define KITE_TEST_KCP_CAPTURE_H

#include "kcp/kcp.h"
#include "kcp/kcp_codec.h"
#include "kite/error.h"

#include <stdlib.h>
#include <string.h>

#define CAPTURE_MAX 4096

typedef struct capture {
  size_t n;
  size_t len[CAPTURE_MAX];
  uint8_t *buf[CAPTURE_MAX];
  int dead_calls;
} capture;

static inline void capture_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                           void *user) {
  (void)kcp;
  capture *c = user;
  if (c->n == CAPTURE_MAX)
    abort();
  c->buf[c->n] = malloc(len);
  memcpy(c->buf[c->n], buf, len);
  c->len[c->n++] = len;
}

static inline void capture_dead(kite__kcp *kcp, void *user) {
  (void)kcp;
  ((capture *)user)->dead_calls++;
}

static const kite__kcp_ops capture_ops = {capture_output, capture_dead};

static inline void capture_clear(capture *c) {
  for (size_t i = 0; i < c->n; i++)
    free(c->buf[i]);
  c->n = 0;
}

/* Feeds every captured datagram to |to| and clears the capture. */
static inline void capture_deliver(capture *c, kite__kcp *to, uint32_t now) {
  for (size_t i = 0; i < c->n; i++)
    kite__kcp_input(to, c->buf[i], c->len[i], now);
  capture_clear(c);
}

/* Counts the segments of |cmd| across the captured datagrams. */
static inline int capture_count(const capture *c, uint8_t cmd) {
  int n = 0;
  for (size_t i = 0; i < c->n; i++) {
    size_t off = 0;
    while (off + KITE_KCP_OVERHEAD <= c->len[i]) {
      kite__kcp_hdr h;
      kite__kcp_hdr_decode(c->buf[i] + off, &h);
      if (h.cmd == cmd)
        n++;
      off += KITE_KCP_OVERHEAD + h.len;
    }
  }
  return n;
}

/* true when an ACK for |sn| was captured. */
static inline int capture_has_ack(const capture *c, uint32_t sn) {
  for (size_t i = 0; i < c->n; i++) {
    size_t off = 0;
    while (off + KITE_KCP_OVERHEAD <= c->len[i]) {
      kite__kcp_hdr h;
      kite__kcp_hdr_decode(c->buf[i] + off, &h);
      if (h.cmd == KITE_KCP_CMD_ACK && h.sn == sn)
        return 1;
      off += KITE_KCP_OVERHEAD + h.len;
    }
  }
  return 0;
}

/* Encodes one segment with |len| bytes of |fill| into |out|; returns size. */
static inline size_t make_seg(uint8_t *out, const kite__kcp_hdr *h, uint8_t fill) {
  kite__kcp_hdr_encode(out, h);
  memset(out + KITE_KCP_OVERHEAD, fill, h->len);
  return KITE_KCP_OVERHEAD + h->len;
}

#endif
