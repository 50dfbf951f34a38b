/*
 * Control block lifecycle, the application side (send, recv) and the
 * schedule (next_due). Input is in kcp_input.c, output in kcp_flush.c.
 */
#include "kcp/kcp_internal.h"

#include "base/time.h"
#include "kite/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void kite__kcp_config_default(kite__kcp_config *cfg) {
  cfg->mtu = 1400;
  cfg->snd_wnd = 128;
  cfg->rcv_wnd = 128;
  cfg->peer_rcv_wnd = 128;
  cfg->interval_ms = 10;
  cfg->nodelay = 1;
  cfg->fast_resend = 2;
  cfg->fast_limit = 5;
  cfg->nocwnd = true;
  cfg->dead_link_ms = 15000;
  cfg->snd_queue_max = 1024;
}

int kite__kcp_create(kite__kcp **out, uint32_t conv,
                     const kite__kcp_config *cfg, kite__kcp_pool *pool,
                     const kite__kcp_ops *ops, void *user) {
  *out = NULL;
  if (!pool || !ops || !ops->output || cfg->mtu < 50 ||
      cfg->mtu > pool->cfg.mtu || cfg->snd_wnd < 1 || cfg->rcv_wnd < 1 ||
      cfg->peer_rcv_wnd < 1 || cfg->snd_wnd > pool->cfg.wnd_max ||
      cfg->rcv_wnd > pool->cfg.wnd_max || cfg->interval_ms < 1 ||
      cfg->interval_ms > 5000 || cfg->nodelay > 2 || cfg->fast_resend > 255 ||
      cfg->fast_limit > 255 || cfg->dead_link_ms < 1 ||
      cfg->snd_queue_max < 1 || cfg->snd_queue_max > 65535)
    return KITE_EINVAL;
  kite__kcp *kcp = calloc(1, sizeof(*kcp));
  if (!kcp)
    return KITE_ENOMEM;
  kcp->conv = conv;
  kcp->mtu = (uint16_t)cfg->mtu;
  kcp->mss = (uint16_t)(cfg->mtu - KITE_KCP_OVERHEAD);
  kcp->snd_wnd = (uint16_t)cfg->snd_wnd;
  kcp->rcv_wnd = (uint16_t)cfg->rcv_wnd;
  kcp->rmt_wnd = (uint16_t)cfg->peer_rcv_wnd;
  kcp->max_frags = (uint8_t)(cfg->peer_rcv_wnd < KITE_KCP_FRAGMENTS_MAX
                                 ? cfg->peer_rcv_wnd
                                 : KITE_KCP_FRAGMENTS_MAX);
  kcp->nodelay = (uint8_t)cfg->nodelay;
  kcp->fast_resend = (uint8_t)cfg->fast_resend;
  kcp->fast_limit = (uint8_t)cfg->fast_limit;
  kcp->flags = cfg->nocwnd ? KCP_F_NOCWND : 0;
  kcp->interval = (uint16_t)cfg->interval_ms;
  kcp->snd_queue_max = (uint16_t)cfg->snd_queue_max;
  kcp->dead_link_ms = cfg->dead_link_ms;
  kcp->cwnd = 1;
  kcp->incr = kcp->mss;
  kcp->ssthresh = KITE_KCP_THRESH_INIT;
  kcp->rx_rto = KITE_KCP_RTO_DEFAULT;
  kcp->rx_minrto = cfg->nodelay ? KITE_KCP_RTO_NODELAY_MIN : KITE_KCP_RTO_MIN;
  kcp->pool = pool;
  kcp->ops = ops;
  kcp->user = user;
  *out = kcp;
  return 0;
}

static void free_list(kite__kcp_pool *pool, kite__kseg *seg) {
  while (seg) {
    kite__kseg *next = seg->next;
    kite__kcp_pool_seg_put(pool, seg);
    seg = next;
  }
}

static void free_ring(kite__kcp *kcp, kite__kseg **ring) {
  if (!ring)
    return;
  for (uint32_t i = 0; i <= kcp->pool->ring_mask; i++) {
    if (ring[i]) {
      kite__kcp_pool_seg_put(kcp->pool, ring[i]);
      ring[i] = NULL;
    }
  }
  kite__kcp_pool_ring_put(kcp->pool, ring);
}

void kite__kcp_destroy(kite__kcp *kcp) {
  if (!kcp)
    return;
  free_list(kcp->pool, kcp->snd_head);
  free_list(kcp->pool, kcp->rcv_head);
  free_ring(kcp, kcp->snd_ring);
  free_ring(kcp, kcp->rcv_ring);
  if (kcp->acks)
    kite__kcp_pool_seg_put(kcp->pool, kcp->acks);
  free(kcp);
}

/* Queues |total| bytes gathered from |iov| as messages of at most
 * |per_msg| fragments each (frg counting down within each message). All or
 * nothing: a failure leaves the queue as it was. */
