/*
 * Flush: everything the block owes the wire, packed into as few datagrams
 * as the mtu allows (acks first, then probes, then data), plus the dead-link
 * verdict. The walk over the send window is O(segments in flight), the same
 * work ikcp does per flush; what ikcp also does per ACK, kite does not.
 */
#include "kcp/kcp_internal.h"

#include "base/time.h"

#include <string.h>

typedef struct out_buf {
  kite__kcp *kcp;
  uint8_t *base, *p;
} out_buf;

static void out_emit(out_buf *o) {
  if (o->p > o->base) {
    o->kcp->ops->output(o->kcp, o->base, (size_t)(o->p - o->base),
                        o->kcp->user);
    o->p = o->base;
  }
}

/* Room for |need| more bytes, emitting what is buffered first if needed. */
static void out_reserve(out_buf *o, size_t need) {
  if ((size_t)(o->p - o->base) + need > o->kcp->mtu)
    out_emit(o);
}

static void out_header(out_buf *o, const kite__kcp_hdr *h) {
  out_reserve(o, KITE_KCP_OVERHEAD + h->len);
  o->p = kite__kcp_hdr_encode(o->p, h);
}

static void flush_acks(kite__kcp *kcp, out_buf *o, kite__kcp_hdr *h) {
  if (!kcp->acks)
    return;
  h->cmd = KITE_KCP_CMD_ACK;
  for (uint32_t i = 0; i < kcp->nacks; i++) {
    kite__kcp_ack a;
    memcpy(&a, kcp->acks->data + i * sizeof(a), sizeof(a));
    h->sn = a.sn;
    h->ts = a.ts;
    out_header(o, h);
  }
  kcp->nacks = 0;
  kite__kcp_pool_seg_put(kcp->pool, kcp->acks);
  kcp->acks = NULL;
}

/* Probe a zero window only while data waits for it (ikcp probes whenever the
 * window is zero, which wakes idle blocks for nothing). */
static void flush_probes(kite__kcp *kcp, out_buf *o, kite__kcp_hdr *h,
                         uint32_t now) {
  if (kcp->rmt_wnd == 0 && kcp->snd_head) {
    if (kcp->probe_wait == 0) {
      kcp->probe_wait = KITE_KCP_PROBE_INIT;
      kcp->ts_probe = now + kcp->probe_wait;
    } else if (kite__ms_reached(now, kcp->ts_probe)) {
      kcp->probe_wait += kcp->probe_wait / 2;
      if (kcp->probe_wait > KITE_KCP_PROBE_LIMIT)
        kcp->probe_wait = KITE_KCP_PROBE_LIMIT;
      kcp->ts_probe = now + kcp->probe_wait;
      kcp->flags |= KCP_F_ASK_SEND;
    }
  } else {
    kcp->ts_probe = 0;
    kcp->probe_wait = 0;
  }
  h->sn = 0;
  h->ts = 0;
  if (kcp->flags & KCP_F_ASK_SEND) {
    h->cmd = KITE_KCP_CMD_WASK;
    out_header(o, h);
  }
  if (kcp->flags & KCP_F_ASK_TELL) {
    h->cmd = KITE_KCP_CMD_WINS;
    out_header(o, h);
  }
  kcp->flags &= (uint16_t)~(KCP_F_ASK_SEND | KCP_F_ASK_TELL);
}

/* Moves messages from the send queue into the window as far as it allows. */
static void fill_window(kite__kcp *kcp, uint32_t now) {
  while (kcp->snd_head && kite__kcp_window_open(kcp)) {
    if (!kcp->snd_ring && !(kcp->snd_ring = kite__kcp_pool_ring_get(kcp->pool)))
      return; /* out of memory: retried at the next flush */
    kite__kseg *seg = kcp->snd_head;
    kcp->snd_head = seg->next;
    if (!kcp->snd_head)
      kcp->snd_tail = NULL;
    kcp->nsnd_que--;
    seg->next = NULL;
    seg->sn = kcp->snd_nxt++;
    seg->ts = now;
    seg->resendts = now;
    seg->rto = kcp->rx_rto;
    seg->fastack = 0;
    seg->xmit = 0;
    kcp->snd_ring[kite__kcp_slot(kcp, seg->sn)] = seg;
  }
}

/* The wait before a segment's next retransmission. Normal mode doubles it
 * (ikcp); nodelay adds half the current rto each time (kcp-go's rule, and
 * ikcp's nodelay 2), not ikcp's 1.5x per try: growing geometrically, a
 * segment caught in a 3 s outage waits seconds between tries once the link
 * is back, and on a lossy link a few unlucky tries then outlast
 * dead_link_ms while the peer is alive (tests/sim/test_kcp_outage.c). And
 * in every mode the wait stays under an eighth of dead_link_ms, so that a
 * link is declared dead only after at least eight tries in its span. */
