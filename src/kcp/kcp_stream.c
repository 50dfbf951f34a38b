/*
 * The receive queue read as a byte stream (kcp.h). kite's frames are a byte
 * stream across KCP messages (PROTOCOL.md section 3), so the runtime reads
 * frames straight out of the queued segments: a frame that lies in one
 * segment reaches its handler without a copy, and a frame still arriving
 * costs no buffer beyond the KCP window it occupies.
 */
#include "kcp/kcp_internal.h"

#include <string.h>

size_t kite__kcp_readable(const kite__kcp *kcp) { return kcp->rcv_bytes; }

size_t kite__kcp_peek(const kite__kcp *kcp, void *out, size_t len) {
  uint8_t *p = out;
  size_t done = 0;
  size_t off = kcp->rcv_off;
  for (const kite__kseg *seg = kcp->rcv_head; seg && done < len;
       seg = seg->next, off = 0) {
    size_t n = seg->len - off;
    if (n > len - done)
      n = len - done;
    memcpy(p + done, seg->data + off, n);
    done += n;
  }
  return done;
}

const uint8_t *kite__kcp_peek_contig(const kite__kcp *kcp, size_t len) {
  const kite__kseg *seg = kcp->rcv_head;
  if (!seg || (size_t)(seg->len - kcp->rcv_off) < len)
    return NULL;
  return seg->data + kcp->rcv_off;
}

void kite__kcp_consume(kite__kcp *kcp, size_t len) {
  if (len > kcp->rcv_bytes)
    len = kcp->rcv_bytes;
  bool was_full = kcp->nrcv_que >= kcp->rcv_wnd;
  kcp->bytes_received += len;
  while (len > 0) {
    kite__kseg *seg = kcp->rcv_head;
    size_t left = (size_t)(seg->len - kcp->rcv_off);
    if (len < left) {
      kcp->rcv_off = (uint16_t)(kcp->rcv_off + len);
      kcp->rcv_bytes -= (uint32_t)len;
      break;
    }
    len -= left;
    kite__kcp_rcv_pop(kcp);
  }
  /* A zero-length segment at the head is read by reading past it. */
  while (kcp->rcv_head && kcp->rcv_head->len == kcp->rcv_off)
    kite__kcp_rcv_pop(kcp);
  kite__kcp_rcv_after_read(kcp, was_full);
}
