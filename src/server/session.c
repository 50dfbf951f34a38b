/*
 * Sessions on their shard: the slot table, KCP input and the frame pump,
 * frame sends, the one timer per session, and closing at a safe point.
 */
#include "server/server_internal.h"

#include "base/time.h"
#include "proto/frame.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* id = shard (8 bits) | slot (24 bits) | generation (32 bits): a stale id
 * fails the generation check instead of reaching a newer session. */
kite_session_id kite__session_id(const kite__session *s) {
  return (uint64_t)s->shard->index << 56 | (uint64_t)s->slot << 32 |
         atomic_load_explicit(&s->generation, memory_order_relaxed);
}

kite__session *kite__session_by_id(kite_server *srv, kite_session_id id) {
  uint32_t shard = (uint32_t)(id >> 56);
  uint32_t slot = (uint32_t)(id >> 32) & 0xFFFFFF;
  if (shard >= srv->nshards || slot >= srv->shards[shard].nslots)
    return NULL;
  kite__session *s = &srv->shards[shard].slots[slot];
  if (atomic_load_explicit(&s->generation, memory_order_acquire) !=
      (uint32_t)id)
    return NULL;
  return s;
}

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

static const kite__kcp_ops session_ops = {session_output, session_dead};

/* conv = shard | slot << 8 | random above: the shard in the first byte on
 * the wire (steering), the slot for a direct lookup, and every other bit
 * random (PROTOCOL.md section 2). Never the control magic. */
static uint32_t make_conv(const kite__shard *sh, uint32_t slot) {
  uint32_t bits = sh->srv->slot_bits;
  for (;;) {
    uint32_t conv = sh->index | slot << 8;
    if (8 + bits < 32)
      conv |= randombytes_random() << (8 + bits);
    if (conv != KITE__CTRL_MAGIC)
      return conv;
  }
}

kite__session *kite__session_claim(kite__shard *sh, const char **no_worker) {
  kite__session *s = sh->free;
  *no_worker = NULL;
  if (!s || (*no_worker = kite__logic_bind(&sh->srv->logic, s)))
    return NULL;
  return s;
}

void kite__session_admit(kite__session *s, const kite__addr *peer) {
  kite__shard *sh = s->shard;
  sh->free = s->free_next;
  s->free_next = NULL;
  s->user = NULL;
  s->peer = *peer;
  s->last_rx_ms = sh->now;
  s->deadline_ms = sh->now + sh->srv->cfg.handshake_timeout_ms;
  atomic_store_explicit(&s->queued, 0, memory_order_relaxed);
  atomic_store_explicit(&s->queue_max,
                        s->tcp ? sh->srv->tcp_queue_max : sh->srv->cfg.send_queue_max,
                        memory_order_relaxed);
  s->state = KITE__S_HALF_OPEN;
  s->opened = 0;
  s->in_callback = 0;
  s->close_pending = KITE__NO_CLOSE;
  s->blocked = 0;
  atomic_store_explicit(&s->mb.flags, 0, memory_order_relaxed);
  s->frames_in = s->frames_out = s->bytes_in = s->bytes_out = 0;
  sh->nsessions++;
  KITE__STAT_ADD(sh, sessions, 1);
}

