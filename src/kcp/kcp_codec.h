/*
 * The KCP segment header (PROTOCOL.md section 3): 24 bytes, little-endian,
 * exactly as ikcp and kcp-go lay it out.
 */
#ifndef KITE_KCP_CODEC_H
#define KITE_KCP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "base/le.h"

#define KITE_KCP_OVERHEAD 24

enum {
  KITE_KCP_CMD_PUSH = 81, /* data */
  KITE_KCP_CMD_ACK = 82,  /* acknowledgement of one sn */
  KITE_KCP_CMD_WASK = 83, /* window probe: "tell me your window" */
  KITE_KCP_CMD_WINS = 84, /* window size answer */
};

typedef struct kite__kcp_hdr {
  uint32_t conv;
  uint8_t cmd;
  uint8_t frg; /* fragments that follow this one in its message */
  uint16_t wnd; /* sender's free receive window, in segments */
  uint32_t ts;  /* send time (PUSH) or the echoed send time (ACK) */
  uint32_t sn;
  uint32_t una; /* every sn below this has been received */
  uint32_t len; /* bytes of data after the header */
} kite__kcp_hdr;

/* Writes |h| at |p| (KITE_KCP_OVERHEAD bytes); returns p + 24. */
uint8_t *kite__kcp_hdr_encode(uint8_t *p, const kite__kcp_hdr *h);

/* Reads a header from |p|, which must hold KITE_KCP_OVERHEAD bytes. Does no
 * validation: the caller checks cmd, len and the rest against its state. */
void kite__kcp_hdr_decode(const uint8_t *p, kite__kcp_hdr *h);

/* The conv of a datagram that starts with a segment (its first 4 bytes). */
static inline uint32_t kite__kcp_peek_conv(const uint8_t *p) {
  return kite__get_le32(p);
}

#endif
