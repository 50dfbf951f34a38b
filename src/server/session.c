/*
 * Sessions on their shard, whatever their transport: the slot table and
 * ids, admission and release, frames to and from the logic layer, the one
 * timer per session (handshake, idle, closing deadlines), and closing at a
 * safe point. The transport's part is behind s->tr (server/transport.h).
 */
#include "server/server_internal.h"

#include "base/time.h"
#include "proto/frame.h"
#include "proto/v2.h"

#include <stdlib.h>
#include <string.h>

kite_session_id kite__session_id(const kite__session *s) {
  return kite__sid_make(s->shard->index, s->slot,
                        atomic_load_explicit(&s->generation, memory_order_relaxed));
}

kite__session *kite__session_by_id(kite_server *srv, kite_session_id id) {
  uint32_t shard = kite__sid_shard(id);
  uint32_t slot = kite__sid_slot(id);
  if (shard >= srv->nshards || slot >= srv->shards[shard].nslots)
    return NULL;
  kite__session *s = &srv->shards[shard].slots[slot];
  if (atomic_load_explicit(&s->generation, memory_order_acquire) !=
      kite__sid_generation(id))
    return NULL;
  return s;
}

kite__session *kite__session_claim(kite__shard *sh, const char **no_worker) {
  kite__session *s = sh->free;
  *no_worker = NULL;
  if (!s || (*no_worker = kite__logic_bind(sh->srv->logic, s->app,
                                           kite__session_id(s))))
    return NULL;
  return s;
}

void kite__session_unclaim(kite__session *s) {
  kite__logic_unbind(s->shard->srv->logic, s->app);
}

void kite__session_admit(kite__session *s, const kite__transport *tr,
                         void *link, const kite__addr *peer) {
  kite__shard *sh = s->shard;
  sh->free = s->free_next;
  s->free_next = NULL;
  s->tr = tr;
  s->link = link;
  kite__session_pub_lock(s);
  s->peer = *peer;
  s->kind = tr->kind;
  s->version = 1;
  s->ident = NULL;
  s->rtt = (kite__rtt){0};
  kite__session_pub_unlock(s);
  s->rtt_ms = sh->now;
  kite__session_heard(s, sh->now);
  s->deadline_ms = sh->now + sh->srv->cfg.handshake_timeout_ms;
  s->idle_ms = sh->srv->cfg.idle_timeout_ms;
  atomic_store_explicit(&s->queued, 0, memory_order_relaxed);
  atomic_store_explicit(&s->lane, KITE__LANE_FRAME, memory_order_relaxed);
  atomic_store_explicit(&s->max_unreliable, 0, memory_order_relaxed);
  atomic_store_explicit(&s->queue_max,
                        tr->kind == KITE_TRANSPORT_KCP ? sh->srv->cfg.send_queue_max
                                                   : sh->srv->tcp_queue_max,
                        memory_order_relaxed);
  s->state = KITE__S_HALF_OPEN;
  s->opened = 0;
  s->in_callback = 0;
  s->close_pending = KITE__NO_CLOSE;
  s->closing = KITE__NO_CLOSE;
  s->peer_reason = KITE__NO_CLOSE;
  s->blocked = 0;
  atomic_store_explicit(&s->frames_in, 0, memory_order_relaxed);
  atomic_store_explicit(&s->frames_out, 0, memory_order_relaxed);
  atomic_store_explicit(&s->bytes_in, 0, memory_order_relaxed);
  atomic_store_explicit(&s->bytes_out, 0, memory_order_relaxed);
  sh->nsessions++;
  KITE__STAT_ADD(sh, sessions, 1);
}

void kite__session_open(kite__session *s) {
  kite__shard *sh = s->shard;
  s->state = KITE__S_OPEN;
  kite__session_pub_lock(s);
  s->opened_ms = sh->now;
  kite__session_pub_unlock(s);
  atomic_store_explicit(&s->live, 1, memory_order_release);
  s->opened = 1;
  KITE__STAT_INC(sh, sessions_opened);
  uint8_t was = s->in_callback;
  s->in_callback = 1; /* inline: on_connect runs now */
  kite__logic_open(sh->srv->logic, s->app, kite__session_id(s));
  s->in_callback = was;
}

/* The network side goes: the transport's state and the timer. */
static void session_teardown(kite__session *s) {
  kite__wheel_del(&s->shard->wheel, &s->timer);
  s->tr->teardown(s);
  s->tr = NULL;
  s->link = NULL;
}

void kite__session_release(kite__session *s) {
  kite__shard *sh = s->shard;
  kite__logic_unbind(sh->srv->logic, s->app);
  s->state = KITE__S_FREE;
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
  case KITE__CLOSE_KEY_EXHAUSTED: KITE__STAT_INC(sh, v2_closed_key_exhausted); break;
  default: KITE__STAT_INC(sh, closed_slow_peer); break;
  }
}

/* The session ends now: the peer told (unless it closed), counted, and
 * handed to the logic layer for on_disconnect. */