kite__session *kite__session_new(kite__shard *sh, const kite__addr *peer,
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
  uint32_t conv = make_conv(sh, s->slot);
  if (kite__kcp_create(&s->kcp, conv, &kc, sh->pool, &session_ops, s) < 0) {
    kite__logic_unbind(&sh->srv->logic, s);
    return NULL;
  }
  if (kite__map_put(&sh->hs, hs_key, s->slot) < 0) {
    kite__kcp_destroy(s->kcp);
    s->kcp = NULL;
    kite__logic_unbind(&sh->srv->logic, s);
    return NULL;
  }
  s->tcp = NULL;
  kite__session_admit(s, peer);
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

/* The network side goes: KCP, the timer, the handshake entry. */
static void session_teardown(kite__session *s) {
  kite__shard *sh = s->shard;
  if (s->tcp) {
    kite__wheel_del(&sh->wheel, &s->timer);
    kite__tcp_session_teardown(s);
    return;
  }
  kite__kcp_stats st;
  kite__kcp_get_stats(s->kcp, &st);
  KITE__STAT_ADD(sh, retransmits, st.retransmits + st.fast_retransmits);
  kite__kcp_destroy(s->kcp);
  s->kcp = NULL;
  kite__wheel_del(&sh->wheel, &s->timer);
  kite__map_del(&sh->hs, s->hs_key);
}

void kite__session_release(kite__session *s) {
  kite__shard *sh = s->shard;
  kite__logic_unbind(&sh->srv->logic, s);
  s->state = KITE__S_FREE;
  s->user = NULL;
  /* A new generation: ids of this session are stale from now on. The slot
   * stays on the dirty list if it is there; flushing skips free slots. */
  uint32_t gen = atomic_load_explicit(&s->generation, memory_order_relaxed);
  atomic_store_explicit(&s->generation, gen + 1 ? gen + 1 : 1,
                        memory_order_release);
  s->free_next = sh->free;
  sh->free = s;
  sh->nsessions--;
  KITE__STAT_ADD(sh, sessions, (uint64_t)-1);
  atomic_fetch_sub_explicit(&sh->srv->sessions, 1, memory_order_relaxed);
}

static void count_close(kite__shard *sh, uint8_t reason) {
  switch (reason) {
  case KITE_CLOSE_NORMAL: KITE__STAT_INC(sh, closed_normal); break;
  case KITE_CLOSE_IDLE: KITE__STAT_INC(sh, closed_idle); break;
  case KITE_CLOSE_PROTOCOL: KITE__STAT_INC(sh, closed_protocol); break;
  case KITE_CLOSE_SHUTDOWN: KITE__STAT_INC(sh, closed_shutdown); break;
  case KITE_CLOSE_KICKED: KITE__STAT_INC(sh, closed_kicked); break;
  case KITE_CLOSE_DEAD_LINK: KITE__STAT_INC(sh, closed_dead_link); break;
  default: KITE__STAT_INC(sh, closed_slow_peer); break;
  }
}

static void session_end(kite__session *s, uint8_t reason, bool tell_peer);

void kite__session_close(kite__session *s, uint8_t reason) {
  session_end(s, reason, reason != KITE_CLOSE_NORMAL);
}

void kite__session_close_by_peer(kite__session *s, uint8_t reason) {
  session_end(s, reason, false);
}

static void session_end(kite__session *s, uint8_t reason, bool tell_peer) {
  if (s->state == KITE__S_FREE || s->state == KITE__S_ZOMBIE)
    return;
  if (s->in_callback) {
    if (s->close_pending == KITE__NO_CLOSE)
      s->close_pending = reason;
    return;
  }
  kite__shard *sh = s->shard;
  if (s->state == KITE__S_HALF_OPEN) {
    /* The application never heard of it: it leaves silently. */
    if (tell_peer && s->kcp)
      kite__handshake_send_close(s, reason);
    if (reason == KITE_CLOSE_NORMAL) /* not a bad OPEN: counted there */
      KITE__STAT_INC(sh, halfopen_expired);
    session_teardown(s);
    kite__session_release(s);
    return;
  }
  /* TCP has no CLOSE: its connection lingers until what is queued left. */
  if (reason == KITE_CLOSE_KICKED && s->kcp)
    kite__kcp_flush(s->kcp, sh->now); /* what is queued leaves first */
  if (tell_peer && s->kcp)
    kite__handshake_send_close(s, reason);
  count_close(sh, reason);
  /* From here the session takes no input and no sends; its executor still
   * owes on_disconnect (inline: now; a worker: after its queued frames). */
  s->state = KITE__S_ZOMBIE;
  atomic_store_explicit(&s->live, 0, memory_order_relaxed);
  bool now = kite__logic_close(&sh->srv->logic, s, reason);
  session_teardown(s);
  if (now)
    kite__session_release(s);
}

uint32_t kite__frame_segs(const kite_server *srv, size_t frame_bytes) {
  uint32_t mss = srv->cfg.mtu - KITE_KCP_OVERHEAD;
  return (uint32_t)((frame_bytes + mss - 1) / mss);
}

bool kite__session_reserve(kite__session *s, uint32_t segs) {
  uint32_t before = atomic_fetch_add_explicit(&s->pending, segs, memory_order_relaxed);
  uint32_t queued = atomic_load_explicit(&s->queued, memory_order_relaxed);
  uint32_t max = atomic_load_explicit(&s->queue_max, memory_order_relaxed);
  if (before + queued + segs <= max)
    return true;
  kite__session_unreserve(s, segs);
  return false;
}

void kite__session_unreserve(kite__session *s, uint32_t segs) {
  atomic_fetch_sub_explicit(&s->pending, segs, memory_order_relaxed);
}

int kite__session_close_any(kite_server *srv, kite_session_id id,
                            uint8_t reason) {
  kite__session *s = kite__session_by_id(srv, id);
  if (!s)
    return KITE_ENOTFOUND;
  kite__logic_close_requested(&srv->logic, s); /* its executor: no more handlers */
  if (kite__shard_current() == s->shard) {
    if (s->state == KITE__S_FREE || s->state == KITE__S_ZOMBIE)
      return KITE_ENOTFOUND;
    kite__session_close(s, reason);
    return 0;
  }
  kite__cmd *cmd = malloc(sizeof(*cmd));
  if (!cmd)
    return KITE_ENOMEM;
  cmd->type = KITE__CMD_CLOSE;
  cmd->reason = reason;
  cmd->id = id;
  if (!kite__shard_post(s->shard, cmd)) {
    free(cmd);
    return KITE_EFULL;
  }
  return 0;
}

void kite__session_settle(kite__session *s) {
  if (s->state != KITE__S_FREE && s->close_pending != KITE__NO_CLOSE) {
    uint8_t reason = s->close_pending;
    s->close_pending = KITE__NO_CLOSE;
    kite__session_close(s, reason);
  }
}

void kite__session_publish_queue(kite__session *s) {
  uint32_t queued;
  if (s->tcp) /* in the unit reservations count: segments */
    queued = kite__frame_segs(s->shard->srv, kite__tcp_out_pending(&s->tcp->out));
  else
    queued = kite__kcp_queued(s->kcp);
  atomic_store_explicit(&s->queued, queued, memory_order_relaxed);
}

void kite__session_mark_dirty(kite__session *s) {
  if (s->dirty)
    return;
  s->dirty = 1;
  s->dirty_next = s->shard->dirty;
  s->shard->dirty = s;
}

void kite__session_schedule(kite__session *s) {
  kite__shard *sh = s->shard;
  if (s->tcp) {
    kite__tcp_session_schedule(s);
    return;
  }
  uint32_t at = s->last_rx_ms + sh->srv->cfg.idle_timeout_ms;
  if (s->state != KITE__S_OPEN)
    at = kite__ms_min(at, s->deadline_ms);
  uint32_t due;
  if (kite__kcp_next_due(s->kcp, sh->now, &due))
    at = kite__ms_min(at, due);
  /* Stopping and all acknowledged: close now, not at the deadline. */
  if (s->state == KITE__S_CLOSING && kite__kcp_unacked(s->kcp) == 0)
    at = sh->now;
  kite__wheel_add(&sh->wheel, &s->timer, at);
}

void kite__session_on_timer(kite__timer *t, void *user) {
  kite__shard *sh = user;
  kite__session *s = (kite__session *)((char *)t - offsetof(kite__session, timer));
  if (s->tcp) {
    kite__tcp_session_on_timer(s);
    return;
  }
  uint32_t now = sh->now;
  if (s->state == KITE__S_HALF_OPEN && kite__ms_reached(now, s->deadline_ms)) {
    kite__session_close(s, KITE_CLOSE_NORMAL); /* silently: never opened */
    return;
  }
  /* Idleness is checked lazily, here: packets only move last_rx_ms. */
  if (kite__ms_diff(now, s->last_rx_ms) >= (int32_t)sh->srv->cfg.idle_timeout_ms) {
    kite__session_close(s, KITE_CLOSE_IDLE);
    return;
  }
  if (s->state == KITE__S_CLOSING &&
      (kite__kcp_unacked(s->kcp) == 0 || kite__ms_reached(now, s->deadline_ms))) {
    kite__session_close(s, KITE_CLOSE_SHUTDOWN);
    return;
  }
  uint32_t due;
  if (kite__kcp_next_due(s->kcp, now, &due) && kite__ms_reached(now, due)) {
    kite__kcp_flush(s->kcp, now);
    kite__session_publish_queue(s);
  }
  kite__session_settle(s);
  if (s->state != KITE__S_FREE)
    kite__session_schedule(s);
}

/* Queues encoded frame bytes on the session's KCP stream. */
static int session_sendv(kite__session *s, struct iovec *iov, int n,
                         size_t bytes) {
  if (s->tcp) {
    int rc = kite__tcp_session_sendv(s, iov, n);
    if (rc == 0) {
      s->frames_out++;
      s->bytes_out += bytes;
    }
    return rc;
  }
  int rc = kite__kcp_sendv(s->kcp, iov, n);
  if (rc == KITE_EFULL) {
    /* The queue is full, but the window may have room: move it along
     * before refusing, so the limit bites only with both full. */
    kite__kcp_flush(s->kcp, s->shard->now);
    rc = kite__kcp_sendv(s->kcp, iov, n);
  }
  if (rc == KITE_ENOMEM) {
    KITE__STAT_INC(s->shard, kcp_no_buffer);
    rc = KITE_EFULL;
  } else if (rc == KITE_EMSGSIZE) {
    rc = KITE_EFULL; /* larger than the whole send queue */
  }
  if (rc < 0)
    return rc;
  s->frames_out++;
  s->bytes_out += bytes;
  kite__session_publish_queue(s);
  kite__session_mark_dirty(s);
  return 0;
}

int kite__session_send_frame(kite__session *s, uint16_t msg_id,
                             uint16_t flags, const void *body, size_t len) {
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, msg_id, flags, body, (uint32_t)len, true);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)(uintptr_t)body, len}};
  return session_sendv(s, iov, len ? 2 : 1, KITE__FRAME_HDR + len);
}

