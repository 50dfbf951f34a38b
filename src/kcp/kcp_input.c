/*
 * Input: a datagram of segments from the peer. Every ACK and una is O(1) or
 * O(what it acknowledges), since the send window is a ring indexed by sn;
 * ikcp walks its send list for each ACK. Every refusal is counted in the
 * pool's stats; nothing here grows memory beyond the windows.
 */
#include "kcp/kcp_internal.h"

#include "base/time.h"
#include "kite/error.h"

#include <string.h>

/* RFC 6298 smoothing, in ikcp's integer form. */
static void rtt_sample(kite__kcp *kcp, int32_t rtt) {
  if (kcp->rx_srtt == 0) {
    kcp->rx_srtt = rtt;
    kcp->rx_rttval = rtt / 2;
  } else {
    int32_t delta = rtt - kcp->rx_srtt;
    if (delta < 0)
      delta = -delta;
    kcp->rx_rttval = (3 * kcp->rx_rttval + delta) / 4;
    kcp->rx_srtt = (7 * kcp->rx_srtt + rtt) / 8;
    if (kcp->rx_srtt < 1)
      kcp->rx_srtt = 1;
  }
  uint32_t var4 = 4 * (uint32_t)kcp->rx_rttval;
  uint32_t rto = (uint32_t)kcp->rx_srtt + (kcp->interval > var4 ? kcp->interval : var4);
  if (rto < kcp->rx_minrto)
    rto = kcp->rx_minrto;
  if (rto > KITE_KCP_RTO_MAX)
    rto = KITE_KCP_RTO_MAX;
  kcp->rx_rto = rto;
}

/* Slides snd_una over acknowledged slots; gives the ring back when empty. */
static void snd_advance(kite__kcp *kcp) {
  kite__kseg **ring = kcp->snd_ring;
  while (kcp->snd_una != kcp->snd_nxt && !ring[kite__kcp_slot(kcp, kcp->snd_una)])
    kcp->snd_una++;
  if (kcp->snd_una == kcp->snd_nxt) {
    kite__kcp_pool_ring_put(kcp->pool, ring);
    kcp->snd_ring = NULL;
  }
}

static void ack_one(kite__kcp *kcp, uint32_t sn) {
  uint32_t i = kite__kcp_slot(kcp, sn);
  kite__kcp_pool_seg_put(kcp->pool, kcp->snd_ring[i]);
  kcp->snd_ring[i] = NULL;
}

/* The peer has everything below |una|. */
static void parse_una(kite__kcp *kcp, uint32_t una) {
  if (kite__ms_diff(una, kcp->snd_una) <= 0)
    return; /* old news */
  if (kite__ms_diff(una, kcp->snd_nxt) > 0) {
    kcp->pool->stats.in_bad_una++; /* acknowledges what was never sent */
    return;
  }
  for (uint32_t sn = kcp->snd_una; sn != una; sn++)
    if (kcp->snd_ring[kite__kcp_slot(kcp, sn)])
      ack_one(kcp, sn);
  kcp->snd_una = una;
  snd_advance(kcp);
}

/* Returns false for an sn never sent (counted as bad) or acknowledged over a
 * window ago (a late duplicate, counted as stale): neither may move the RTT
 * estimate. */
static bool parse_ack(kite__kcp *kcp, uint32_t sn, uint32_t ts, uint32_t now) {
  if (kite__ms_diff(sn, kcp->snd_nxt) >= 0) {
    kcp->pool->stats.in_bad_ack++;
    return false;
  }
  if (kite__ms_diff(kcp->snd_una, sn) > (int32_t)kcp->snd_wnd) {
    kcp->pool->stats.in_stale_ack++;
    return false;
  }
  /* The ack echoes the send time of the copy it acknowledges, so even a
   * duplicate (whose segment the header's una already freed) is a fair RTT
   * sample, as in ikcp; a time from the future or older than the largest
   * rto is not. */
  int32_t rtt = kite__ms_diff(now, ts);
  if (rtt >= 0 && rtt <= KITE_KCP_RTO_MAX)
    rtt_sample(kcp, rtt);
  if (kite__ms_diff(sn, kcp->snd_una) >= 0 &&
      kcp->snd_ring[kite__kcp_slot(kcp, sn)]) {
    ack_one(kcp, sn);
    snd_advance(kcp);
  }
  return true;
}