static uint32_t backoff(const kite__kcp *kcp, uint32_t rto) {
  if (kcp->nodelay == 0)
    rto += rto > kcp->rx_rto ? rto : kcp->rx_rto;
  else
    rto += kcp->rx_rto / 2;
  uint32_t cap = kcp->dead_link_ms / KITE_KCP_DEAD_LINK_TRIES;
  if (cap > KITE_KCP_RTO_MAX)
    cap = KITE_KCP_RTO_MAX;
  if (cap < kcp->rx_rto)
    cap = kcp->rx_rto;
  return rto < cap ? rto : cap;
}

static void flush_data(kite__kcp *kcp, out_buf *o, kite__kcp_hdr *h,
                       uint32_t now) {
  if (!kcp->snd_ring)
    return;
  uint32_t resent = kcp->fast_resend ? kcp->fast_resend : UINT32_MAX;
  uint32_t rtomin = kcp->nodelay ? 0 : kcp->rx_rto >> 3;
  bool changed = false, lost = false;
  uint32_t due = now + KITE_KCP_RTO_MAX;
  h->cmd = KITE_KCP_CMD_PUSH;
  for (uint32_t sn = kcp->snd_una; sn != kcp->snd_nxt; sn++) {
    kite__kseg *seg = kcp->snd_ring[kite__kcp_slot(kcp, sn)];
    if (!seg)
      continue;
    bool send = true;
    if (seg->xmit == 0) {
      seg->rto = kcp->rx_rto;
      seg->resendts = now + seg->rto + rtomin;
    } else if (kite__ms_reached(now, seg->resendts)) {
      seg->rto = backoff(kcp, seg->rto);
      seg->resendts = now + seg->rto;
      kcp->retransmits++;
      lost = true;
    } else if (seg->fastack >= resent &&
               (kcp->fast_limit == 0 || seg->xmit <= kcp->fast_limit)) {
      seg->fastack = 0;
      seg->resendts = now + seg->rto;
      kcp->fast_retransmits++;
      changed = true;
    } else {
      send = false;
    }
    if (send) {
      seg->xmit++;
      seg->ts = now;
      h->frg = seg->frg;
      h->ts = now;
      h->sn = seg->sn;
      h->len = seg->len;
      out_header(o, h);
      memcpy(o->p, seg->data, seg->len);
      o->p += seg->len;
      kcp->segs_sent++;
    }
    due = kite__ms_min(due, seg->resendts);
  }
  h->frg = 0;
  h->len = 0;
  kcp->resend_due = due;

  /* ikcp's congestion response: halve on fast resend, collapse on loss. */
  if (changed) {
    uint32_t inflight = kcp->snd_nxt - kcp->snd_una;
    kcp->ssthresh = inflight / 2;
    if (kcp->ssthresh < KITE_KCP_THRESH_MIN)
      kcp->ssthresh = KITE_KCP_THRESH_MIN;
    kcp->cwnd = kcp->ssthresh + resent;
    kcp->incr = kcp->cwnd * kcp->mss;
  }
  if (lost) {
    kcp->ssthresh = kcp->cwnd / 2;
    if (kcp->ssthresh < KITE_KCP_THRESH_MIN)
      kcp->ssthresh = KITE_KCP_THRESH_MIN;
    kcp->cwnd = 1;
    kcp->incr = kcp->mss;
  }
}

/* Dead link: data outstanding and snd_una stuck for dead_link_ms. The clock
 * starts when data first waits (here) and restarts whenever una moves
 * (kcp_input.c). */
static void check_progress(kite__kcp *kcp, uint32_t now) {
  bool outstanding = kcp->snd_una != kcp->snd_nxt || kcp->snd_head;
  if (!outstanding) {
    kcp->flags &= (uint16_t)~KCP_F_BUSY;
  } else if (!(kcp->flags & KCP_F_BUSY)) {
    kcp->flags |= KCP_F_BUSY;
    kcp->progress_ts = now;
  } else if (kite__ms_diff(now, kcp->progress_ts) >= (int32_t)kcp->dead_link_ms) {
    kcp->flags |= KCP_F_DEAD;
    if (kcp->ops->dead)
      kcp->ops->dead(kcp, kcp->user);
  }
}

void kite__kcp_flush(kite__kcp *kcp, uint32_t now_ms) {
  if (kcp->flags & KCP_F_DEAD)
    return;
  out_buf o = {kcp, kcp->pool->flush_buf, kcp->pool->flush_buf};
  kite__kcp_hdr h = {
      .conv = kcp->conv,
      .wnd = kite__kcp_wnd_unused(kcp),
      .una = kcp->rcv_nxt,
  };
  flush_acks(kcp, &o, &h);
  flush_probes(kcp, &o, &h, now_ms);
  fill_window(kcp, now_ms);
  flush_data(kcp, &o, &h, now_ms);
  /* Cleared here, not in flush_data: una may have emptied the window since
   * the hint was counted, and a stale hint would keep the block due. */
  kcp->flags &= (uint16_t)~KCP_F_FAST_DUE;
  out_emit(&o);
  check_progress(kcp, now_ms);
}
