/*
 * The control block, shared by the engine's own files only (kcp.c,
 * kcp_input.c, kcp_flush.c). Fields are ordered and sized to keep an idle
 * block small: rings and the ack list are taken from the pool on demand.
 */
#ifndef KITE_KCP_INTERNAL_H
#define KITE_KCP_INTERNAL_H

#include "kcp/kcp.h"

#define KITE_KCP_RTO_NODELAY_MIN 30
#define KITE_KCP_RTO_MIN 100
#define KITE_KCP_RTO_DEFAULT 200
#define KITE_KCP_RTO_MAX 60000
/* Retransmissions at least, in a dead-link span: caps the backoff. */
#define KITE_KCP_DEAD_LINK_TRIES 8
#define KITE_KCP_PROBE_INIT 7000
#define KITE_KCP_PROBE_LIMIT 120000
#define KITE_KCP_THRESH_INIT 2
#define KITE_KCP_THRESH_MIN 2

enum {
  KCP_F_NOCWND = 1 << 0,
  KCP_F_DEAD = 1 << 1,
  KCP_F_ASK_SEND = 1 << 2, /* send WASK at next flush */
  KCP_F_ASK_TELL = 1 << 3, /* send WINS at next flush */
  KCP_F_FAST_DUE = 1 << 4, /* a segment reached the fast-resend count */
  KCP_F_BUSY = 1 << 5,     /* data outstanding since progress_ts */
};

/* Acks waiting for the next flush live in one pooled chunk, as pairs. */
typedef struct kite__kcp_ack {
  uint32_t sn, ts;
} kite__kcp_ack;

struct kite__kcp {
  uint32_t conv;
  uint16_t mtu, mss;
  uint16_t snd_wnd, rcv_wnd, rmt_wnd;
  uint8_t nodelay, fast_resend, fast_limit, max_frags;
  uint16_t flags;
  uint16_t interval;
  uint16_t snd_queue_max;
  uint16_t nsnd_que, nrcv_que, nrcv_buf, nacks;
  uint16_t rcv_off;   /* bytes of the head segment already read as stream */
  uint32_t rcv_bytes; /* unread bytes in the receive queue */

  uint32_t snd_una, snd_nxt, rcv_nxt;
  uint32_t cwnd, incr, ssthresh;
  int32_t rx_srtt, rx_rttval;
  uint32_t rx_rto, rx_minrto;
  uint32_t ts_probe, probe_wait;
  uint32_t progress_ts, dead_link_ms;
  uint32_t resend_due; /* earliest resendts in flight (may be early) */

  kite__kseg *snd_head, *snd_tail; /* waiting to enter the window */
  kite__kseg *rcv_head, *rcv_tail; /* in order, waiting for recv */
  kite__kseg **snd_ring;           /* in flight, by sn; NULL when none */
  kite__kseg **rcv_ring;           /* out of order, by sn; NULL when none */
  kite__kseg *acks;                /* pending acks; NULL when none */

  kite__kcp_pool *pool;
  const kite__kcp_ops *ops;
  void *user;

  uint32_t retransmits, fast_retransmits;
  uint64_t segs_sent, segs_received, bytes_sent, bytes_received;
};

static inline uint32_t kite__kcp_slot(const kite__kcp *kcp, uint32_t sn) {
  return sn & kcp->pool->ring_mask;
}

/* The free receive window advertised to the peer. */
static inline uint16_t kite__kcp_wnd_unused(const kite__kcp *kcp) {
  return kcp->nrcv_que < kcp->rcv_wnd
             ? (uint16_t)(kcp->rcv_wnd - kcp->nrcv_que)
             : 0;
}

/* Appends the next in-order segment (sn == rcv_nxt) to the receive queue. */
static inline void kite__kcp_deliver(kite__kcp *kcp, kite__kseg *seg) {
  seg->next = NULL;
  if (kcp->rcv_tail)
    kcp->rcv_tail->next = seg;
  else
    kcp->rcv_head = seg;
  kcp->rcv_tail = seg;
  kcp->nrcv_que++;
  kcp->rcv_bytes += seg->len;
  kcp->rcv_nxt++;
}

/* Frees the head segment of the receive queue (fully read). */
void kite__kcp_rcv_pop(kite__kcp *kcp);

/* After reading: refill the queue from the ring, and if the peer saw a
 * closed window (|was_full|), tell it at once that it opened. */
void kite__kcp_rcv_after_read(kite__kcp *kcp, bool was_full);

/* Moves contiguous segments from the receive ring to the receive queue,
 * while the queue has room; gives the ring back once it is empty. */
void kite__kcp_rcv_advance(kite__kcp *kcp);

/* true when the windows let one more segment enter flight. */
bool kite__kcp_window_open(const kite__kcp *kcp);

#endif