/* The valid acks of one datagram, for the fast-resend count. */
#define ACK_BATCH 64
typedef struct ack_batch {
  uint32_t n;
  kite__kcp_ack a[ACK_BATCH];
} ack_batch;

/* Each ack counts one hint of loss for every hole below it that was sent no
 * later than the copy it acknowledges (kcp-go's conservative rule). ikcp
 * counts once per datagram, which with a peer's acks batched into one
 * datagram delays fast resend past the rto. Only the holes below the newest
 * ack are walked: O(holes x acks), where ikcp and kcp-go walk the whole send
 * window for every ack. */
static void parse_fastack(kite__kcp *kcp, ack_batch *b) {
  if (!kcp->snd_ring || b->n == 0) {
    b->n = 0;
    return;
  }
  uint32_t maxack = b->a[0].sn;
  for (uint32_t i = 1; i < b->n; i++)
    if (kite__ms_diff(b->a[i].sn, maxack) > 0)
      maxack = b->a[i].sn;
  for (uint32_t sn = kcp->snd_una; kite__ms_diff(sn, maxack) < 0; sn++) {
    kite__kseg *seg = kcp->snd_ring[kite__kcp_slot(kcp, sn)];
    if (!seg)
      continue;
    for (uint32_t i = 0; i < b->n; i++)
      if (kite__ms_diff(b->a[i].sn, sn) > 0 &&
          kite__ms_diff(seg->ts, b->a[i].ts) <= 0)
        seg->fastack++;
    if (kcp->fast_resend && seg->fastack >= kcp->fast_resend)
      kcp->flags |= KCP_F_FAST_DUE;
  }
  b->n = 0;
}

static void ack_push(kite__kcp *kcp, uint32_t sn, uint32_t ts) {
  uint32_t cap = kcp->pool->mss / sizeof(kite__kcp_ack);
  if (!kcp->acks) {
    kcp->acks = kite__kcp_pool_seg_get(kcp->pool, true);
    if (!kcp->acks) {
      kcp->pool->stats.acks_dropped++;
      return;
    }
  }
  if (kcp->nacks >= cap) {
    kcp->pool->stats.acks_dropped++; /* the peer will retransmit */
    return;
  }
  kite__kcp_ack a = {sn, ts};
  memcpy(kcp->acks->data + kcp->nacks * sizeof(a), &a, sizeof(a));
  kcp->nacks++;
}

static void parse_push(kite__kcp *kcp, const kite__kcp_hdr *h,
                       const uint8_t *data) {
  kite__kcp_pool *pool = kcp->pool;
  int32_t ahead = kite__ms_diff(h->sn, kcp->rcv_nxt);
  if (ahead >= kcp->rcv_wnd || ahead < -(int32_t)kcp->rcv_wnd) {
    pool->stats.in_out_of_window++;
    return;
  }
  if (ahead < 0) { /* already delivered: our ack was lost */
    ack_push(kcp, h->sn, h->ts);
    return;
  }
  kcp->segs_received++;
  uint32_t slot = kite__kcp_slot(kcp, h->sn);
  if (kcp->rcv_ring && kcp->rcv_ring[slot]) { /* buffered already */
    ack_push(kcp, h->sn, h->ts);
    return;
  }
  /* In-order data may use the reserve; out-of-order data may not, so it is
   * the first refused under pressure (and, refused, never acknowledged). */
  bool in_order = ahead == 0 && kcp->nrcv_que < kcp->rcv_wnd;
  kite__kseg *seg = kite__kcp_pool_seg_get(pool, in_order);
  if (!seg) {
    pool->stats.in_no_buffer++;
    return;
  }
  seg->sn = h->sn;
  seg->frg = h->frg;
  seg->len = (uint16_t)h->len;
  memcpy(seg->data, data, h->len);
  if (in_order && !kcp->rcv_ring) { /* the common case: straight to queue */
    kite__kcp_deliver(kcp, seg);
  } else {
    if (!kcp->rcv_ring && !(kcp->rcv_ring = kite__kcp_pool_ring_get(pool))) {
      kite__kcp_pool_seg_put(pool, seg);
      pool->stats.in_no_buffer++;
      return;
    }
    kcp->rcv_ring[slot] = seg;
    kcp->nrcv_buf++;
    kite__kcp_rcv_advance(kcp);
  }
  ack_push(kcp, h->sn, h->ts);
}

