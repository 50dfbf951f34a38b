/*
 * A session's traffic, whatever its transport: frames queued for the peer
 * (and their counters), frames from the peer to the logic layer, the one
 * timer per session (handshake, idle, closing deadlines; the transport's
 * own due time), and the dirty list flushed at the end of each batch.
 */
#include "server/server_internal.h"

#include "base/time.h"
#include "proto/frame.h"
#include "proto/v2.h"

void kite__session_mark_dirty(kite__session *s) {
  if (s->dirty)
    return;
  s->dirty = 1;
  s->dirty_next = s->shard->dirty;
  s->shard->dirty = s;
}

void kite__session_schedule(kite__session *s) {
  kite__shard *sh = s->shard;
  uint32_t at = kite__session_last_rx(s) + s->idle_ms;
  if (s->state != KITE__S_OPEN)
    at = kite__ms_min(at, s->deadline_ms);
  uint32_t due;
  if (s->tr->next_due(s, sh->now, &due))
    at = kite__ms_min(at, due);
  /* Closing and all acknowledged: close now, not at the deadline. */
  if (s->state == KITE__S_CLOSING && s->tr->unacked(s) == 0)
    at = sh->now;
  kite__wheel_add(&sh->wheel, &s->timer, at);
}

void kite__session_on_timer(kite__timer *t, void *user) {
  kite__shard *sh = user;
  kite__session *s = (kite__session *)((char *)t - offsetof(kite__session, timer));
  uint32_t now = sh->now;
  if (s->state == KITE__S_HALF_OPEN && kite__ms_reached(now, s->deadline_ms)) {
    kite__session_close(s, KITE_CLOSE_NORMAL); /* silently: never opened */
    return;
  }
  /* Idleness is checked lazily, here: packets only move last_rx_ms. */
  if (kite__ms_diff(now, kite__session_last_rx(s)) >=
      (int32_t)s->idle_ms) {
    kite__session_close(s, KITE_CLOSE_IDLE);
    return;
  }
  if (s->state == KITE__S_CLOSING &&
      (s->tr->unacked(s) == 0 || kite__ms_reached(now, s->deadline_ms))) {
    kite__session_close_now(s);
    return;
  }
  s->tr->on_timer(s, now);
  kite__session_settle(s);
  if (kite__session_connected(s))
    kite__session_schedule(s);
}