static int queue_bytes(kite__kcp *kcp, const struct iovec *iov, int iovcnt,
                       size_t total, size_t per_msg) {
  size_t count = (total + kcp->mss - 1) / kcp->mss;
  if (count > kcp->snd_queue_max)
    return KITE_EMSGSIZE; /* could never fit, whatever the peer does */
  if (kcp->nsnd_que + count > kcp->snd_queue_max)
    return KITE_EFULL;
  if (!kite__kcp_pool_can_get(kcp->pool, (uint32_t)count)) {
    kcp->pool->stats.send_no_buffer++;
    return KITE_ENOMEM;
  }
  /* Build on a private list first, so a failure leaves the queue untouched
   * and never holds a torn message. */
  kite__kseg *head = NULL, *tail = NULL;
  const uint8_t *src = iov->iov_base;
  size_t src_left = iov->iov_len;
  size_t left = total;
  for (size_t i = 0; i < count; i++) {
    kite__kseg *seg = kite__kcp_pool_seg_get(kcp->pool, false);
    if (!seg) { /* malloc failed: the budget was checked above */
      kcp->pool->stats.send_no_buffer++;
      free_list(kcp->pool, head);
      return KITE_ENOMEM;
    }
    size_t n = left < kcp->mss ? left : kcp->mss;
    for (size_t have = 0; have < n;) {
      while (src_left == 0) {
        iov++;
        iovcnt--;
        src = iov->iov_base;
        src_left = iov->iov_len;
      }
      size_t k = n - have < src_left ? n - have : src_left;
      memcpy(seg->data + have, src, k);
      have += k;
      src += k;
      src_left -= k;
    }
    seg->len = (uint16_t)n;
    size_t msg_start = i - i % per_msg; /* this message's first fragment */
    size_t msg_frags = count - msg_start < per_msg ? count - msg_start : per_msg;
    seg->frg = (uint8_t)(msg_frags - (i - msg_start) - 1);
    left -= n;
    if (tail)
      tail->next = seg;
    else
      head = seg;
    tail = seg;
  }
  if (kcp->snd_tail)
    kcp->snd_tail->next = head;
  else
    kcp->snd_head = head;
  kcp->snd_tail = tail;
  kcp->nsnd_que = (uint16_t)(kcp->nsnd_que + count);
  kcp->bytes_sent += total;
  return 0;
}

int kite__kcp_send(kite__kcp *kcp, const void *data, size_t len) {
  if (kcp->flags & KCP_F_DEAD)
    return KITE_EDEAD;
  if (len == 0)
    return KITE_EINVAL;
  if ((len + kcp->mss - 1) / kcp->mss > kcp->max_frags)
    return KITE_EMSGSIZE;
  struct iovec iov = {(void *)(uintptr_t)data, len};
  return queue_bytes(kcp, &iov, 1, len, kcp->max_frags);
}

int kite__kcp_sendv(kite__kcp *kcp, const struct iovec *iov, int iovcnt) {
  if (kcp->flags & KCP_F_DEAD)
    return KITE_EDEAD;
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++)
    total += iov[i].iov_len;
  if (total == 0)
    return KITE_EINVAL;
  return queue_bytes(kcp, iov, iovcnt, total, kcp->max_frags);
}

/* The next message's fragment count and unread size, checking that its frg
 * fields count down to 0 as every conforming sender writes them. */
static int next_message(const kite__kcp *kcp, uint32_t *nsegs, size_t *size) {
  const kite__kseg *seg = kcp->rcv_head;
  if (!seg)
    return KITE_EAGAIN;
  uint32_t need = (uint32_t)seg->frg + 1;
  if (kcp->nrcv_que < need)
    return KITE_EAGAIN;
  size_t bytes = 0;
  for (uint32_t i = 0; i < need; i++, seg = seg->next) {
    if (seg->frg != need - 1 - i)
      return KITE_EPROTO;
    bytes += seg->len;
  }
  *nsegs = need;
  *size = bytes - kcp->rcv_off;
  return 0;
}

int kite__kcp_peeksize(const kite__kcp *kcp) {
  uint32_t nsegs;
  size_t size;
  int rc = next_message(kcp, &nsegs, &size);
  if (rc == KITE_EPROTO)
    kcp->pool->stats.recv_bad_frg++;
  return rc < 0 ? rc : (int)size;
}

int kite__kcp_recv(kite__kcp *kcp, void *buf, size_t cap) {
  uint32_t nsegs;
  size_t size;
  int rc = next_message(kcp, &nsegs, &size);
  if (rc == KITE_EPROTO)
    kcp->pool->stats.recv_bad_frg++;
  if (rc < 0)
    return rc;
  if (size > cap)
    return KITE_EMSGSIZE;
  bool was_full = kcp->nrcv_que >= kcp->rcv_wnd;
  uint8_t *p = buf;
  for (uint32_t i = 0; i < nsegs; i++) {
    const kite__kseg *seg = kcp->rcv_head;
    memcpy(p, seg->data + kcp->rcv_off, seg->len - kcp->rcv_off);
    p += seg->len - kcp->rcv_off;
    kite__kcp_rcv_pop(kcp);
  }
  kite__kcp_rcv_after_read(kcp, was_full);
  kcp->bytes_received += size;
  return (int)size;
}