/* ikcp's congestion window growth when una moves (unless nocwnd). */
static void cwnd_grow(kite__kcp *kcp) {
  if ((kcp->flags & KCP_F_NOCWND) || kcp->cwnd >= kcp->rmt_wnd)
    return;
  uint32_t mss = kcp->mss;
  if (kcp->cwnd < kcp->ssthresh) {
    kcp->cwnd++;
    kcp->incr += mss;
  } else {
    if (kcp->incr < mss)
      kcp->incr = mss;
    kcp->incr += (mss * mss) / kcp->incr + (mss / 16);
    if ((kcp->cwnd + 1) * mss <= kcp->incr)
      kcp->cwnd = (kcp->incr + mss - 1) / mss;
  }
  if (kcp->cwnd > kcp->rmt_wnd) {
    kcp->cwnd = kcp->rmt_wnd;
    kcp->incr = kcp->rmt_wnd * mss;
  }
}

int kite__kcp_input(kite__kcp *kcp, const uint8_t *data, size_t len,
                    uint32_t now_ms) {
  kite__kcp_pool *pool = kcp->pool;
  if (kcp->flags & KCP_F_DEAD) {
    pool->stats.in_dead++;
    return KITE_EDEAD;
  }
  if (len < KITE_KCP_OVERHEAD) {
    pool->stats.in_short++;
    return KITE_EPROTO;
  }
  uint32_t prev_una = kcp->snd_una;
  ack_batch acks;
  acks.n = 0;
  int rc = 0;

  while (len >= KITE_KCP_OVERHEAD) {
    kite__kcp_hdr h;
    kite__kcp_hdr_decode(data, &h);
    data += KITE_KCP_OVERHEAD;
    len -= KITE_KCP_OVERHEAD;
    if (h.conv != kcp->conv) {
      pool->stats.in_bad_conv++;
      rc = KITE_EPROTO;
      break;
    }
    if (h.len > len || h.len > kcp->mss) {
      pool->stats.in_bad_len++;
      rc = KITE_EPROTO;
      break;
    }
    if (h.cmd < KITE_KCP_CMD_PUSH || h.cmd > KITE_KCP_CMD_WINS) {
      pool->stats.in_bad_cmd++;
      rc = KITE_EPROTO;
      break;
    }
    /* A fragment count the receive queue could never hold would stall the
     * session forever: refuse it before it takes a buffer or an ack. */
    if (h.cmd == KITE_KCP_CMD_PUSH &&
        (h.frg >= kcp->rcv_wnd || h.frg >= KITE_KCP_FRAGMENTS_MAX)) {
      pool->stats.in_bad_frg++;
      rc = KITE_EPROTO;
      break;
    }
    kcp->rmt_wnd = h.wnd;
    parse_una(kcp, h.una);

    switch (h.cmd) {
    case KITE_KCP_CMD_ACK:
      if (parse_ack(kcp, h.sn, h.ts, now_ms)) {
        acks.a[acks.n++] = (kite__kcp_ack){h.sn, h.ts};
        if (acks.n == ACK_BATCH)
          parse_fastack(kcp, &acks);
      }
      break;
    case KITE_KCP_CMD_PUSH:
      parse_push(kcp, &h, data);
      break;
    case KITE_KCP_CMD_WASK:
      kcp->flags |= KCP_F_ASK_TELL;
      break;
    default: /* WINS: the window was taken from the header above */
      break;
    }
    data += h.len;
    len -= h.len;
  }
  if (rc == 0 && len > 0) { /* trailing bytes shorter than a header */
    pool->stats.in_short++;
    rc = KITE_EPROTO;
  }

  parse_fastack(kcp, &acks);
  if (kite__ms_diff(kcp->snd_una, prev_una) > 0) {
    cwnd_grow(kcp);
    kcp->progress_ts = now_ms;
  }
  return rc;
}