/* Queues encoded frame bytes on the session's transport. */
static int session_sendv(kite__session *s, struct iovec *iov, int n,
                         size_t bytes) {
  int rc = s->tr->sendv(s, iov, n);
  if (rc < 0)
    return rc;
  KITE__SESSION_ADD(s, frames_out, 1);
  KITE__SESSION_ADD(s, bytes_out, bytes);
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

/* Hands a frame to the logic layer; inline, its handler runs now. */
static bool session_deliver_up(kite__session *s, const kite__frame_hdr *h,
                               const uint8_t *body) {
  uint8_t was = s->in_callback;
  s->in_callback = 1;
  bool taken = kite__logic_deliver(s->shard->srv->logic, s->app, h->msg_id,
                                   0, body, h->len);
  s->in_callback = was;
  return taken;
}

int kite__session_send_unreliable(kite__session *s, uint16_t msg_id,
                                  unsigned flags, const void *body,
                                  size_t len) {
  if (s->tr->send_unreliable)
    return s->tr->send_unreliable(s, msg_id, flags, body, len);
  /* v2 over TCP: the unreliable flag (no sequencing on an ordered stream);
   * v1: an ordinary frame. */
  uint16_t ff = atomic_load_explicit(&s->lane, memory_order_relaxed) ==
                        KITE__LANE_FLAG
                    ? KITE__FRAME_F_UNRELIABLE
                    : 0;
  return kite__session_send_frame(s, msg_id, ff, body, len);
}

void kite__session_deliver_unreliable(kite__session *s, uint16_t msg_id,
                                      unsigned req_flags, const uint8_t *body,
                                      size_t len) {
  kite__shard *sh = s->shard;
  if (msg_id == KITE__MSG_PING || msg_id >= KITE__MSG_RESERVED_MIN ||
      !kite__session_live(s)) {
    KITE__STAT_INC(sh, v2_drop_unreliable); /* kite's own, or closed */
    return;
  }
  uint8_t was = s->in_callback;
  s->in_callback = 1;
  bool taken = kite__logic_deliver(sh->srv->logic, s->app, msg_id, req_flags,
                                   body, (uint32_t)len);
  s->in_callback = was;
  if (!taken) { /* a full mailbox: dropped, the session reads on */
    KITE__STAT_INC(sh, unreliable_drop_mailbox);
    return;
  }
  KITE__STAT_INC(sh, unreliable_in);
  KITE__SESSION_ADD(s, frames_in, 1);
  KITE__SESSION_ADD(s, bytes_in, len);
}

/* The peer's close notice (PROTOCOL.md section 5): the reason it will
 * give with its FIN. */
static void note_close_notice(kite__session *s, const kite__frame_hdr *h,
                              const uint8_t *body) {
  if (h->len == 1 && body[0] <= KITE_CLOSE_SLOW_PEER)
    s->peer_reason = body[0];
}

bool kite__session_deliver(kite__session *s, const kite__frame_hdr *h,
                           const uint8_t *body) {
  kite__shard *sh = s->shard;
  if (h->msg_id == KITE__MSG_PING) {
    if (!(h->flags & KITE__FRAME_F_PONG)) {
      KITE__STAT_INC(sh, pings);
      kite__session_send_frame(s, KITE__MSG_PING, KITE__FRAME_F_PONG, body,
                               h->len);
    }
  } else if (h->msg_id == KITE__MSG_CLOSE_NOTICE) {
    note_close_notice(s, h, body);
  } else if ((h->flags & KITE__FRAME_F_UNRELIABLE) &&
             atomic_load_explicit(&s->lane, memory_order_relaxed) !=
                 KITE__LANE_FRAME) {
    /* v2: sent unreliably (PROTOCOL-v2.md section 8), so over a full
     * mailbox it is dropped, never held (v1 ignores the bit). */
    kite__session_deliver_unreliable(s, h->msg_id, KITE_REQ_UNRELIABLE, body,
                                     h->len);
    return true;
  } else if (!kite__session_live(s)) {
    /* Closed by the application: what the peer sent since goes unheard,
     * counted as any message a close left unhandled (logic.h). */
    KITE__STAT_INC(sh, drop_after_close);
  } else if (!session_deliver_up(s, h, body)) {
    s->blocked = 1;
    KITE__STAT_INC(sh, backpressure);
    uint32_t held;
    if (kite__ratelog_allow(&sh->log_backpressure, sh->now, &held)) {
      char who[64], more[48];
      kite__logf(&sh->srv->log, KITE_LOG_WARN,
                 "session %016llx (%s %s): its handlers are behind; reading "
                 "paused (backpressure)%s",
                 (unsigned long long)kite__session_id(s),
                 s->tr->kind == KITE_TRANSPORT_KCP ? "udp" : s->tr->name,
                 kite__addr_format(&s->peer, who, sizeof(who)),
                 kite__ratelog_tail(more, sizeof(more), held));
    }
    return false;
  } /* frames_in: the logic layer counts what its handlers take */
  KITE__SESSION_ADD(s, frames_in, 1);
  KITE__SESSION_ADD(s, bytes_in, KITE__FRAME_HDR + h->len);
  return true;
}

void kite__session_protocol_error(kite__session *s, int why) {
  kite__shard *sh = s->shard;
  char who[64], more[48];
  uint32_t held;
  if (kite__ratelog_allow(&sh->log_protocol, sh->now, &held))
    kite__logf(&sh->srv->log, KITE_LOG_WARN,
               "session %s: %s: closing (protocol error)%s",
               kite__addr_format(&s->peer, who, sizeof(who)),
               kite__frame_strerror(why),
               kite__ratelog_tail(more, sizeof(more), held));
  KITE__STAT_INC(sh, drop_frame);
  if (s->close_pending == KITE__NO_CLOSE)
    s->close_pending = KITE_CLOSE_PROTOCOL;
}

void kite__session_resume(kite__session *s) {
  if (!s->blocked || (s->state != KITE__S_OPEN && s->state != KITE__S_CLOSING))
    return;
  s->blocked = 0;
  s->tr->resume(s);
  kite__session_settle(s);
}
