/*
 * The KCP transport (PROTOCOL.md sections 2-4): a session's engine, fed
 * by the shard's datagrams and flushed into its send batch, frames cut
 * straight out of KCP's receive queue, and CLOSE to end it.
 */
#include "server/server_internal.h"

#include "base/time.h"
#include "proto/frame.h"

#include <sodium.h>
#include <string.h>

static kite__kcp *kcp_of(const kite__session *s) { return s->link; }

static void session_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                           void *user) {
  (void)kcp;
  kite__session *s = user;
  kite__udp_tx_add(s->shard->tx, &s->peer, &s->local, buf, len);
}

/* Called from inside kite__kcp_flush(): the close waits for a safe point. */
static void session_dead(kite__kcp *kcp, void *user) {
  (void)kcp;
  kite__session *s = user;
  if (s->close_pending == KITE__NO_CLOSE)
    s->close_pending = KITE_CLOSE_DEAD_LINK;
}

static const kite__kcp_ops engine_ops = {session_output, session_dead};

kite__session *kite__kcp_session_new(kite__shard *sh, const kite__addr *peer,
                                     const kite__local *local,
                                     const uint8_t nonce[8], uint64_t hs_key,
                                     uint16_t mtu, uint16_t peer_rcv_wnd,
                                     const char **no_worker) {
  kite__session *s = kite__session_claim(sh, no_worker);
  if (!s)
    return NULL;
  kite__kcp_config kc = sh->kcp_cfg;
  kc.mtu = mtu;
  kc.peer_rcv_wnd = peer_rcv_wnd;
  /* shard | 24 random bits, unique on the shard (conv.h) */
  uint32_t conv = kite__conv_new(&sh->convs, sh->index);
  kite__kcp *kcp;
  if (kite__kcp_create(&kcp, conv, &kc, sh->pool, &engine_ops, s) < 0) {
    kite__session_unclaim(s);
    return NULL;
  }
  if (kite__map_put(&sh->hs, hs_key, s->slot) < 0) {
    kite__kcp_destroy(kcp);
    kite__session_unclaim(s);
    return NULL;
  }
  if (kite__map_put(&sh->convs, kite__conv_key(conv), s->slot) < 0) {
    kite__map_del(&sh->hs, hs_key);
    kite__kcp_destroy(kcp);
    kite__session_unclaim(s);
    return NULL;
  }
  kite__session_admit(s, &kite__transport_kcp, kcp, peer);
  s->local = *local;
  s->hs_key = hs_key;
  s->conv = conv;
  s->mtu = mtu;
  s->peer_rcv_wnd = peer_rcv_wnd;
  randombytes_buf(s->token, sizeof(s->token));
  memcpy(s->nonce, nonce, 8);
  kite__session_schedule(s);
  return s;
}

/* Frames straight out of the KCP receive queue (kcp_stream.c): no copy for
 * a frame inside one segment, the shard's scratch for one that spans. A
 * partial frame stays in KCP, where the window bounds it. */
void kite__kcp_pump_frames(kite__session *s, kite__kcp *kcp) {
  kite__shard *sh = s->shard;
  uint32_t max_frame = sh->srv->cfg.max_frame;
  while (s->close_pending == KITE__NO_CLOSE && !s->blocked &&
         (s->state == KITE__S_OPEN || s->state == KITE__S_CLOSING)) {
    size_t avail = kite__kcp_readable(kcp);
    if (avail < KITE__FRAME_HDR)
      return;
    uint8_t raw[KITE__FRAME_HDR];
    kite__kcp_peek(kcp, raw, sizeof(raw));
    kite__frame_hdr h;
    kite__frame_hdr_decode(raw, &h);
    int why = kite__frame_check_hdr(&h, max_frame);
    if (why == 0 && avail < KITE__FRAME_HDR + (size_t)h.len)
      return; /* the rest is on its way */
    size_t total = KITE__FRAME_HDR + (size_t)h.len;
    const uint8_t *frame = NULL;
    if (why == 0) {
      frame = kite__kcp_peek_contig(kcp, total);
      if (!frame) {
        kite__kcp_peek(kcp, sh->scratch, total);
        frame = sh->scratch;
      }
      why = kite__frame_check_body(&h, frame + KITE__FRAME_HDR);
    }
    if (why != 0) {
      kite__session_protocol_error(s, why);
      return;
    }
    if (!kite__session_deliver(s, &h, frame + KITE__FRAME_HDR))
      return; /* backpressure: the frame waits in KCP */
    if (s->state == KITE__S_OPEN || s->state == KITE__S_CLOSING)
      kite__kcp_consume(kcp, total);
  }
}

static void pump_frames(kite__session *s) { kite__kcp_pump_frames(s, kcp_of(s)); }