static void session_finish(kite__session *s, uint8_t reason, bool tell_peer) {
  kite__shard *sh = s->shard;
  if (s->state == KITE__S_HALF_OPEN) {
    /* The application never heard of it: it leaves silently. */
    if (tell_peer)
      s->tr->notify_close(s, reason);
    if (reason == KITE_CLOSE_NORMAL) /* not a bad OPEN: counted there */
      KITE__STAT_INC(sh, halfopen_expired);
    session_teardown(s);
    kite__session_release(s);
    return;
  }
  /* What arrived but was not handed up is dropped, counted (logic.h,
   * "After a close"), before the peer is told: a pong it answers then
   * still precedes the close on the wire. Then the session takes no input
   * and no sends; its executor still owes on_disconnect (inline: now; a
   * worker: after what it holds, which it drops). */
  atomic_store_explicit(&s->live, 0, memory_order_relaxed);
  s->blocked = 0;
  if (reason != KITE_CLOSE_PROTOCOL) /* a broken stream frames nothing more */
    s->tr->drain(s);
  if (tell_peer)
    s->tr->notify_close(s, reason);
  count_close(sh, reason);
  s->state = KITE__S_ZOMBIE;
  bool now = true;
  if (s->opened) { /* inline: on_disconnect runs now */
    uint8_t was = s->in_callback;
    s->in_callback = 1;
    now = kite__logic_close(sh->srv->logic, s->app, reason);
    s->in_callback = was;
  }
  session_teardown(s);
  if (now)
    kite__session_release(s);
}

/* The application's close and a stop wait for what was sent before them;
 * the others are the peer's fault or the link's, and end at once. */
static bool graceful(uint8_t reason) {
  return reason == KITE_CLOSE_KICKED || reason == KITE_CLOSE_SHUTDOWN;
}

static void session_end(kite__session *s, uint8_t reason, bool tell_peer) {
  if (!kite__session_connected(s))
    return;
  if (s->in_callback) {
    if (s->close_pending == KITE__NO_CLOSE)
      s->close_pending = reason;
    return;
  }
  if (s->state == KITE__S_OPEN && tell_peer && graceful(reason)) {
    kite__shard *sh = s->shard;
    s->state = KITE__S_CLOSING;
    s->closing = reason;
    s->deadline_ms = sh->now + (reason == KITE_CLOSE_SHUTDOWN
                                    ? sh->srv->cfg.stop_timeout_ms
                                    : sh->srv->cfg.close_timeout_ms);
    /* A stop still lets the application send its last words; after its
     * own close it addresses the session no more. */
    if (reason == KITE_CLOSE_KICKED)
      atomic_store_explicit(&s->live, 0, memory_order_relaxed);
    if (s->tr->unacked(s) == 0) {
      session_finish(s, reason, true);
      return;
    }
    kite__session_mark_dirty(s); /* what is queued leaves at once */
    return;
  }
  if (s->state == KITE__S_CLOSING && graceful(reason))
    return; /* closing already; the first reason stands */
  session_finish(s, reason, tell_peer);
}

void kite__session_close_now(kite__session *s) {
  session_finish(s, s->closing, true);
}

void kite__session_close(kite__session *s, uint8_t reason) {
  session_end(s, reason, reason != KITE_CLOSE_NORMAL);
}

void kite__session_close_by_peer(kite__session *s, uint8_t reason) {
  session_end(s, reason, false);
}

void kite__session_settle(kite__session *s) {
  if (kite__session_connected(s) && s->close_pending != KITE__NO_CLOSE) {
    uint8_t reason = s->close_pending;
    s->close_pending = KITE__NO_CLOSE;
    kite__session_close(s, reason);
  }
}

int kite__session_close_any(kite_server *srv, kite_session_id id,
                            uint8_t reason) {
  kite__session *s = kite__session_by_id(srv, id);
  if (!s)
    return KITE_ENOTFOUND;
  if (kite__logic_close_requested(srv->logic, s->app))
    return KITE_ENOTFOUND; /* its worker closed it already */
  if (kite__shard_current() == s->shard) {
    if (!kite__session_live(s) || s->close_pending != KITE__NO_CLOSE)
      return KITE_ENOTFOUND;
    /* From now on the application addresses it no more, even while the
     * close waits for a safe point or for the peer's acks. */
    atomic_store_explicit(&s->live, 0, memory_order_relaxed);
    kite__session_close(s, reason);
    return 0;
  }
  if (!kite__session_live(s))
    return KITE_ENOTFOUND;
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

void kite__session_publish_queue(kite__session *s) {
  atomic_store_explicit(&s->queued, s->tr->queued(s), memory_order_relaxed);
}

void kite__session_publish_rtt_now(kite__session *s) {
  kite__shard *sh = s->shard;
  if (!kite__session_connected(s))
    return;
  s->rtt_ms = sh->now;
  kite__rtt r;
  s->tr->rtt(s, &r);
  kite__session_pub_lock(s);
  s->rtt = r;
  kite__session_pub_unlock(s);
}