void kite__kcp_rcv_pop(kite__kcp *kcp) {
  kite__kseg *seg = kcp->rcv_head;
  kcp->rcv_head = seg->next;
  if (!kcp->rcv_head)
    kcp->rcv_tail = NULL;
  kcp->nrcv_que--;
  kcp->rcv_bytes -= (uint32_t)(seg->len - kcp->rcv_off);
  kcp->rcv_off = 0;
  kite__kcp_pool_seg_put(kcp->pool, seg);
}

void kite__kcp_rcv_after_read(kite__kcp *kcp, bool was_full) {
  kite__kcp_rcv_advance(kcp);
  if (was_full && kcp->nrcv_que < kcp->rcv_wnd)
    kcp->flags |= KCP_F_ASK_TELL;
}

void kite__kcp_rcv_advance(kite__kcp *kcp) {
  kite__kseg **ring = kcp->rcv_ring;
  if (!ring)
    return;
  while (kcp->nrcv_que < kcp->rcv_wnd) {
    uint32_t i = kite__kcp_slot(kcp, kcp->rcv_nxt);
    kite__kseg *seg = ring[i];
    if (!seg)
      break;
    ring[i] = NULL;
    kcp->nrcv_buf--;
    kite__kcp_deliver(kcp, seg);
  }
  if (kcp->nrcv_buf == 0) {
    kite__kcp_pool_ring_put(kcp->pool, ring);
    kcp->rcv_ring = NULL;
  }
}

static uint32_t effective_cwnd(const kite__kcp *kcp) {
  uint32_t cwnd = kcp->snd_wnd < kcp->rmt_wnd ? kcp->snd_wnd : kcp->rmt_wnd;
  if (!(kcp->flags & KCP_F_NOCWND) && kcp->cwnd < cwnd)
    cwnd = kcp->cwnd;
  return cwnd;
}

bool kite__kcp_window_open(const kite__kcp *kcp) {
  return kite__ms_diff(kcp->snd_nxt, kcp->snd_una + effective_cwnd(kcp)) < 0;
}

bool kite__kcp_next_due(const kite__kcp *kcp, uint32_t now_ms,
                        uint32_t *due_ms) {
  if (kcp->flags & KCP_F_DEAD)
    return false;
  if (kcp->nacks ||
      (kcp->flags & (KCP_F_ASK_TELL | KCP_F_ASK_SEND | KCP_F_FAST_DUE))) {
    *due_ms = now_ms;
    return true;
  }
  bool in_flight = kcp->snd_una != kcp->snd_nxt;
  if (!in_flight && !kcp->snd_head)
    return false;
  if (kcp->snd_head && kite__kcp_window_open(kcp)) {
    *due_ms = now_ms;
    return true;
  }
  /* Data is outstanding: the dead-link deadline bounds every wait. Until the
   * first flush arms it, that flush is due now. */
  if (!(kcp->flags & KCP_F_BUSY)) {
    *due_ms = now_ms;
    return true;
  }
  uint32_t due = kcp->progress_ts + kcp->dead_link_ms;
  if (in_flight)
    due = kite__ms_min(due, kcp->resend_due);
  if (kcp->snd_head && kcp->rmt_wnd == 0)
    due = kite__ms_min(due, kcp->probe_wait ? kcp->ts_probe : now_ms);
  *due_ms = due;
  return true;
}

uint32_t kite__kcp_conv(const kite__kcp *kcp) { return kcp->conv; }
void *kite__kcp_user(const kite__kcp *kcp) { return kcp->user; }
bool kite__kcp_is_dead(const kite__kcp *kcp) {
  return (kcp->flags & KCP_F_DEAD) != 0;
}

uint32_t kite__kcp_unacked(const kite__kcp *kcp) {
  return kcp->nsnd_que + (kcp->snd_nxt - kcp->snd_una);
}

uint32_t kite__kcp_queued(const kite__kcp *kcp) { return kcp->nsnd_que; }

void kite__kcp_get_stats(const kite__kcp *kcp, kite__kcp_stats *out) {
  out->srtt_ms = (uint32_t)kcp->rx_srtt;
  out->rttvar_ms = (uint32_t)kcp->rx_rttval;
  out->rto_ms = kcp->rx_rto;
  out->retransmits = kcp->retransmits;
  out->fast_retransmits = kcp->fast_retransmits;
  out->segs_sent = kcp->segs_sent;
  out->segs_received = kcp->segs_received;
  out->bytes_sent = kcp->bytes_sent;
  out->bytes_received = kcp->bytes_received;
}

size_t kite__kcp_sizeof(void) { return sizeof(kite__kcp); }