void kite__kcp_session_input(kite__shard *sh, kite__session *s,
                             const uint8_t *data, size_t len) {
  int rc = kite__kcp_input(kcp_of(s), data, len, sh->now);
  if (rc < 0) {
    KITE__STAT_INC(sh, drop_kcp);
    if (rc != KITE_EPROTO)
      return;
  }
  kite__session_heard(s, sh->now);
  kite__session_mark_dirty(s);
  if (s->state == KITE__S_HALF_OPEN && rc == 0) {
    /* The first segment from the accepted address opens it (PROTOCOL.md
     * section 2, step 5): only now does the application hear of it. */
    kite__srclimit_opened(&sh->srcs, &s->src_keys);
    s->src_open = 1;
    kite__session_open(s);
  }
  if (s->state != KITE__S_HALF_OPEN)
    pump_frames(s);
  kite__session_publish_rtt(s, sh->now);
  kite__session_settle(s);
}

/* The send queue's depth for senders on other threads, straight from the
 * engine (kite__session_publish_queue() asks through the table). */
static void publish(kite__session *s, kite__kcp *kcp) {
  atomic_store_explicit(&s->queued, kite__kcp_queued(kcp), memory_order_relaxed);
}

int kite__kcp_session_sendv(kite__session *s, kite__kcp *kcp,
                            struct iovec *iov, int n) {
  int rc = kite__kcp_sendv(kcp, iov, n);
  if (rc == KITE_EFULL) {
    /* The queue is full, but the window may have room: move it along
     * before refusing, so the limit bites only with both full. */
    kite__kcp_flush(kcp, s->shard->now);
    rc = kite__kcp_sendv(kcp, iov, n);
  }
  if (rc == KITE_ENOMEM) {
    /* The shard's budget, not this peer's queue: said apart, so that an
     * application does not drop a player for the server's overload. */
    KITE__STAT_INC(s->shard, kcp_no_buffer);
  } else if (rc == KITE_EMSGSIZE) {
    rc = KITE_EFULL; /* larger than the whole send queue */
  }
  if (rc < 0)
    return rc;
  publish(s, kcp);
  kite__session_mark_dirty(s);
  return 0;
}

static int kcp_sendv(kite__session *s, struct iovec *iov, int n) {
  return kite__kcp_session_sendv(s, kcp_of(s), iov, n);
}

static void kcp_flush(kite__session *s) {
  kite__kcp *kcp = kcp_of(s);
  kite__kcp_flush(kcp, s->shard->now);
  publish(s, kcp);
}

static bool kcp_next_due(kite__session *s, uint32_t now_ms, uint32_t *due_ms) {
  return kite__kcp_next_due(kcp_of(s), now_ms, due_ms);
}

static void kcp_on_timer(kite__session *s, uint32_t now_ms) {
  uint32_t due;
  if (kite__kcp_next_due(kcp_of(s), now_ms, &due) && kite__ms_reached(now_ms, due))
    kcp_flush(s);
}

static void kcp_resume(kite__session *s) {
  pump_frames(s);
  kite__session_mark_dirty(s); /* the reopened window goes out at once */
}

static void kcp_drain(kite__session *s) { pump_frames(s); }

static uint32_t kcp_queued(const kite__session *s) {
  return kite__kcp_queued(kcp_of(s));
}

static uint32_t kcp_unacked(const kite__session *s) {
  return kite__kcp_unacked(kcp_of(s));
}

static void kcp_notify_close(kite__session *s, uint8_t reason) {
  kite__handshake_send_close(s, reason);
}

static void kcp_teardown(kite__session *s) {
  kite__shard *sh = s->shard;
  kite__kcp_stats st;
  kite__kcp_get_stats(kcp_of(s), &st);
  KITE__STAT_ADD(sh, retransmits, st.retransmits + st.fast_retransmits);
  kite__kcp_destroy(kcp_of(s));
  kite__map_del(&sh->hs, s->hs_key);
  kite__map_del(&sh->convs, kite__conv_key(s->conv));
  kite__srclimit_remove(&sh->srcs, &s->src_keys, s->src_open);
}

void kite__kcp_session_rtt(const kite__kcp *kcp, kite__rtt *out) {
  kite__kcp_stats st;
  kite__kcp_get_stats(kcp, &st);
  out->srtt_ms = st.srtt_ms;
  out->rttvar_ms = st.rttvar_ms;
  out->rto_ms = st.rto_ms;
  out->retransmits = st.retransmits + st.fast_retransmits;
}

static void kcp_rtt(const kite__session *s, kite__rtt *out) {
  kite__kcp_session_rtt(kcp_of(s), out);
}

const kite__transport kite__transport_kcp = {
    .name = "kcp",
    .kind = KITE_TRANSPORT_KCP,
    .sendv = kcp_sendv,
    .flush = kcp_flush,
    .next_due = kcp_next_due,
    .on_timer = kcp_on_timer,
    .resume = kcp_resume,
    .drain = kcp_drain,
    .queued = kcp_queued,
    .unacked = kcp_unacked,
    .notify_close = kcp_notify_close,
    .teardown = kcp_teardown,
    .rtt = kcp_rtt,
};