int kite__session_send_encoded(kite__session *s, const uint8_t *frame,
                               size_t bytes) {
  struct iovec iov = {(void *)(uintptr_t)frame, bytes};
  return session_sendv(s, &iov, 1, bytes);
}

/* One frame from the peer: pings answered here, the rest to the logic
 * layer. false: the session's mailbox is full; the frame stays in KCP. */
bool kite__session_deliver(kite__session *s, const kite__frame_hdr *h,
                           const uint8_t *body) {
  kite__shard *sh = s->shard;
  if (h->msg_id == KITE__MSG_PING) {
    if (!(h->flags & KITE__FRAME_F_PONG)) {
      KITE__STAT_INC(sh, pings);
      kite__session_send_frame(s, KITE__MSG_PING, KITE__FRAME_F_PONG, body,
                               h->len);
    }
  } else if (!kite__logic_deliver(&sh->srv->logic, s, h->msg_id, body, h->len)) {
    s->blocked = 1;
    KITE__STAT_INC(sh, backpressure);
    uint32_t held;
    if (kite__ratelog_allow(&sh->log_backpressure, sh->now, &held)) {
      char who[64];
      kite__logf(&sh->srv->log, KITE_LOG_WARN,
                 "session %016llx (%s %s): its handlers are behind; reading "
                 "paused (backpressure; %u more like it in the last second)",
                 (unsigned long long)kite__session_id(s), s->tcp ? "tcp" : "udp",
                 kite__addr_format(&s->peer, who, sizeof(who)), held);
    }
    return false;
  } else {
    KITE__STAT_INC(sh, frames_in);
  }
  s->frames_in++;
  s->bytes_in += KITE__FRAME_HDR + h->len;
  return true;
}

