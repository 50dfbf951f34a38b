/*
 * The unreliable lane's calls (include/kite/server.h,
 * kite_session_send_unreliable(); include/kite/group.h,
 * kite_group_broadcast_unreliable()): by the session's lane, an item of a
 * v2 UDP session (session_v2_lane.c), a frame with the unreliable flag (v2
 * TCP) or an ordinary frame (v1). From another thread a message for a v2
 * UDP session travels in one of its shard's preallocated slots (upool.h);
 * frames take kite_session_send()'s way.
 */
#include "server/port.h"
#include "server/server_internal.h"

#include "proto/frame.h"
#include "proto/v2.h"
#include "proto/v2ctl.h"

#include <stdlib.h>
#include <string.h>

uint16_t kite__lane_max(const kite_server *srv) {
  return kite__v2_max_unreliable((uint16_t)srv->cfg.mtu, srv->cfg.max_frame);
}

/* The body a session takes: its max_unreliable (v2), else max_frame. */
static size_t session_max(const kite_server *srv, const kite__session *s) {
  uint16_t m = atomic_load_explicit(&s->max_unreliable, memory_order_relaxed);
  return atomic_load_explicit(&s->lane, memory_order_relaxed) ==
                 KITE__LANE_FRAME
             ? srv->cfg.max_frame
             : m;
}

int kite_session_send_unreliable(kite_server *srv, kite_session_id id,
                                 uint16_t msg_id, const void *body, size_t len,
                                 unsigned flags) {
  if (msg_id == KITE__MSG_PING || msg_id >= KITE__MSG_RESERVED_MIN ||
      (flags & ~KITE_UNRELIABLE_SEQUENCED) || (len && !body))
    return KITE_EINVAL;
  if (len > srv->cfg.max_frame)
    return KITE_EMSGSIZE;
  kite__session *s = kite__session_by_id(srv, id);
  if (!s)
    return KITE_ENOTFOUND;
  uint8_t lane = atomic_load_explicit(&s->lane, memory_order_relaxed);
  if (len > session_max(srv, s))
    return KITE_EMSGSIZE;
  if (lane != KITE__LANE_DGRAM) /* a frame, with kite_session_send()'s rules */
    return kite__session_send_any(
        srv, s, id, msg_id,
        lane == KITE__LANE_FLAG ? KITE__FRAME_F_UNRELIABLE : 0, body, len);
  kite__shard *sh = s->shard;
  if (kite__shard_current() == sh) {
    if (s->state == KITE__S_HALF_OPEN)
      return KITE_ENOTFOUND;
    if (!kite__session_live(s) || s->close_pending != KITE__NO_CLOSE ||
        kite__logic_closing(s->app))
      return KITE_ECLOSED;
    return kite__session_send_unreliable(s, msg_id, flags, body, len);
  }
  if (!kite__session_live(s) || kite__logic_closing(s->app))
    return KITE_ECLOSED;
  kite__cmd *cmd = kite__upool_take(&sh->upool);
  if (!cmd || len > sh->upool.body_max) {
    if (cmd)
      kite__upool_give(&sh->upool, cmd);
    KITE__STAT_ADD_ANY(sh, unreliable_queue_full, 1);
    return KITE_EFULL;
  }
  cmd->msg_id = msg_id;
  cmd->fflags = (uint16_t)flags;
  cmd->len = (uint32_t)len;
  cmd->id = id;
  if (len)
    memcpy(cmd->data, body, len);
  if (!kite__shard_post(sh, cmd)) {
    kite__upool_give(&sh->upool, cmd);
    KITE__STAT_ADD_ANY(sh, unreliable_queue_full, 1);
    return KITE_EFULL;
  }
  return 0;
}

/* One member of a command, on its shard. */
static void send_one(kite__shard *sh, kite_session_id id, uint16_t msg_id,
                     unsigned flags, const uint8_t *body, size_t len) {
  kite__session *s = kite__session_by_id(sh->srv, id);
  if (!s || !kite__session_live(s) || s->close_pending != KITE__NO_CLOSE ||
      !kite__session_connected(s)) {
    KITE__STAT_INC(sh, drop_stale_cmd);
    return;
  }
  if (len > session_max(sh->srv, s)) {
    KITE__STAT_INC(sh, unreliable_drop_size);
    return;
  }
  int rc = kite__session_send_unreliable(s, msg_id, flags, body, len);
  if ((rc == KITE_EFULL || rc == KITE_ENOMEM) && s->tr->send_unreliable == NULL)
    KITE__STAT_INC(sh, unreliable_drop_queue); /* a frame found no room */
  else if (rc == 0 && s->tr->send_unreliable == NULL)
    KITE__STAT_INC(sh, frames_out);
}

void kite__lane_run(kite__shard *sh, kite__cmd *cmd) {
  if (cmd->type == KITE__CMD_UNRELIABLE) {
    send_one(sh, cmd->id, cmd->msg_id, cmd->fflags, cmd->data, cmd->len);
    kite__upool_give(&sh->upool, cmd);
    return;
  }
  const kite__shared_frame *f = cmd->frame;
  for (uint32_t i = 0; i < cmd->count; i++) {
    kite_session_id id;
    memcpy(&id, cmd->data + i * sizeof(id), sizeof(id));
    send_one(sh, id, cmd->msg_id, cmd->fflags, f->data, f->bytes);
  }
  kite__shared_frame_put(cmd->frame);
  free(cmd);
}

int kite__ubcast_begin(kite__bcast *b, kite_server *srv, uint16_t msg_id,
                       const void *body, size_t len, unsigned flags) {
  memset(b, 0, sizeof(*b));
  if (msg_id == KITE__MSG_PING || msg_id >= KITE__MSG_RESERVED_MIN ||
      (flags & ~KITE_UNRELIABLE_SEQUENCED) || (len && !body))
    return KITE_EINVAL;
  if (len > srv->cfg.max_frame || len > kite__lane_max(srv))
    return KITE_EMSGSIZE;
  kite__shared_frame *f = malloc(sizeof(*f) + len);
  if (!f)
    return KITE_ENOMEM;
  atomic_init(&f->refs, 1);
  f->bytes = (uint32_t)len;
  if (len)
    memcpy(f->data, body, len);
  b->srv = srv;
  b->frame = f;
  b->msg_id = msg_id;
  b->uflags = (uint16_t)flags;
  b->unreliable = true;
  return 0;
}

bool kite__ubcast_add(kite__bcast *b, kite_session_id id, size_t members) {
  uint32_t shard = kite__sid_shard(id);
  if (shard >= b->srv->nshards)
    return false;
  kite__cmd *c = b->cmds[shard];
  if (!c) {
    b->cap = members;
    c = calloc(1, sizeof(*c) + b->cap * sizeof(kite_session_id));
    if (!c)
      return false;
    c->type = KITE__CMD_UBROADCAST;
    c->frame = b->frame;
    c->msg_id = b->msg_id;
    c->fflags = b->uflags;
    atomic_fetch_add_explicit(&b->frame->refs, 1, memory_order_relaxed);
    b->cmds[shard] = c;
  }
  if (c->count == b->cap)
    return false;
  memcpy(c->data + c->count * sizeof(kite_session_id), &id, sizeof(id));
  c->count++;
  b->queued++;
  return true;
}