void kite__session_protocol_error(kite__session *s, int why) {
  kite__shard *sh = s->shard;
  char who[64];
  uint32_t held;
  if (kite__ratelog_allow(&sh->log_protocol, sh->now, &held))
    kite__logf(&sh->srv->log, KITE_LOG_WARN,
               "session %s: %s: closing (protocol error; %u more in the "
               "last second)", kite__addr_format(&s->peer, who, sizeof(who)),
               kite__frame_strerror(why), held);
  KITE__STAT_INC(sh, drop_frame);
  if (s->close_pending == KITE__NO_CLOSE)
    s->close_pending = KITE_CLOSE_PROTOCOL;
}

/* Frames straight out of the KCP receive queue (kcp_stream.c): no copy for
 * a frame inside one segment, the shard's scratch for one that spans. A
 * partial frame stays in KCP, where the window bounds it. */
static void pump_frames(kite__session *s) {
  kite__shard *sh = s->shard;
  uint32_t max_frame = sh->srv->cfg.max_frame;
  while (s->close_pending == KITE__NO_CLOSE && !s->blocked &&
         (s->state == KITE__S_OPEN || s->state == KITE__S_CLOSING)) {
    size_t avail = kite__kcp_readable(s->kcp);
    if (avail < KITE__FRAME_HDR)
      return;
    uint8_t raw[KITE__FRAME_HDR];
    kite__kcp_peek(s->kcp, raw, sizeof(raw));
    kite__frame_hdr h;
    kite__frame_hdr_decode(raw, &h);
    int why = kite__frame_check_hdr(&h, max_frame);
    if (why == 0 && avail < KITE__FRAME_HDR + (size_t)h.len)
      return; /* the rest is on its way */
    size_t total = KITE__FRAME_HDR + (size_t)h.len;
    const uint8_t *frame = NULL;
    if (why == 0) {
      frame = kite__kcp_peek_contig(s->kcp, total);
      if (!frame) {
        kite__kcp_peek(s->kcp, sh->scratch, total);
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
      kite__kcp_consume(s->kcp, total);
  }
}

void kite__session_resume(kite__session *s) {
  if (!s->blocked || (s->state != KITE__S_OPEN && s->state != KITE__S_CLOSING))
    return;
  s->blocked = 0;
  if (s->tcp) {
    kite__tcp_session_resume(s);
    kite__session_settle(s);
    return;
  }
  pump_frames(s);
  kite__session_mark_dirty(s); /* the reopened window goes out at once */
  kite__session_settle(s);
}

void kite__session_open(kite__session *s) {
  kite__shard *sh = s->shard;
  s->state = KITE__S_OPEN;
  atomic_store_explicit(&s->live, 1, memory_order_relaxed);
  s->opened = 1;
  KITE__STAT_INC(sh, sessions_opened);
  kite__logic_open(&sh->srv->logic, s);
}

void kite__session_input(kite__shard *sh, kite__session *s,
                         const uint8_t *data, size_t len) {
  int rc = kite__kcp_input(s->kcp, data, len, sh->now);
  if (rc < 0) {
    KITE__STAT_INC(sh, drop_kcp);
    if (rc != KITE_EPROTO)
      return;
  }
  s->last_rx_ms = sh->now;
  kite__session_mark_dirty(s);
  if (s->state == KITE__S_HALF_OPEN && rc == 0) {
    /* The first segment from the accepted address opens it (PROTOCOL.md
     * section 2, step 5): only now does the application hear of it. */
    kite__session_open(s);
  }
  if (s->state != KITE__S_HALF_OPEN)
    pump_frames(s);
  kite__session_settle(s);
}
